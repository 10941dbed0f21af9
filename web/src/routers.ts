// The routers pages (a lazy chunk): the list with the create form (on an external network),
// and one router with its interfaces: add one (a network of the tenant's), remove one
// (confirmed), delete the router (confirmed). Both follow the live stream.
import { h, mount } from "./dom";
import { confirmed, fill, follow, message, ofKind, onSubmit, table } from "./forms";
import { all, type ExternalNetwork, type Network, networks, type Router, routers } from "./netapi";
import type { Context } from "./pages";
import { href } from "./route";
import { badge, field, row } from "./widgets";

const nameOf = (list: { id: string; name: string }[], id: string): string =>
  list.find((x) => x.id === id)?.name ?? id;

export async function routersPage(ctx: Context): Promise<void> {
  const body = h("tbody");
  const said = message();
  const external = h("select", { name: "external_network_id", id: "router-external" });
  let outside: ExternalNetwork[] = [];
  const load = async (): Promise<void> => {
    const [found, ext] = await Promise.all([all((cursor) => routers.list(ctx.client, cursor)),
      networks.external(ctx.client)]);
    outside = ext.items;
    const chosen = (external as HTMLSelectElement).value;
    mount(external, ...outside.filter((e) => e.status === "ACTIVE")
      .map((e) => h("option", { value: e.id, selected: e.id === chosen }, `${e.name} (${e.cidr})`)));
    fill(body, found.filter((r) => r.status !== "DELETED").map((r) => h("tr", { "data-id": r.id },
      h("td", {}, h("a", { href: href({ page: "router", id: r.id }) }, r.name)),
      h("td", {}, badge(r.status)),
      h("td", {}, nameOf(outside, r.external_network_id)),
      h("td", {}, r.external_ip ?? "—"),
      h("td", {}, String(r.interfaces.length)))),
    "No routers yet.", 5);
  };
  const form = h("form", { class: "form inline", id: "create-router" },
    field("Name", h("input", { name: "name", id: "router-name", required: true, autocomplete: "off" })),
    field("External network", external),
    h("button", { type: "submit" }, "Create router")) as HTMLFormElement;
  onSubmit(form, said, (data) => routers.create(ctx.client,
    { name: data.name ?? "", external_network_id: data.external_network_id ?? "" }), () => void load());
  await follow(ctx, ofKind("router"), load);
  mount(ctx.root, h("h1", {}, "Routers"), said, form,
    table(["Name", "Status", "External network", "External IP", "Interfaces"], body));
}

export async function routerPage(ctx: Context, id: string): Promise<void> {
  const title = h("h1");
  const actions = h("div", { class: "actions" });
  const details = h("dl", { class: "details" });
  const interfaces = h("tbody");
  const said = message();
  const pick = h("select", { name: "network_id", id: "interface-network" });
  const form = h("form", { class: "form inline", id: "add-interface" }, field("Network", pick),
    h("button", { type: "submit" }, "Add interface")) as HTMLFormElement;
  const draw = (router: Router | null, mine: Network[], outside: ExternalNetwork[]): void => {
    if (!router) {
      mount(details, ...row("Status", "deleted"));
      mount(actions);
      form.hidden = true;
      return;
    }
    mount(title, router.name);
    mount(details, ...row("Status", badge(router.status)),
      ...row("External network", nameOf(outside, router.external_network_id)),
      ...row("External IP", router.external_ip ?? "—"),
      ...(router.fault ? row("Fault", router.fault) : []), ...row("Id", router.id));
    mount(actions, confirmed("Delete", `Delete router ${router.name}?`, said,
      () => routers.remove(ctx.client, id), () => void load(), router.status === "DELETING"));
    fill(interfaces, router.interfaces.map((i) => h("tr", { "data-network": i.network_id },
      h("td", {}, h("a", { href: href({ page: "network", id: i.network_id }) }, nameOf(mine, i.network_id))),
      h("td", {}, i.gateway_ip ?? "—"), h("td", {}, badge(i.status)),
      h("td", {}, confirmed("Remove", `Remove ${nameOf(mine, i.network_id)} from router ${router.name}?`, said,
        () => routers.detach(ctx.client, id, i.network_id), () => void load())))),
    "No interfaces.", 4);
    const free = mine.filter((n) => n.status === "ACTIVE" && !n.router_id);
    mount(pick, ...free.map((n) => h("option", { value: n.id }, `${n.name} (${n.cidr})`)));
    (form.querySelector("button") as HTMLButtonElement).disabled = free.length === 0;
  };
  const load = async (): Promise<void> => {
    const [router, mine, outside] = await Promise.all([
      routers.get(ctx.client, id).catch((error: unknown) => {
        if (!title.textContent) throw error; // a first 404: shown as such
        return null;
      }),
      all((cursor) => networks.list(ctx.client, cursor)),
      networks.external(ctx.client),
    ]);
    draw(router, mine, outside.items);
  };
  onSubmit(form, said, (data) => routers.attach(ctx.client, id, data.network_id ?? ""), () => void load());
  await follow(ctx, ofKind("router", "network"), load);
  mount(ctx.root, h("p", {}, h("a", { href: href({ page: "routers" }) }, "← Routers")), title, actions, said,
    h("section", {}, h("h2", {}, "Details"), details),
    h("section", {}, h("h2", {}, "Interfaces"), table(["Network", "Gateway", "Status", ""], interfaces)),
    h("section", {}, h("h2", {}, "Add an interface"), form));
}
