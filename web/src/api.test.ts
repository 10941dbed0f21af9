import { describe, expect, it } from "vitest";
import { ApiError, Client } from "./api";
import { parseRoute, href } from "./route";
import { Store } from "./store";

describe("Client", () => {
  it("sends the token in the Authorization header, never in the URL", async () => {
    const calls: [string, RequestInit | undefined][] = [];
    const client = new Client("secret-token", async (input, init) => {
      calls.push([String(input), init]);
      return new Response(JSON.stringify({ items: [], next: null }), { status: 200 });
    });
    await client.listInstances();
    await client.openStream(new AbortController().signal);
    for (const [url, init] of calls) {
      expect(url).not.toContain("secret-token");
      expect((init?.headers as Record<string, string>).Authorization).toBe("Bearer secret-token");
    }
    expect(calls.map(([url]) => url)).toEqual(["/v1/instances?limit=200", "/v1/events/stream"]);
  });

  it("turns a problem into an ApiError with its title and fields", async () => {
    const problem = {
      type: "x", title: "Invalid request body", status: 422, detail: "bad",
      errors: [{ field: "flavor", message: "no such flavor" }],
    };
    const client = new Client("t", async () => new Response(JSON.stringify(problem), { status: 422 }));
    const error = await client.createInstance({ name: "a", flavor: "nope" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).title).toBe("Invalid request body");
    expect((error as ApiError).errors[0].field).toBe("flavor");
  });
});

describe("routes", () => {
  it("gives every page a URL and reads it back", () => {
    const id = "596a0000-0000-4000-8000-000000000000";
    for (const route of [{ page: "instances" }, { page: "create" }, { page: "login" },
      { page: "instance", id }] as const) {
      expect(parseRoute(href(route))).toEqual(route);
    }
    expect(parseRoute("")).toEqual({ page: "instances" });
  });
});

describe("Store", () => {
  it("never lets an older view replace a newer one", () => {
    const store = new Store();
    const view = (status: "BUILDING" | "RUNNING", updated_at: string) => ({
      id: "i", name: "n", tenant_id: "t", flavor: { name: "m1.tiny", vcpus: 1, ram_mb: 256, disk_gb: 1 },
      status, host: null, fault: null, addresses: [], image: null, network_id: null, key_name: null,
      created_at: "2026-12-01T00:00:00Z", updated_at,
    });
    const change = (instance: ReturnType<typeof view>) => ({
      event_id: "e", type: "T", kind: "instance", id: "i", tenant_id: "t",
      occurred_at: instance.updated_at, instance,
    });
    store.apply(change(view("RUNNING", "2026-12-01T00:00:02Z")));
    store.apply(change(view("BUILDING", "2026-12-01T00:00:01Z")));
    expect(store.instances.get("i")?.status).toBe("RUNNING");
  });
});
