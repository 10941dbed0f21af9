// The networks pages (a lazy chunk): the list with the create form, and one network with its
// ports and its router attachment. Both follow the live stream.
import { h, mount } from "./dom";
import { errorBox } from "./errors";
import { confirmed, fill, follow, message, ofKind, onSubmit, table } from "./forms";
import { all, networks, type Network, type Port, type Router, routers } from "./netapi";
import type { Context } from "./pages";
import { href } from "./route";
import { onBehalf, tenantField } from "./tenantpick";
import { badge, button, field, row } from "./widgets";

export async function networksPage(ctx: Context): Promise<void> {
  const body = h("tbody");
  const said = message();
  const load = async (): Promise<void> => {
    const found = await all((cursor) => networks.list(ctx.client, cursor));
    fill(body, found.filter((n) => n.status !== "DELETED").map((n) => h("tr", { "data-id": n.id },
      h("td", {}, h("a", { href: href({ page: "network", id: n.id }) }, n.name)),
      h("td", {}, badge(n.status)),
      h("td", {}, n.cidr),
      h("td", {}, n.gateway_ip ?? "—"),
      h("td", {}, n.router_id ? h("a", { href: href({ page: "router", id: n.router_id }) }, "attached") : "—"))),
    "No networks yet.", 5);
  };
  const form = h("form", { class: "form inline", id: "create-network" },
    field("Name", h("input", { name: "name", id: "network-name", required: true, autocomplete: "off" })),
    field("CIDR (IPv4 or IPv6)", h("input", { name: "cidr", id: "network-cidr", required: true,
      placeholder: "10.0.0.0/24 or fd00:1::/64" })),
    field("DHCP", h("select", { name: "dhcp", id: "network-dhcp" },
      h("option", { value: "on" }, "on"), h("option", { value: "off" }, "off"))),
    await tenantField(ctx, "network-tenant"),
    h("button", { type: "submit" }, "Create network")) as HTMLFormElement;
  onSubmit(form, said, (data) => networks.create(ctx.client, onBehalf(form,
    { name: data.name ?? "", cidr: data.cidr ?? "", dhcp: data.dhcp !== "off" })), () => void load());
  await follow(ctx, ofKind("network"), load);
  mount(ctx.root, h("h1", {}, "Networks"), said, form,
    table(["Name", "Status", "CIDR", "Gateway", "Router"], body));
}

function portRow(ctx: Context, port: Port): HTMLElement {
  const instance = port.instance_id ? ctx.store.instances.get(port.instance_id) : undefined;
  return h("tr", { "data-id": port.id },
    h("td", {}, port.name || port.id.slice(0, 8)),
    h("td", {}, badge(port.status)),
    h("td", {}, port.ips.join(", ") || "—"),
    h("td", {}, port.mac ?? "—"),
    h("td", {}, port.instance_id
      ? h("a", { href: href({ page: "instance", id: port.instance_id }) }, instance?.name ?? port.instance_id) : "—"),
    h("td", {}, port.floating_ips.map((f) => f.ip ?? "…").join(", ") || "—"));
}

export async function networkPage(ctx: Context, id: string): Promise<void> {
  const title = h("h1");
  const details = h("dl", { class: "details" });
  const actions = h("div", { class: "actions" });
  const attachment = h("div", { class: "attachment" });
  const ports = h("tbody");
  const said = message();
  let current: Network | null = null;
  let known: Router[] = [];
  const draw = (network: Network | null, found: Port[]): void => {
    current = network;
    if (!network) {
      mount(details, ...row("Status", "deleted"));
      mount(actions);
      mount(attachment);
      return;
    }
    mount(title, network.name);
    mount(details, ...row("Status", badge(network.status)), ...row("CIDR", network.cidr),
      ...row("IP version", `IPv${network.ip_version}`), ...row("Gateway", network.gateway_ip ?? "—"),
      ...row("DHCP", network.dhcp ? "on" : "off"),
      ...row("Pools", network.allocation_pools.map((p) => `${p.start} – ${p.end}`).join(", ") || "—"),
      ...row("VXLAN id", network.vni === null ? "—" : String(network.vni)),
      ...(network.fault ? row("Fault", network.fault) : []), ...row("Id", network.id));
    mount(actions, confirmed("Delete", `Delete network ${network.name}?`, said,
      () => networks.remove(ctx.client, id), () => void load(), network.status === "DELETING"));
    const router = known.find((r) => r.id === network.router_id);
    if (network.router_id) {
      mount(attachment, h("p", {}, "Attached to router ",
        h("a", { href: href({ page: "router", id: network.router_id }) }, router?.name ?? network.router_id), " ",
        badge(router?.interfaces.find((i) => i.network_id === id)?.status ?? "…")),
      confirmed("Detach from router", `Detach ${network.name} from its router?`, said,
        () => routers.detach(ctx.client, network.router_id ?? "", id), () => void load()));
    } else {
      const pick = h("select", { name: "router", id: "attach-router" },
        ...known.filter((r) => r.status === "ACTIVE").map((r) => h("option", { value: r.id }, r.name)));
      mount(attachment, h("p", { class: "muted" }, "Not attached to a router."),
        h("div", { class: "form inline" }, field("Router", pick),
          button("Attach to router", known.length === 0 || network.status !== "ACTIVE", () => {
            routers.attach(ctx.client, (pick as HTMLSelectElement).value, id)
              .then(() => { mount(said); void load(); })
              .catch((error: unknown) => mount(said, errorBox(error)));
          })));
    }
    fill(ports, found.filter((p) => p.status !== "DELETED").map((p) => portRow(ctx, p)), "No ports.", 6);
  };
  const load = async (): Promise<void> => {
    const [network, found, list] = await Promise.all([
      networks.get(ctx.client, id).catch((error: unknown) => {
        if (current === null && !title.textContent) throw error; // a first 404: shown as such
        return null;
      }),
      all((cursor) => networks.ports(ctx.client, id, cursor)),
      all((cursor) => routers.list(ctx.client, cursor)),
    ]);
    known = list;
    draw(network, found);
  };
  await follow(ctx, ofKind("network", "port", "router", "floating_ip", "instance"), load);
  mount(ctx.root, h("p", {}, h("a", { href: href({ page: "networks" }) }, "← Networks")), title, actions, said,
    h("section", {}, h("h2", {}, "Details"), details),
    h("section", {}, h("h2", {}, "Router"), attachment),
    h("section", {}, h("h2", {}, "Ports"), table(["Port", "Status", "Addresses", "MAC", "Instance", "Floating IPs"], ports)));
}
