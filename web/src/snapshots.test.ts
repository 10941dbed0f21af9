// A volume's snapshots: the client's calls and the volume page's Snapshots section.
import { describe, expect, it, vi } from "vitest";
import { Client, type Volume, type VolumeSnapshot } from "./api";
import type { Context } from "./pages";
import { clonable, snapshotSection } from "./snapshots";
import { Store } from "./store";

const VOL = "a41c0000-0000-4000-8000-000000000000";
const SNAP = "5d2e0000-0000-4000-8000-000000000000";
const NEW = "b0b00000-0000-4000-8000-000000000000";

function recorder(answer: (method: string, url: string) => unknown) {
  const calls: [string, string, unknown][] = [];
  const client = new Client("t", async (input, init) => {
    const method = init?.method ?? "GET";
    calls.push([method, String(input), init?.body ? JSON.parse(String(init.body)) : undefined]);
    const body = answer(method, String(input));
    if (body instanceof Response) return body;
    return new Response(JSON.stringify(body), { status: 202 });
  });
  return { client, calls };
}

const snapshot = (over: Partial<VolumeSnapshot> = {}): VolumeSnapshot => ({
  id: SNAP, volume_id: VOL, name: "nightly", status: "available", size_gb: 2, fault: null,
  created_at: "2026-12-01T00:00:01Z", ...over,
});

const volume = (over: Partial<Volume> = {}): Volume => ({
  id: VOL, name: "data", tenant_id: "t", status: "available", size_gb: 2, boot_of: null, snapshots: [],
  attachments: [], fault: null, created_at: "2026-12-01T00:00:00Z", updated_at: "2026-12-01T00:00:00Z",
  ...over,
});

function context(client: Client, go: (hash: string) => void = () => undefined): Context {
  return { client, store: new Store(), root: document.createElement("main"), go,
    admin: Promise.resolve(false), onLeave: () => undefined };
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

describe("the snapshot calls", () => {
  it("ask the documented routes with the documented bodies", async () => {
    const { client, calls } = recorder(() => snapshot());
    await client.createSnapshot(VOL, "nightly");
    await client.deleteSnapshot(VOL, SNAP);
    await client.createVolume({ name: "copy", size_gb: 3, snapshot: SNAP });
    expect(calls).toEqual([
      ["POST", `/v1/volumes/${VOL}/snapshots`, { name: "nightly" }],
      ["DELETE", `/v1/volumes/${VOL}/snapshots/${SNAP}`, undefined],
      ["POST", "/v1/volumes", { name: "copy", size_gb: 3, snapshot: SNAP }],
    ]);
  });
});

describe("the Snapshots section", () => {
  it("lists the volume's snapshots and offers only available ones to clone", () => {
    const { client } = recorder(() => ({}));
    const section = snapshotSection(context(client), VOL, document.createElement("div"), () => undefined);
    section.draw(volume());
    expect(section.element.querySelector("tbody")?.textContent).toContain("No snapshots yet.");
    const taking = snapshot({ id: "c0000000-0000-4000-8000-000000000000", name: "new", status: "creating" });
    section.draw(volume({ snapshots: [snapshot(), taking] }));
    const rows = section.element.querySelectorAll("tbody tr");
    expect([...rows].map((r) => r.getAttribute("data-id"))).toEqual([SNAP, taking.id]);
    expect(rows[1]?.textContent).toContain("creating");
    expect((rows[1]?.querySelector("button") as HTMLButtonElement).disabled).toBe(true);
    expect(clonable(volume({ snapshots: [snapshot(), taking] })).map((s) => s.id)).toEqual([SNAP]);
    const options = section.element.querySelectorAll("#clone-snapshot option");
    expect([...options].map((o) => o.getAttribute("value"))).toEqual([SNAP]);
    expect((section.element.querySelector("#clone-size") as HTMLInputElement).value).toBe("2");
  });

  it("takes a snapshot by name and tells the page, and refuses one on a busy volume", async () => {
    const { client, calls } = recorder(() => snapshot({ status: "creating" }));
    const taken = vi.fn();
    const section = snapshotSection(context(client), VOL, document.createElement("div"), taken);
    section.draw(volume());
    (section.element.querySelector("#snapshot-name") as HTMLInputElement).value = "nightly";
    (section.element.querySelector("#take-snapshot") as HTMLFormElement).requestSubmit();
    await settle();
    expect(calls).toEqual([["POST", `/v1/volumes/${VOL}/snapshots`, { name: "nightly" }]]);
    expect(taken).toHaveBeenCalledWith(snapshot({ status: "creating" }));
    section.draw(volume({ status: "attaching" }));
    expect((section.element.querySelector("#take-snapshot button") as HTMLButtonElement).disabled).toBe(true);
  });

  it("confirms before deleting, and shows a refusal's title", async () => {
    const refusal = new Response(JSON.stringify({ title: "Snapshot has clones", status: 409,
      detail: "volumes are clones of it" }), { status: 409, headers: { "Content-Type": "application/problem+json" } });
    const { client, calls } = recorder(() => refusal);
    const message = document.createElement("div");
    const section = snapshotSection(context(client), VOL, message, () => undefined);
    section.draw(volume({ snapshots: [snapshot()] }));
    const remove = section.element.querySelector("tbody button") as HTMLButtonElement;
    const ask = vi.spyOn(window, "confirm").mockReturnValueOnce(false).mockReturnValueOnce(true);
    remove.click();
    expect(calls).toEqual([]);
    remove.click();
    await settle();
    expect(ask).toHaveBeenCalledTimes(2);
    expect(calls).toEqual([["DELETE", `/v1/volumes/${VOL}/snapshots/${SNAP}`, undefined]]);
    expect(message.textContent).toContain("Snapshot has clones");
    ask.mockRestore();
  });

  it("makes a volume from a snapshot and opens its page", async () => {
    const { client, calls } = recorder(() => volume({ id: NEW, name: "copy", status: "creating" }));
    const go = vi.fn();
    const section = snapshotSection(context(client, go), VOL, document.createElement("div"), () => undefined);
    section.draw(volume({ snapshots: [snapshot()] }));
    (section.element.querySelector("#clone-name") as HTMLInputElement).value = "copy";
    (section.element.querySelector("#clone-size") as HTMLInputElement).value = "3";
    (section.element.querySelector("#clone") as HTMLFormElement).requestSubmit();
    await settle();
    expect(calls).toEqual([["POST", "/v1/volumes", { name: "copy", size_gb: 3, snapshot: SNAP }]]);
    expect(go).toHaveBeenCalledWith(`#/volumes/${NEW}`);
  });
});
