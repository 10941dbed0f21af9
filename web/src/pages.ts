// The pages: the instances list, an instance, the create form, the login form.
import type { Client, Instance, InstanceEvent } from "./api";
import { consoleSection } from "./consolePanel";
import { h, mount } from "./dom";
import { errorBox } from "./errors";
import { href } from "./route";
import { KeyedRows } from "./rows";
import { tenantField } from "./tenantpick";
import type { Store } from "./store";
import { timelineEntry } from "./store";
import { instanceVolumes } from "./volumes";
import { button, field, row } from "./widgets";

export interface Context {
  client: Client;
  store: Store;
  root: HTMLElement;
  go: (hash: string) => void;
  /** Whether the token is an admin's (hosts, every tenant's resources). */
  admin: Promise<boolean>;
  /** Called when the page is left: the page's listeners are removed. */
  onLeave: (undo: () => void) => void;
}

function statusBadge(instance: Instance): HTMLElement {
  return h("span", { class: `status status-${instance.status.toLowerCase()}` }, instance.status);
}

function addresses(instance: Instance): string {
  return instance.addresses.map((a) => a.ip).join(", ") || "—";
}

export function instancesPage(ctx: Context): void {
  const body = h("tbody");
  const rows = new KeyedRows(body, () => ctx.store.sorted(), (i) =>
    h(
      "tr",
      { "data-id": i.id },
      h("td", {}, h("a", { href: href({ page: "instance", id: i.id }) }, i.name)),
      h("td", {}, statusBadge(i)),
      h("td", {}, i.flavor.name),
      h("td", {}, addresses(i)),
      h("td", { class: "wide" }, i.host ?? "—"),
    ), () => h("tr", {}, h("td", { colspan: "5" }, "No instances yet.")));
  rows.draw();
  ctx.onLeave(ctx.store.listen(() => rows.request()));
  mount(
    ctx.root,
    h(
      "div",
      { class: "bar" },
      h("h1", {}, "Instances"),
      h("a", { class: "button", href: href({ page: "create" }) }, "Create instance"),
    ),
    h(
      "table",
      { class: "list" },
      h(
        "thead",
        {},
        h("tr", {}, ...["Name", "Status", "Flavor", "Addresses"].map((c) => h("th", {}, c)),
          h("th", { class: "wide" }, "Host")),
      ),
      body,
    ),
  );
}

export async function instancePage(ctx: Context, id: string): Promise<void> {
  const instance = await ctx.client.getInstance(id);
  const history = await ctx.client.listInstanceEvents(id);
  ctx.store.apply({ event_id: "", type: "", kind: "instance", id, tenant_id: null,
    occurred_at: instance.updated_at, instance });
  const details = h("dl", { class: "details" });
  const actions = h("div", { class: "actions" });
  const message = h("div", { "aria-live": "polite" });
  const timeline = h("ol", { class: "timeline" }, ...history.map(entryItem));
  const draw = (): void => {
    const current = ctx.store.instances.get(id) ?? instance;
    mount(
      details,
      ...row("Status", statusBadge(current)),
      ...row("Flavor", `${current.flavor.name} (${current.flavor.vcpus} vCPU, ${current.flavor.ram_mb} MiB)`),
      ...row("Addresses", h("ul", {}, ...current.addresses.map((a) => h("li", {}, `${a.ip} on ${a.network} (${a.mac})`)))),
      ...row("Floating IPs", h("span", { class: "floating-ips" },
        (current.floating_ips ?? []).map((f) => f.ip ?? "…").join(", ") || "—")),
      ...row("Host", current.host ?? "—"),
      ...row("Image", current.image ?? "—"),
      ...row("Key", current.key_name ?? "—"),
      current.fault ? row("Fault", current.fault)[0] : null,
      current.fault ? row("Fault", current.fault)[1] : null,
    );
    mount(
      actions,
      button("Start", current.status !== "STOPPED", () => act(ctx, id, "start", message)),
      button("Stop", current.status !== "RUNNING", () => act(ctx, id, "stop", message)),
      button("Reboot", current.status !== "RUNNING", () => act(ctx, id, "reboot", message)),
      button("Delete", current.status === "DELETING" || current.status === "DELETED", async () => {
        if (!window.confirm(`Delete instance ${current.name}? This cannot be undone.`)) return;
        await act(ctx, id, "delete", message);
      }, "danger"),
    );
  };
  draw();
  ctx.onLeave(
    ctx.store.listen((change) => {
      // A floating IP's change names the floating IP, not the instance: read the instance again.
      if (change?.kind === "floating_ip") void refetch(ctx, id);
      draw();
      const entry = change ? timelineEntry(change, id) : null;
      if (entry) timeline.append(entryItem(entry));
    }),
  );
  mount(
    ctx.root,
    h("p", {}, h("a", { href: href({ page: "instances" }) }, "← Instances")),
    h("h1", {}, instance.name),
    actions,
    message,
    h("section", {}, h("h2", {}, "Details"), details),
    instanceVolumes(ctx, id),
    consoleSection(ctx, id),
    h("section", {}, h("h2", {}, "Timeline"), timeline),
  );
}

async function refetch(ctx: Context, id: string): Promise<void> {
  try {
    const instance = await ctx.client.getInstance(id);
    ctx.store.apply({ event_id: "", type: "", kind: "instance", id, tenant_id: null,
      occurred_at: instance.updated_at, instance });
  } catch (error) {
    console.warn("instance", error);
  }
}

async function act(ctx: Context, id: string, action: "start" | "stop" | "reboot" | "delete",
  message: HTMLElement): Promise<void> {
  try {
    const answer = action === "delete"
      ? await ctx.client.deleteInstance(id)
      : await ctx.client.actOnInstance(id, action);
    ctx.store.apply({ event_id: "", type: "", kind: "instance", id, tenant_id: null,
      occurred_at: answer.updated_at, instance: answer });
    mount(message);
  } catch (error) {
    mount(message, errorBox(error));
  }
}

function entryItem(entry: InstanceEvent): HTMLElement {
  return h(
    "li",
    {},
    h("time", { datetime: entry.occurred_at }, new Date(entry.occurred_at).toLocaleTimeString()),
    " ",
    h("strong", {}, entry.type),
    " ",
    h("span", { class: "muted" }, entry.producer),
  );
}

export async function createPage(ctx: Context): Promise<void> {
  const [flavors, images, networks, keys] = await Promise.all([
    ctx.client.listFlavors(), ctx.client.listImages(), ctx.client.listNetworks(), ctx.client.listKeypairs(),
  ]);
  const message = h("div");
  const optional = (name: string, label: string, items: { value: string; text: string }[]): HTMLElement =>
    field(label, h("select", { name, id: name }, h("option", { value: "" }, "(none)"),
      ...items.map((i) => h("option", { value: i.value }, i.text))));
  const form = h(
    "form",
    { class: "form" },
    field("Name", h("input", { name: "name", id: "name", required: true, autocomplete: "off" })),
    field("Flavor", h("select", { name: "flavor", id: "flavor" },
      ...flavors.items.map((f) => h("option", { value: f.name }, `${f.name} — ${f.vcpus} vCPU, ${f.ram_mb} MiB, ${f.disk_gb} GB`)))),
    optional("image", "Image", images.items.map((i) => ({ value: i.id, text: i.name }))),
    optional("network", "Network", networks.items.map((n) => ({ value: n.id, text: n.name }))),
    optional("key_name", "Key", keys.items.map((k) => ({ value: k.name, text: k.name }))),
    await tenantField(ctx, "tenant_id"),
    h("button", { type: "submit" }, "Create"),
  ) as HTMLFormElement;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body: Record<string, string> = {};
    for (const [k, v] of data.entries()) if (typeof v === "string" && v !== "") body[k] = v;
    form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
    ctx.client
      .createInstance({ name: body.name ?? "", flavor: body.flavor ?? "", ...body })
      .then((created) => ctx.go(href({ page: "instance", id: created.id })))
      .catch((error: unknown) => mount(message, errorBox(error, form)));
  });
  mount(ctx.root, h("h1", {}, "Create an instance"), message, form);
  (form.querySelector("input") as HTMLInputElement).focus();
}

export function loginPage(root: HTMLElement, onToken: (token: string) => void): void {
  const input = h("input", { type: "password", name: "token", id: "token", required: true,
    autocomplete: "off" }) as HTMLInputElement;
  const form = h("form", { class: "form" }, field("API token", input),
    h("button", { type: "submit" }, "Log in")) as HTMLFormElement;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onToken(input.value);
  });
  mount(root, h("h1", {}, "Log in"),
    h("p", { class: "muted" }, "The token is kept in this tab only, and sent in a header, never in a URL."), form);
  input.focus();
}
