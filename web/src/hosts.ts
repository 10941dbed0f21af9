// The admin's hosts page: hosts by rack, each with its capacity as bars (<meter>: no inline
// style), its state and whether it is scheduled on; disable and enable (confirmed). Live: a
// host's change, or an instance's (claims), reads the list again. Tenants see no link to it.
import type { Host, Resources } from "./api";
import { h, mount } from "./dom";
import { errorBox } from "./errors";
import { reloadOn } from "./live";
import type { Context } from "./pages";
import { badge, button } from "./widgets";

/** Hosts grouped by rack, racks and hosts by name. */
export function byRack(hosts: Host[]): [string, Host[]][] {
  const racks = new Map<string, Host[]>();
  for (const host of hosts) racks.set(host.rack, [...(racks.get(host.rack) ?? []), host]);
  return [...racks.entries()].sort(([a], [b]) => a.localeCompare(b))
    .map(([rack, list]) => [rack, list.sort((a, b) => a.name.localeCompare(b.name))]);
}

const UNITS: [keyof Resources, string, string][] = [
  ["vcpus", "vCPU", ""], ["ram_mb", "RAM", " MiB"], ["disk_gb", "Disk", " GB"],
];

export function capacity(host: Host): HTMLElement {
  return h("div", { class: "capacity" }, ...UNITS.map(([key, label, unit]) => h("label", {},
    h("span", {}, label),
    h("meter", { min: "0", max: String(host.capacity[key]), value: String(host.allocated[key]),
      high: String(host.capacity[key] * 0.85), "data-resource": key }),
    h("span", { class: "muted" }, `${host.allocated[key]} / ${host.capacity[key]}${unit}`))));
}

/** Whether a change may alter what the page shows (a heartbeat changes nothing here). */
export function hostsChanged(change: { kind: string | null; type: string } | null): boolean {
  return change === null || (change.kind === "host" && change.type !== "HostHeartbeat")
    || change.kind === "instance";
}

export async function hostsPage(ctx: Context): Promise<void> {
  if (!(await ctx.admin)) {
    mount(ctx.root, h("h1", {}, "Hosts"),
      h("p", { class: "error", role: "alert" }, "Admins only: log in with an admin token to see the hosts."));
    return;
  }
  const racks = h("div", { class: "racks" });
  const message = h("div", { "aria-live": "polite" });
  const act = (host: Host, action: "disable" | "enable"): void => {
    const question = action === "disable"
      ? `Disable host ${host.name}? It keeps its instances but gets no new ones.`
      : `Enable host ${host.name}? The scheduler places new instances on it again.`;
    if (!window.confirm(question)) return;
    ctx.client.actOnHost(host.name, action, action === "disable" ? "disabled from the web console" : "")
      .then(() => mount(message))
      .catch((error: unknown) => mount(message, errorBox(error)));
  };
  const draw = (hosts: Host[]): void => {
    mount(racks, ...byRack(hosts).map(([rack, list]) => h("section", { class: "rack", "data-rack": rack },
      h("h2", {}, `Rack ${rack}`),
      h("table", { class: "list" },
        h("thead", {}, h("tr", {}, ...["Host", "State", "Scheduling", "Capacity used", ""].map((c) => h("th", {}, c)))),
        h("tbody", {}, ...list.map((host) => h("tr", { "data-host": host.name },
          h("td", {}, host.name, h("div", { class: "muted" }, host.zone)),
          h("td", {}, badge(host.state)),
          h("td", { class: "scheduling" }, host.enabled ? badge("enabled")
            : h("span", {}, badge("disabled"), host.disabled_reason ? ` ${host.disabled_reason}` : "")),
          h("td", {}, capacity(host)),
          h("td", {}, host.enabled
            ? button("Disable", false, () => act(host, "disable"), "danger")
            : button("Enable", false, () => act(host, "enable"))))))))));
  };
  const load = async (): Promise<void> => draw((await ctx.client.listHosts()).items);
  await load();
  reloadOn(ctx, hostsChanged, load);
  mount(ctx.root, h("h1", {}, "Hosts"), message, racks);
}
