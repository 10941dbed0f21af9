// The security groups pages (a lazy chunk): the list with the create form, and one group with
// its rules: add a rule (direction, protocol, ports, a remote CIDR or group), delete one
// (confirmed). The default group's rules are fixed: the page offers no change to them.
import { h, mount } from "./dom";
import { confirmed, fill, follow, message, ofKind, onSubmit, table } from "./forms";
import { all, type Rule, type RuleBody, type SecurityGroup, securityGroups } from "./netapi";
import type { Context } from "./pages";
import { href } from "./route";
import { badge, field, row } from "./widgets";

export async function securityGroupsPage(ctx: Context): Promise<void> {
  const body = h("tbody");
  const said = message();
  const load = async (): Promise<void> => {
    const found = await all((cursor) => securityGroups.list(ctx.client, cursor));
    fill(body, found.map((g) => h("tr", { "data-id": g.id },
      h("td", {}, h("a", { href: href({ page: "security-group", id: g.id }) }, g.name), " ",
        g.default ? badge("default") : ""),
      h("td", {}, String(g.rules.length)),
      h("td", {}, g.default ? "" : confirmed("Delete", `Delete security group ${g.name}?`, said,
        () => securityGroups.remove(ctx.client, g.id), () => void load())))),
    "No security groups.", 3);
  };
  const form = h("form", { class: "form inline", id: "create-group" },
    field("Name", h("input", { name: "name", id: "group-name", required: true, autocomplete: "off" })),
    h("button", { type: "submit" }, "Create security group")) as HTMLFormElement;
  onSubmit(form, said, (data) => securityGroups.create(ctx.client, { name: data.name ?? "" }),
    (group) => ctx.go(href({ page: "security-group", id: group.id })));
  await follow(ctx, ofKind("security_group"), load);
  mount(ctx.root, h("h1", {}, "Security groups"), said, form, table(["Name", "Rules", ""], body));
}

/** A rule's ports as people write them: `22`, `8000-8080`, `any`. */
export function portRange(rule: Pick<Rule, "port_min" | "port_max">): string {
  if (rule.port_min == null) return "any";
  return rule.port_max == null || rule.port_max === rule.port_min ? String(rule.port_min)
    : `${rule.port_min}-${rule.port_max}`;
}

/** The rule the add form describes; empty fields are left out (the API's defaults). */
export function ruleOf(data: Record<string, string>): RuleBody {
  const rule: RuleBody = { direction: data.direction === "egress" ? "egress" : "ingress" };
  if (data.ethertype) rule.ethertype = data.ethertype as RuleBody["ethertype"];
  if (data.protocol) rule.protocol = data.protocol as RuleBody["protocol"];
  if (data.port_min) rule.port_min = Number(data.port_min);
  if (data.port_max) rule.port_max = Number(data.port_max);
  if (data.remote_cidr) rule.remote_cidr = data.remote_cidr;
  if (data.remote_group) rule.remote_group = data.remote_group;
  return rule;
}

const select = (name: string, options: [string, string][]): HTMLElement =>
  h("select", { name, id: `rule-${name.replace("_", "-")}` }, ...options.map(([value, text]) => h("option", { value }, text)));

export async function securityGroupPage(ctx: Context, id: string): Promise<void> {
  const title = h("h1");
  const actions = h("div", { class: "actions" });
  const details = h("dl", { class: "details" });
  const rules = h("tbody");
  const said = message();
  const remoteGroup = h("select", { name: "remote_group", id: "rule-remote-group" });
  const form = h("form", { class: "form inline", id: "add-rule" },
    field("Direction", select("direction", [["ingress", "ingress"], ["egress", "egress"]])),
    field("Ethertype", select("ethertype", [["IPv4", "IPv4"], ["IPv6", "IPv6"]])),
    field("Protocol", select("protocol", [["tcp", "tcp"], ["udp", "udp"], ["icmp", "icmp"], ["icmpv6", "icmpv6"], ["any", "any"]])),
    field("Port from", h("input", { name: "port_min", id: "rule-port-min", type: "number", min: "1", max: "65535" })),
    field("Port to", h("input", { name: "port_max", id: "rule-port-max", type: "number", min: "1", max: "65535" })),
    field("Remote CIDR", h("input", { name: "remote_cidr", id: "rule-remote-cidr", placeholder: "0.0.0.0/0" })),
    field("or remote group", remoteGroup),
    h("button", { type: "submit" }, "Add rule")) as HTMLFormElement;
  let group: SecurityGroup | null = null;
  const draw = (groups: SecurityGroup[]): void => {
    group = groups.find((g) => g.id === id) ?? null;
    if (!group) {
      mount(details, ...row("Status", "deleted"));
      mount(actions);
      return;
    }
    const fixed = group.default;
    mount(title, group.name);
    mount(details, ...row("Id", group.id), ...row("Default group", fixed ? "yes: its rules are fixed" : "no"));
    mount(actions, fixed ? null : confirmed("Delete group", `Delete security group ${group.name}?`, said,
      () => securityGroups.remove(ctx.client, id), () => void load()));
    const chosen = (remoteGroup as HTMLSelectElement).value;
    mount(remoteGroup, h("option", { value: "" }, "(none)"),
      ...groups.map((g) => h("option", { value: g.id, selected: g.id === chosen }, g.name)));
    form.hidden = fixed;
    const name = group.name;
    fill(rules, group.rules.map((r) => h("tr", { "data-id": r.id },
      h("td", {}, r.direction), h("td", {}, r.ethertype), h("td", {}, r.protocol), h("td", {}, portRange(r)),
      h("td", {}, r.remote_cidr ?? (r.remote_group ? `group ${groups.find((g) => g.id === r.remote_group)?.name ?? r.remote_group}` : "any")),
      h("td", {}, fixed ? "" : confirmed("Delete rule", `Delete this ${r.direction} ${r.protocol} rule of ${name}?`,
        said, () => securityGroups.removeRule(ctx.client, id, r.id), () => void load())))),
    "No rules: nothing is allowed.", 6);
  };
  const load = async (): Promise<void> => {
    const [one, groups] = await Promise.all([
      securityGroups.get(ctx.client, id).catch((error: unknown) => {
        if (!title.textContent) throw error; // a first 404: shown as such
        return null;
      }),
      all((cursor) => securityGroups.list(ctx.client, cursor)),
    ]);
    const others = groups.filter((g) => g.id !== id);
    draw(one ? [one, ...others] : others);
  };
  onSubmit(form, said, (data) => securityGroups.addRule(ctx.client, id, ruleOf(data)), () => void load());
  await follow(ctx, ofKind("security_group"), load);
  mount(ctx.root, h("p", {}, h("a", { href: href({ page: "security-groups" }) }, "← Security groups")),
    title, actions, said, h("section", {}, h("h2", {}, "Details"), details),
    h("section", {}, h("h2", {}, "Rules"), table(["Direction", "Ethertype", "Protocol", "Ports", "Remote", ""], rules)),
    h("section", {}, h("h2", {}, "Add a rule"), form));
}
