// Creating on behalf of a tenant: an admin picks the tenant, a tenant never sees the picker.
import { describe, expect, it } from "vitest";
import { Client } from "./api";
import { createPage, type Context } from "./pages";
import { Store } from "./store";
import { volumesPage } from "./volumes";

const TENANT = "6aed0000-0000-4000-8000-000000000000";

function recorder() {
  const calls: [string, string, unknown][] = [];
  const client = new Client("t", async (input, init) => {
    const method = init?.method ?? "GET";
    const url = String(input);
    calls.push([method, url, init?.body ? JSON.parse(String(init.body)) : undefined]);
    const answer = url.startsWith("/v1/tenants?")
      ? { items: [{ id: TENANT, name: "acme", enabled: true }, { id: "t-off", name: "gone", enabled: false }], next: null }
      : method === "POST"
        ? { id: "v-1", name: "data", status: "creating", size_gb: 2, attachments: [], snapshots: [],
          created_at: "2026-12-05T00:00:00Z", updated_at: "2026-12-05T00:00:00Z" }
        : { items: [], next: null };
    return new Response(JSON.stringify(answer), { status: method === "POST" ? 202 : 200 });
  });
  return { client, calls };
}

function context(client: Client, isAdmin: boolean): Context {
  return { client, store: new Store(), root: document.createElement("main"), go: () => undefined,
    admin: Promise.resolve(isAdmin), onLeave: () => undefined };
}

async function createVolume(ctx: Context, tenant?: string): Promise<void> {
  await volumesPage(ctx);
  const form = ctx.root.querySelector("#create-volume") as HTMLFormElement;
  (form.querySelector("#volume-name") as HTMLInputElement).value = "data";
  (form.querySelector("#volume-size") as HTMLInputElement).value = "2";
  if (tenant) (form.querySelector("#volume-tenant") as HTMLSelectElement).value = tenant;
  form.dispatchEvent(new Event("submit", { cancelable: true }));
  await new Promise((resolve) => setTimeout(resolve, 0));
}

describe("the tenant picker of the create forms", () => {
  it("lets an admin create a volume for the tenant it picks (enabled tenants only)", async () => {
    const { client, calls } = recorder();
    const ctx = context(client, true);
    await createVolume(ctx, TENANT);
    const options = [...ctx.root.querySelectorAll("#volume-tenant option")].map((o) => o.textContent);
    expect(options).toEqual(["(choose a tenant)", "acme"]);
    expect((ctx.root.querySelector("#volume-tenant") as HTMLSelectElement).required).toBe(true);
    expect(calls.find(([method]) => method === "POST")).toEqual(
      ["POST", "/v1/volumes", { name: "data", size_gb: 2, tenant_id: TENANT }]);
  });

  it("is never shown to a tenant, who sends no tenant_id and never lists the tenants", async () => {
    const { client, calls } = recorder();
    const ctx = context(client, false);
    await createVolume(ctx);
    expect(ctx.root.querySelector("#volume-tenant")).toBeNull();
    expect(calls.some(([, url]) => url.startsWith("/v1/tenants"))).toBe(false);
    expect(calls.find(([method]) => method === "POST")).toEqual(
      ["POST", "/v1/volumes", { name: "data", size_gb: 2 }]);
  });

  it("asks an admin creating an instance for its tenant too", async () => {
    const { client, calls } = recorder();
    const ctx = context(client, true);
    await createPage(ctx);
    const form = ctx.root.querySelector("form") as HTMLFormElement;
    (form.querySelector("#name") as HTMLInputElement).value = "web";
    (form.querySelector("#tenant_id") as HTMLSelectElement).value = TENANT;
    form.dispatchEvent(new Event("submit", { cancelable: true }));
    await new Promise((resolve) => setTimeout(resolve, 0));
    const posted = calls.find(([method]) => method === "POST");
    expect(posted?.[1]).toBe("/v1/instances");
    expect(posted?.[2]).toMatchObject({ name: "web", tenant_id: TENANT });
  });
});

