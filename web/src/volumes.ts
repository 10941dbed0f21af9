// The volumes pages: the list (with the create form), one volume (extend, attach, detach,
// delete, its snapshots), and the Volumes section of an instance's page. All follow the live stream.
import type { Volume } from "./api";
import { h, mount } from "./dom";
import { errorBox } from "./errors";
import { followVolumes, VolumeSet } from "./live";
import type { Context } from "./pages";
import { href } from "./route";
import { snapshotSection } from "./snapshots";
import { onBehalf, tenantField } from "./tenantpick";
import { badge, button, field, row } from "./widgets";

/** What a volume is attached to, as a link to each instance (by name when it is known). */
export function attachedTo(ctx: Context, volume: Volume): Node | string {
  if (volume.attachments.length === 0) return "—";
  return h("span", {}, ...volume.attachments.flatMap((a, i) => [
    i > 0 ? ", " : "",
    h("a", { href: href({ page: "instance", id: a.instance_id }) },
      ctx.store.instances.get(a.instance_id)?.name ?? a.instance_id),
    ` (${a.device})`,
  ]));
}

export async function volumesPage(ctx: Context): Promise<void> {
  const volumes = new VolumeSet(ctx.client);
  const body = h("tbody");
  const draw = (): void => {
    const rows = volumes.sorted().map((v) => h("tr", { "data-id": v.id },
      h("td", {}, h("a", { href: href({ page: "volume", id: v.id }) }, v.name)),
      h("td", {}, badge(v.status)),
      h("td", {}, `${v.size_gb} GB`),
      h("td", {}, attachedTo(ctx, v)),
    ));
    mount(body, ...(rows.length ? rows : [h("tr", {}, h("td", { colspan: "4" }, "No volumes yet."))]));
  };
  const message = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "form inline", id: "create-volume" },
    field("Name", h("input", { name: "name", id: "volume-name", required: true, autocomplete: "off" })),
    field("Size (GB)", h("input", { name: "size_gb", id: "volume-size", type: "number", min: "1",
      value: "1", required: true })),
    await tenantField(ctx, "volume-tenant"),
    h("button", { type: "submit" }, "Create volume"),
  ) as HTMLFormElement;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
    ctx.client.createVolume(onBehalf(form, { name: String(data.get("name") ?? ""), size_gb: Number(data.get("size_gb")) }))
      .then((created) => {
        volumes.byId.set(created.id, created);
        draw();
        form.reset();
        mount(message);
      })
      .catch((error: unknown) => mount(message, errorBox(error, form)));
  });
  await followVolumes(ctx, volumes, draw);
  mount(ctx.root, h("h1", {}, "Volumes"), message, form,
    h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ...["Name", "Status", "Size", "Attached to"].map((c) => h("th", {}, c)))),
      body));
}

export async function volumePage(ctx: Context, id: string): Promise<void> {
  const volumes = new VolumeSet(ctx.client);
  const details = h("dl", { class: "details" });
  const actions = h("div", { class: "actions" });
  const message = h("div", { "aria-live": "polite" });
  const title = h("h1");
  const size = h("input", { name: "size_gb", id: "extend-size", type: "number", min: "1", required: true });
  const extend = h("form", { class: "form inline", id: "extend" }, field("New size (GB)", size),
    h("button", { type: "submit" }, "Extend")) as HTMLFormElement;
  const target = h("select", { name: "instance", id: "attach-instance" });
  const attach = h("form", { class: "form inline", id: "attach" }, field("Instance", target),
    h("button", { type: "submit" }, "Attach")) as HTMLFormElement;
  const run = (form: HTMLFormElement | undefined, call: () => Promise<Volume>): void => {
    form?.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
    call().then((answer) => {
      mount(message);
      volumes.byId.set(answer.id, answer);
      draw();
    }).catch((error: unknown) => mount(message, errorBox(error, form)));
  };
  const snapshots = snapshotSection(ctx, id, message, () => {
    volumes.refresh(id).then(() => draw()).catch((error: unknown) => mount(message, errorBox(error)));
  });
  const draw = (): void => {
    const volume = volumes.byId.get(id);
    if (!volume) {
      mount(details, ...row("Status", "deleted"));
      mount(actions);
      return;
    }
    mount(title, volume.name);
    snapshots.draw(volume);
    mount(details,
      ...row("Status", badge(volume.status)),
      ...row("Size", `${volume.size_gb} GB`),
      ...row("Attached to", attachedTo(ctx, volume)),
      ...(volume.fault ? row("Fault", volume.fault) : []),
      ...row("Id", volume.id));
    const idle = volume.status === "available" || volume.status === "in-use";
    const mine = volume.attachments.filter((a) => a.instance_id !== volume.boot_of);
    mount(actions,
      ...mine.map((a) => button(`Detach from ${ctx.store.instances.get(a.instance_id)?.name ?? a.instance_id}`,
        volume.status !== "in-use", () => run(undefined, () => ctx.client.detachVolume(a.instance_id, id)))),
      button("Delete", !["available", "error"].includes(volume.status), () => {
        if (!window.confirm(`Delete volume ${volume.name}? Its data is lost.`)) return;
        run(undefined, () => ctx.client.deleteVolume(id));
      }, "danger"));
    size.setAttribute("min", String(volume.size_gb + 1));
    (extend.querySelector("button") as HTMLButtonElement).disabled = !idle;
    const choices = ctx.store.sorted().filter((i) => !["ERROR", "DELETING"].includes(i.status));
    const chosen = target.querySelector("option:checked")?.getAttribute("value");
    mount(target, ...choices.map((i) => h("option", { value: i.id, selected: i.id === chosen }, i.name)));
    (attach.querySelector("button") as HTMLButtonElement).disabled =
      volume.status !== "available" || choices.length === 0;
  };
  extend.addEventListener("submit", (event) => {
    event.preventDefault();
    run(extend, () => ctx.client.extendVolume(id, Number((size as HTMLInputElement).value)));
  });
  attach.addEventListener("submit", (event) => {
    event.preventDefault();
    run(attach, () => ctx.client.attachVolume((target as HTMLSelectElement).value, id));
  });
  await volumes.refresh(id);
  if (!volumes.byId.has(id)) await ctx.client.getVolume(id); // the 404's problem, shown as such
  await followVolumes(ctx, volumes, draw);
  mount(ctx.root, h("p", {}, h("a", { href: href({ page: "volumes" }) }, "← Volumes")), title, actions,
    message, h("section", {}, h("h2", {}, "Details"), details),
    snapshots.element,
    h("section", {}, h("h2", {}, "Extend"), extend),
    h("section", {}, h("h2", {}, "Attach to an instance"), attach));
}

/** The instance page's Volumes section: what is attached to it, live. */
export function instanceVolumes(ctx: Context, id: string): HTMLElement {
  const volumes = new VolumeSet(ctx.client);
  const list = h("ul", { class: "volumes" });
  const draw = (): void => {
    const attached = volumes.attachedTo(id).map(([v, a]) => h("li", { "data-id": v.id },
      h("a", { href: href({ page: "volume", id: v.id }) }, v.name), ` ${a.device}, ${v.size_gb} GB `,
      badge(v.status)));
    mount(list, ...(attached.length ? attached : [h("li", { class: "muted" }, "None attached.")]));
  };
  void followVolumes(ctx, volumes, draw).catch((error: unknown) => mount(list, errorBox(error)));
  return h("section", {}, h("h2", {}, "Volumes"), list,
    h("p", {}, h("a", { href: href({ page: "volumes" }) }, "Attach a volume…")));
}
