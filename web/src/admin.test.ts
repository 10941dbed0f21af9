// The admin pages: tenants, a tenant's token and quotas, the price catalogue.
import { describe, expect, it, vi } from "vitest";
import { nextHour, pricesPage, tenantChanged, tenantPage, tenantsPage } from "./admin";
import { admin, flavorLines, flavorPrices, quotaChanges, type QuotaView } from "./adminapi";
import { Client, type Change } from "./api";
import type { Context } from "./pages";
import { href, parseRoute } from "./route";
import { Store } from "./store";

const TENANT = "6aed0000-0000-4000-8000-000000000000";

function recorder(answer: (method: string, url: string) => unknown) {
  const calls: [string, string, unknown][] = [];
  const client = new Client("t", async (input, init) => {
    const method = init?.method ?? "GET";
    calls.push([method, String(input), init?.body ? JSON.parse(String(init.body)) : undefined]);
    return new Response(JSON.stringify(answer(method, String(input))), { status: 200 });
  });
  return { client, calls };
}

function context(client: Client, isAdmin = true): Context {
  return { client, store: new Store(), root: document.createElement("main"), go: () => undefined,
    admin: Promise.resolve(isAdmin), onLeave: () => undefined };
}

const quotas: QuotaView = { tenant_id: TENANT, limits: { instances: 10, vcpus: 20, ram_mb: 51200 },
  usage: { instances: 3, vcpus: 3, ram_mb: 768 }, overridden: ["vcpus"] };

describe("the admin client", () => {
  it("asks the documented routes", async () => {
    const { client, calls } = recorder((_, url) => url.startsWith("/v1/tenants?") ? { items: [], next: null } : {});
    await admin.tenants(client);
    await admin.createTenant(client, "acme");
    await admin.issueToken(client, TENANT);
    await admin.setQuotas(client, TENANT, { instances: 50, vcpus: null });
    await admin.prices(client);
    expect(calls).toEqual([
      ["GET", "/v1/tenants?limit=200", undefined],
      ["POST", "/v1/tenants", { name: "acme" }],
      ["POST", `/v1/tenants/${TENANT}/tokens`, {}],
      ["PUT", `/v1/tenants/${TENANT}/quotas`, { instances: 50, vcpus: null }],
      ["GET", "/v1/prices", undefined],
    ]);
  });

  it("sends only the quotas that changed, and null for an own limit emptied", () => {
    expect(quotaChanges(quotas, { instances: "50", vcpus: "", ram_mb: "51200" }))
      .toEqual({ instances: 50, vcpus: null });
    expect(quotaChanges(quotas, { instances: "10", vcpus: "20", ram_mb: "" })).toEqual({});
  });

  it("reads and writes flavor prices a line each", () => {
    expect(flavorPrices("m1.tiny = 0.01\n\nm1.small=0.10\n")).toEqual({ "m1.tiny": "0.01", "m1.small": "0.10" });
    expect(flavorLines({ "m1.tiny": "0.01", "m1.small": "0.10" })).toBe("m1.tiny=0.01\nm1.small=0.10");
  });

  it("starts a new catalogue at the next whole UTC hour", () => {
    expect(nextHour(new Date("2026-12-05T10:20:30.400Z"))).toBe("2026-12-05T11:00:00Z");
    expect(nextHour(new Date("2026-12-31T23:00:00Z"))).toBe("2027-01-01T00:00:00Z");
  });

  it("routes the admin pages by URL", () => {
    expect(parseRoute("#/tenants")).toEqual({ page: "tenants" });
    expect(parseRoute(`#/tenants/${TENANT}`)).toEqual({ page: "tenant", id: TENANT });
    expect(parseRoute("#/prices")).toEqual({ page: "prices" });
    expect(href({ page: "tenant", id: TENANT })).toBe(`#/tenants/${TENANT}`);
  });
});

describe("the admin pages", () => {
  it("say admins only to a tenant, asking nothing", async () => {
    const { client, calls } = recorder(() => ({}));
    for (const page of [tenantsPage, pricesPage]) {
      const ctx = context(client, false);
      await page(ctx);
      expect(ctx.root.querySelector(".error")?.textContent).toContain("Admins only");
    }
    expect(calls).toEqual([]);
  });

  it("list tenants and create one", async () => {
    let tenants = [{ id: TENANT, name: "acme" }];
    const { client, calls } = recorder((method) => method === "POST" ? {} : { items: tenants, next: null });
    const ctx = context(client);
    await tenantsPage(ctx);
    expect(ctx.root.querySelector(`tr[data-id="${TENANT}"] a`)?.getAttribute("href")).toBe(`#/tenants/${TENANT}`);
    tenants = [...tenants, { id: "7bfe0000-0000-4000-8000-000000000000", name: "globex" }];
    const form = ctx.root.querySelector("#create-tenant") as HTMLFormElement;
    (form.querySelector("#tenant-name") as HTMLInputElement).value = "globex";
    form.dispatchEvent(new Event("submit", { cancelable: true }));
    await vi.waitFor(() => expect(ctx.root.querySelectorAll("tbody tr[data-id]")).toHaveLength(2));
    expect(calls).toContainEqual(["POST", "/v1/tenants", { name: "globex" }]);
  });

  it("show a new token once, and set quotas", async () => {
    const { client, calls } = recorder((method, url) => {
      if (url.startsWith("/v1/tenants?")) return { items: [{ id: TENANT, name: "acme" }], next: null };
      if (url.endsWith("/tokens")) return { id: "c0de", token: "virga_secret", expires_at: null };
      if (method === "PUT") return { ...quotas, limits: { ...quotas.limits, instances: 50 } };
      return quotas;
    });
    const ctx = context(client);
    await tenantPage(ctx, TENANT);
    expect(ctx.root.querySelector("h1")?.textContent).toBe("acme");
    expect(ctx.root.querySelector('tr[data-resource="instances"] .usage')?.textContent).toBe("3");
    [...ctx.root.querySelectorAll("button")].find((b) => b.textContent === "Issue a token")?.click();
    await vi.waitFor(() => expect(ctx.root.querySelector("code.token")?.textContent).toBe("virga_secret"));
    (ctx.root.querySelector("#quota-instances") as HTMLInputElement).value = "50";
    ctx.root.querySelector("#quotas")?.dispatchEvent(new Event("submit", { cancelable: true }));
    await vi.waitFor(() => expect((ctx.root.querySelector("#quota-instances") as HTMLInputElement).value).toBe("50"));
    expect(calls).toContainEqual(["PUT", `/v1/tenants/${TENANT}/quotas`, { instances: 50 }]);
  });

  it("follow the stream: a tenant made elsewhere appears in the list, other changes read nothing", async () => {
    let tenants = [{ id: TENANT, name: "acme" }];
    const { client, calls } = recorder(() => ({ items: tenants, next: null }));
    const ctx = context(client);
    await tenantsPage(ctx);
    const other = "7bfe0000-0000-4000-8000-000000000000";
    tenants = [...tenants, { id: other, name: "globex" }];
    ctx.store.apply(change("volume", "a41c0000-0000-4000-8000-000000000000", TENANT));
    expect(calls).toHaveLength(1);
    ctx.store.apply(change("tenant", other, other, "TenantCreated"));
    await vi.waitFor(() => expect(ctx.root.querySelector(`tr[data-id="${other}"]`)?.textContent).toContain("globex"));
    expect(calls).toHaveLength(2);
  });

  it("follow the stream on a tenant's page: usage in place, a limit being typed kept", async () => {
    let view: QuotaView = quotas;
    const { client } = recorder((_, url) => url.startsWith("/v1/tenants?")
      ? { items: [{ id: TENANT, name: "acme" }], next: null } : view);
    const ctx = context(client);
    await tenantPage(ctx, TENANT);
    const typed = ctx.root.querySelector("#quota-vcpus") as HTMLInputElement;
    typed.value = "64";
    view = { ...quotas, usage: { ...quotas.usage, instances: 4 }, limits: { ...quotas.limits, instances: 12, vcpus: 30 } };
    expect(tenantChanged(TENANT)(change("instance", "596a0000-0000-4000-8000-000000000000", "someone"))).toBe(false);
    ctx.store.apply(change("instance", "596a0000-0000-4000-8000-000000000000", TENANT));
    await vi.waitFor(() => expect(ctx.root.querySelector('tr[data-resource="instances"] .usage')?.textContent).toBe("4"));
    expect((ctx.root.querySelector("#quota-instances") as HTMLInputElement).value).toBe("12");
    expect(ctx.root.querySelector("#quota-vcpus")).toBe(typed);
    expect(typed.value).toBe("64");
  });

  it("show the catalogue in effect and set a new one", async () => {
    const inEffect = { currency: "EUR", effective_from: "2026-12-01T00:00:00Z", flavor_hour: { "m1.tiny": "0.01" },
      volume_gb_month: "0.04", egress_gb: "0.05", public_ip_hour: "0.005" };
    const { client, calls } = recorder((method) => method === "PUT" ? inEffect
      : { in_effect: inEffect, pending: [], history: [inEffect] });
    const ctx = context(client);
    await pricesPage(ctx);
    expect(ctx.root.querySelector(".prices")?.textContent).toContain("m1.tiny / hour");
    expect((ctx.root.querySelector("#price-flavor_hour") as HTMLTextAreaElement).value).toBe("m1.tiny=0.01");
    ctx.root.querySelector("#set-prices")?.dispatchEvent(new Event("submit", { cancelable: true }));
    await vi.waitFor(() => expect(calls.filter(([method]) => method === "PUT")).toHaveLength(1));
    const [, , body] = calls.find(([method]) => method === "PUT") ?? [];
    expect(body).toMatchObject({ currency: "EUR", flavor_hour: { "m1.tiny": "0.01" }, egress_gb: "0.05" });
  });
});

function change(kind: string, id: string, tenantId: string, type = "Changed"): Change {
  return { event_id: `${kind}-${id}`, type, kind, id, tenant_id: tenantId, occurred_at: "2026-12-01T00:00:00Z" };
}
