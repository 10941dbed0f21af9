// The floating IPs page (a lazy chunk): allocate one on an external network, associate it
// with a port (picked by its instance), dissociate it, release it (confirmed). Live.
import type { Instance } from "./api";
import { h, mount } from "./dom";
import { errorBox } from "./errors";
import { confirmed, fill, follow, message, ofKind, onSubmit, table } from "./forms";
import { all, type FloatingIp, floatingIps, networks, type Port } from "./netapi";
import type { Context } from "./pages";
import { href } from "./route";
import { badge, button, field } from "./widgets";

/** How a port is offered: by its instance's name when it has one, with its addresses. */
export function portLabel(port: Port, instances: Map<string, Instance>): string {
  const owner = port.instance_id ? instances.get(port.instance_id)?.name ?? port.instance_id : port.name || port.id;
  return `${owner} (${port.ips.join(", ") || "no address"})`;
}

export async function floatingIpsPage(ctx: Context): Promise<void> {
  const body = h("tbody");
  const said = message();
  const external = h("select", { name: "external_network_id", id: "fip-external" });
  const run = (call: Promise<unknown>): void => {
    call.then(() => { mount(said); void load(); }).catch((error: unknown) => mount(said, errorBox(error)));
  };
  const target = (fip: FloatingIp, ports: Port[]): HTMLElement => {
    if (fip.port_id) {
      const port = ports.find((p) => p.id === fip.port_id);
      return h("span", {}, port ? portLabel(port, ctx.store.instances) : fip.fixed_ip ?? fip.port_id, " ",
        button("Dissociate", false, () => run(floatingIps.associate(ctx.client, fip.id, null))));
    }
    const free = ports.filter((p) => p.floating_ips.length === 0 && p.status !== "DELETING" && p.ips.length > 0);
    const pick = h("select", { name: "port_id", "aria-label": `Port for ${fip.ip ?? fip.id}`, class: "fip-port" },
      ...free.map((p) => h("option", { value: p.id }, portLabel(p, ctx.store.instances))));
    return h("span", {}, pick, " ", button("Associate", free.length === 0 || fip.ip === null,
      () => run(floatingIps.associate(ctx.client, fip.id, (pick as HTMLSelectElement).value))));
  };
  const load = async (): Promise<void> => {
    const [found, ports, ext] = await Promise.all([all((cursor) => floatingIps.list(ctx.client, cursor)),
      all((cursor) => networks.allPorts(ctx.client, cursor)), networks.external(ctx.client)]);
    const chosen = (external as HTMLSelectElement).value;
    mount(external, ...ext.items.filter((e) => e.status === "ACTIVE")
      .map((e) => h("option", { value: e.id, selected: e.id === chosen }, `${e.name} (${e.cidr})`)));
    fill(body, found.filter((f) => f.status !== "DELETED").map((f) => h("tr", { "data-id": f.id },
      h("td", {}, f.ip ?? "…"), h("td", {}, badge(f.status)),
      h("td", {}, ext.items.find((e) => e.id === f.external_network_id)?.name ?? f.external_network_id),
      h("td", { class: "target" }, target(f, ports)),
      h("td", {}, confirmed("Release", `Release floating IP ${f.ip ?? f.id}? Its address may go to someone else.`,
        said, () => floatingIps.release(ctx.client, f.id), () => void load(), f.status === "DELETING")))),
    "No floating IPs yet.", 5);
  };
  const form = h("form", { class: "form inline", id: "allocate-fip" }, field("External network", external),
    h("button", { type: "submit" }, "Allocate floating IP")) as HTMLFormElement;
  onSubmit(form, said, (data) => floatingIps.allocate(ctx.client, data.external_network_id ?? ""), () => void load());
  await follow(ctx, ofKind("floating_ip", "port"), load);
  mount(ctx.root, h("h1", {}, "Floating IPs"), said, form,
    table(["Address", "Status", "External network", "Points at", ""], body),
    h("p", { class: "muted" }, "A port's network needs a router on the floating IP's external network: ",
      h("a", { href: href({ page: "routers" }) }, "Routers"), "."));
}
