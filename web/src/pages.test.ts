// The new pages' client calls and view logic: volumes, usage, hosts.
import { describe, expect, it, vi } from "vitest";
import { Client, type Change, type Host, type Volume } from "./api";
import { byRack, capacity, hostsChanged, hostsPage } from "./hosts";
import { followVolumes, VolumeSet } from "./live";
import type { Context } from "./pages";
import { href, parseRoute } from "./route";
import { Store } from "./store";
import { bars, chart, resourceHref } from "./usage";

const ID = "596a0000-0000-4000-8000-000000000000";
const VOL = "a41c0000-0000-4000-8000-000000000000";

function recorder(answer: (url: string) => unknown = () => ({ items: [], next: null })) {
  const calls: [string, string, unknown][] = [];
  const client = new Client("t", async (input, init) => {
    calls.push([init?.method ?? "GET", String(input), init?.body ? JSON.parse(String(init.body)) : undefined]);
    const body = answer(String(input));
    if (body instanceof Response) return body;
    return new Response(JSON.stringify(body), { status: 200 });
  });
  return { client, calls };
}

const volume = (over: Partial<Volume> = {}): Volume => ({
  id: VOL, name: "data", tenant_id: "t", status: "available", size_gb: 1, boot_of: null, snapshots: [],
  attachments: [], fault: null, created_at: "2026-12-01T00:00:00Z", updated_at: "2026-12-01T00:00:00Z",
  ...over,
});

const host = (name: string, rack: string, enabled = true): Host => ({
  name, rack, zone: "az1", state: "up", enabled, disabled_reason: enabled ? "" : "RAM test",
  capacity: { vcpus: 8, ram_mb: 16384, disk_gb: 200 }, allocated: { vcpus: 2, ram_mb: 512, disk_gb: 1 },
});

function context(client: Client, admin = true): Context & { leave: (() => void)[] } {
  const leave: (() => void)[] = [];
  return { client, store: new Store(), root: document.createElement("main"), go: () => undefined,
    admin: Promise.resolve(admin), onLeave: (undo) => leave.push(undo), leave };
}

describe("the volume, usage and host calls", () => {
  it("ask the documented routes with the documented bodies", async () => {
    const { client, calls } = recorder();
    await client.createVolume({ name: "data", size_gb: 10 });
    await client.extendVolume(VOL, 20);
    await client.attachVolume(ID, VOL);
    await client.detachVolume(ID, VOL);
    await client.deleteVolume(VOL);
    await client.getUsage();
    await client.listInvoices();
    await client.actOnHost("host a", "disable", "RAM test");
    expect(calls).toEqual([
      ["POST", "/v1/volumes", { name: "data", size_gb: 10 }],
      ["POST", `/v1/volumes/${VOL}/actions`, { action: "extend", size_gb: 20 }],
      ["POST", `/v1/instances/${ID}/volumes`, { volume_id: VOL }],
      ["DELETE", `/v1/instances/${ID}/volumes/${VOL}`, undefined],
      ["DELETE", `/v1/volumes/${VOL}`, undefined],
      ["GET", "/v1/usage", undefined],
      ["GET", "/v1/invoices?limit=200", undefined],
      ["POST", "/v1/hosts/host%20a/actions", { action: "disable", reason: "RAM test" }],
    ]);
  });
});

describe("routes of the new pages", () => {
  it("give each page a URL and read it back", () => {
    for (const route of [{ page: "volumes" }, { page: "volume", id: VOL }, { page: "usage" },
      { page: "hosts" }] as const) {
      expect(parseRoute(href(route))).toEqual(route);
    }
  });
});

describe("VolumeSet", () => {
  it("reads a changed volume again, never older over newer, and forgets one gone (404)", async () => {
    let answer: unknown = volume({ status: "in-use", updated_at: "2026-12-01T00:00:02Z",
      attachments: [{ instance_id: ID, host: "host-a", device: "vdb" }] });
    const { client } = recorder(() => answer);
    const set = new VolumeSet(client);
    await set.refresh(VOL);
    expect(set.attachedTo(ID).map(([v, a]) => [v.name, a.device])).toEqual([["data", "vdb"]]);
    answer = volume({ updated_at: "2026-12-01T00:00:01Z" });
    await set.refresh(VOL);
    expect(set.byId.get(VOL)?.status).toBe("in-use");
    answer = new Response(JSON.stringify({ title: "Not found" }), { status: 404 });
    await set.refresh(VOL);
    expect(set.byId.size).toBe(0);
  });

  it("follows the stream: a volume's change reads that volume, and the page redraws", async () => {
    const { client, calls } = recorder((url) => url.startsWith("/v1/volumes?")
      ? { items: [volume()], next: null } : volume({ status: "attaching", updated_at: "2026-12-01T00:00:05Z" }));
    const ctx = context(client);
    const set = new VolumeSet(client);
    const draw = vi.fn();
    await followVolumes(ctx, set, draw);
    expect(draw).toHaveBeenCalledTimes(1);
    const change: Change = { event_id: "e", type: "VolumeAttachRequested", kind: "volume", id: VOL,
      tenant_id: "t", occurred_at: "2026-12-01T00:00:05Z" };
    ctx.store.apply(change);
    await vi.waitFor(() => expect(set.byId.get(VOL)?.status).toBe("attaching"));
    expect(draw).toHaveBeenCalledTimes(2);
    expect(calls.at(-1)?.[1]).toBe(`/v1/volumes/${VOL}`);
    for (const undo of ctx.leave) undo();
  });
});

describe("the usage page's logic", () => {
  it("sums the amounts per resource and charge, largest first, and links to the resource", () => {
    const line = (resource_id: string, kind: string, amount: string) => ({
      resource_id, kind, amount, quantity: "1", unit: "hour", unit_price: "1" });
    const result = bars([line("a", "compute", "1.50"), line("b", "volume", "4.00"), line("a", "compute", "1.00")]);
    expect(result).toEqual([
      { resource_id: "b", kind: "volume", amount: 4 }, { resource_id: "a", kind: "compute", amount: 2.5 }]);
    expect(resourceHref({ kind: "compute", resource_id: ID })).toBe(`#/instances/${ID}`);
    expect(resourceHref({ kind: "volume", resource_id: VOL })).toBe(`#/volumes/${VOL}`);
    expect(resourceHref({ kind: "public_ip", resource_id: "x" })).toBeNull();
    // A past invoice's adjustment links to what it adjusts (it linked nowhere before).
    expect(resourceHref({ kind: "adjustment", charge: "compute", resource_id: ID })).toBe(`#/instances/${ID}`);
    expect(resourceHref({ kind: "adjustment", charge: "volume", resource_id: VOL })).toBe(`#/volumes/${VOL}`);
    expect(resourceHref({ kind: "adjustment", resource_id: VOL })).toBeNull();
  });

  it("draws the chart as SVG with attributes only (no inline style, for the CSP)", () => {
    const svg = chart([{ resource_id: "b", kind: "volume", amount: 4 }, { resource_id: "a", kind: "compute", amount: 2 }],
      (b) => b.resource_id, "EUR");
    const rects = [...svg.querySelectorAll("rect")];
    expect(rects.map((r) => r.getAttribute("width"))).toEqual(["330.0", "165.0"]);
    expect(svg.querySelector("[style]")).toBeNull();
    expect(svg.getAttribute("aria-label")).toContain("EUR");
  });
});

describe("the hosts page's logic", () => {
  it("groups hosts by rack and shows capacity as meters", () => {
    const racks = byRack([host("h2", "r2"), host("h1b", "r1"), host("h1a", "r1")]);
    expect(racks.map(([rack, list]) => [rack, list.map((x) => x.name)])).toEqual([
      ["r1", ["h1a", "h1b"]], ["r2", ["h2"]]]);
    const meters = [...capacity(host("h", "r")).querySelectorAll("meter")];
    expect(meters.map((m) => [m.getAttribute("value"), m.getAttribute("max")])).toEqual([
      ["2", "8"], ["512", "16384"], ["1", "200"]]);
  });

  it("reads the hosts again on a host's change but not on its heartbeat", () => {
    expect(hostsChanged({ kind: "host", type: "HostDisabled" })).toBe(true);
    expect(hostsChanged({ kind: "host", type: "HostHeartbeat" })).toBe(false);
    expect(hostsChanged({ kind: "instance", type: "InstanceScheduled" })).toBe(true);
    expect(hostsChanged(null)).toBe(true);
  });

  it("says admins only to a tenant, and asks nothing", async () => {
    const { client, calls } = recorder();
    const ctx = context(client, false);
    await hostsPage(ctx);
    expect(ctx.root.textContent).toContain("Admins only");
    expect(calls).toEqual([]);
  });

  it("confirms before disabling, and shows a refusal's title", async () => {
    const { client, calls } = recorder((url) => url.startsWith("/v1/hosts?")
      ? { items: [host("host-a", "r1")], next: null }
      : new Response(JSON.stringify({ title: "Not found", errors: [] }), { status: 404 }));
    const ctx = context(client);
    await hostsPage(ctx);
    const confirm = vi.spyOn(window, "confirm").mockReturnValueOnce(false).mockReturnValueOnce(true);
    const disable = (): void => (ctx.root.querySelector('tr[data-host="host-a"] button') as HTMLButtonElement).click();
    disable();
    expect(calls.filter(([m]) => m === "POST")).toEqual([]);
    disable();
    await vi.waitFor(() => expect(ctx.root.querySelector(".error strong")?.textContent).toBe("Not found"));
    expect(confirm).toHaveBeenCalledTimes(2);
    expect(calls.filter(([m]) => m === "POST").map(([, url]) => url)).toEqual(["/v1/hosts/host-a/actions"]);
  });
});
