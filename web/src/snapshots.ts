// A volume's page's Snapshots section: its snapshots (live: a snapshot's events are its
// volume's, so the volume page's stream redraws them), take one (a name), delete one
// (confirmed), and make a new volume from an available one (a copy-on-write clone).
import type { Volume, VolumeSnapshot } from "./api";
import { h, mount } from "./dom";
import { errorBox } from "./errors";
import { fill, table } from "./forms";
import type { Context } from "./pages";
import { href } from "./route";
import { badge, button, field } from "./widgets";

/** The snapshots a new volume can be made from: available ones, oldest first. */
export function clonable(volume: Volume): VolumeSnapshot[] {
  return volume.snapshots.filter((s) => s.status === "available");
}

export interface SnapshotSection {
  element: HTMLElement;
  draw: (volume: Volume) => void;
}

/** `taken` is told of a snapshot the API accepted (the page may show it before the stream does). */
export function snapshotSection(ctx: Context, volumeId: string, message: HTMLElement,
  taken: (snapshot: VolumeSnapshot) => void): SnapshotSection {
  const body = h("tbody");
  const name = h("input", { name: "name", id: "snapshot-name", required: true, autocomplete: "off" });
  const take = h("form", { class: "form inline", id: "take-snapshot" }, field("Name", name),
    h("button", { type: "submit" }, "Take snapshot")) as HTMLFormElement;
  const source = h("select", { name: "snapshot", id: "clone-snapshot" });
  const cloneName = h("input", { name: "name", id: "clone-name", required: true, autocomplete: "off" });
  const cloneSize = h("input", { name: "size_gb", id: "clone-size", type: "number", min: "1", required: true });
  const clone = h("form", { class: "form inline", id: "clone" }, field("Snapshot", source),
    field("Name", cloneName), field("Size (GB)", cloneSize),
    h("button", { type: "submit" }, "Create volume")) as HTMLFormElement;
  let current: Volume | undefined;
  const clear = (form: HTMLFormElement): void =>
    form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  take.addEventListener("submit", (event) => {
    event.preventDefault();
    clear(take);
    ctx.client.createSnapshot(volumeId, (name as HTMLInputElement).value.trim())
      .then((snapshot) => {
        mount(message);
        take.reset();
        taken(snapshot);
      }).catch((error: unknown) => mount(message, errorBox(error, take)));
  });
  clone.addEventListener("submit", (event) => {
    event.preventDefault();
    clear(clone);
    ctx.client.createVolume({ name: (cloneName as HTMLInputElement).value.trim(),
      size_gb: Number((cloneSize as HTMLInputElement).value), snapshot: (source as HTMLSelectElement).value })
      .then((created) => ctx.go(href({ page: "volume", id: created.id })))
      .catch((error: unknown) => mount(message, errorBox(error, clone)));
  });
  source.addEventListener("change", () => {
    const chosen = current?.snapshots.find((s) => s.id === (source as HTMLSelectElement).value);
    if (chosen) sizeFor(chosen);
  });
  const sizeFor = (snapshot: VolumeSnapshot): void => {
    cloneSize.setAttribute("min", String(snapshot.size_gb));
    const input = cloneSize as HTMLInputElement;
    if (!input.value || Number(input.value) < snapshot.size_gb) input.value = String(snapshot.size_gb);
  };
  const remove = (volume: Volume, snapshot: VolumeSnapshot): void => {
    if (!window.confirm(`Delete snapshot ${snapshot.name} of ${volume.name}?`)) return;
    ctx.client.deleteSnapshot(volumeId, snapshot.id)
      .then((answer) => {
        mount(message);
        taken(answer);
      }).catch((error: unknown) => mount(message, errorBox(error)));
  };
  const draw = (volume: Volume): void => {
    current = volume;
    fill(body, volume.snapshots.map((s) => h("tr", { "data-id": s.id },
      h("td", {}, s.name),
      h("td", {}, badge(s.status), s.fault ? h("div", { class: "muted" }, s.fault) : ""),
      h("td", {}, `${s.size_gb} GB`),
      h("td", {}, s.created_at ? h("time", { datetime: s.created_at }, s.created_at.slice(0, 19).replace("T", " ")) : "—"),
      h("td", {}, button("Delete", s.status !== "available" && s.status !== "error",
        () => remove(volume, s), "danger")))), "No snapshots yet.", 5);
    (take.querySelector("button") as HTMLButtonElement).disabled =
      volume.status !== "available" && volume.status !== "in-use";
    const choices = clonable(volume);
    const chosen = (source as HTMLSelectElement).value;
    mount(source, ...choices.map((s) => h("option", { value: s.id, selected: s.id === chosen }, s.name)));
    const picked = choices.find((s) => s.id === (source as HTMLSelectElement).value);
    if (picked) sizeFor(picked);
    (clone.querySelector("button") as HTMLButtonElement).disabled = choices.length === 0;
  };
  const element = h("section", { id: "snapshots" }, h("h2", {}, "Snapshots"),
    table(["Name", "Status", "Size", "Taken", ""], body), take,
    h("h3", {}, "New volume from a snapshot"), clone,
    h("p", { class: "muted" }, "A copy-on-write clone: at least the size the volume had when the snapshot was taken. ",
      h("a", { href: href({ page: "volumes" }) }, "All volumes")));
  return { element, draw };
}
