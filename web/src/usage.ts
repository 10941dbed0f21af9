// The usage page: this month's charges so far by resource, as a bar chart (SVG drawn here:
// no chart library, no inline style) and as lines that link to the resource they charge;
// then the past invoices. It reads the usage again as instances and volumes change.
import type { ChargeLine, Invoice, Usage } from "./api";
import { h, mount } from "./dom";
import { reloadOn, VolumeSet } from "./live";
import type { Context } from "./pages";
import { href } from "./route";

const SVG = "http://www.w3.org/2000/svg";

export interface Bar {
  resource_id: string;
  kind: string;
  amount: number;
}

/** The chart's bars: the amount per resource and kind of charge, largest first. */
export function bars(lines: ChargeLine[]): Bar[] {
  const sums = new Map<string, Bar>();
  for (const line of lines) {
    const key = `${line.kind}:${line.resource_id}`;
    const bar = sums.get(key) ?? { resource_id: line.resource_id, kind: line.kind, amount: 0 };
    bar.amount += Number(line.amount);
    sums.set(key, bar);
  }
  return [...sums.values()].sort((a, b) => b.amount - a.amount || a.resource_id.localeCompare(b.resource_id));
}

/** Where a line's resource and its events are: an instance's page holds its timeline. An
 * adjustment (a re-rated charge of an issued invoice) links as the charge it adjusts. */
export function resourceHref(line: { kind: string; resource_id: string; charge?: string | null }): string | null {
  const kind = line.kind === "adjustment" ? line.charge ?? "" : line.kind;
  if (kind === "compute" || kind === "egress") return href({ page: "instance", id: line.resource_id });
  if (kind === "volume") return href({ page: "volume", id: line.resource_id });
  return null;
}

function svg(tag: string, attrs: Record<string, string>, text?: string): SVGElement {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

export function chart(items: Bar[], label: (bar: Bar) => string, currency: string): SVGElement {
  const rowHeight = 26;
  const max = Math.max(...items.map((b) => b.amount), 0);
  const root = svg("svg", { class: "chart", role: "img", viewBox: `0 0 600 ${rowHeight * items.length + 4}`,
    "aria-label": `Charges by resource, in ${currency}` });
  items.forEach((bar, i) => {
    const y = i * rowHeight + 2;
    const width = max > 0 ? Math.max((bar.amount / max) * 330, 1) : 1;
    root.append(svg("text", { x: "0", y: String(y + 17), class: "chart-label" }, label(bar).slice(0, 26)),
      svg("rect", { x: "200", y: String(y + 3), width: width.toFixed(1), height: "18", class: `bar bar-${bar.kind}` }),
      svg("text", { x: String(205 + width), y: String(y + 17), class: "chart-value" }, bar.amount.toFixed(2)));
  });
  return root;
}

/** A resource's name where the page knows it (instances live, volumes as loaded), else its id. */
type Names = (id: string) => string;

function linesTable(name: Names, lines: ChargeLine[]): HTMLElement {
  return h("table", { class: "list lines" },
    h("thead", {}, h("tr", {}, ...["Resource", "Charge", "Quantity"].map((c) => h("th", {}, c)),
      h("th", { class: "wide" }, "Unit price"), h("th", {}, "Amount"))),
    h("tbody", {}, ...lines.map((line) => {
      const link = resourceHref(line);
      return h("tr", { "data-kind": line.kind, "data-resource": line.resource_id },
        h("td", {}, link ? h("a", { href: link }, name(line.resource_id)) : name(line.resource_id)),
        h("td", {}, line.adjusts ? `${line.kind} (${line.charge ?? ""} of ${line.adjusts})` : line.kind),
        h("td", {}, `${line.quantity} ${line.unit}`),
        h("td", { class: "wide" }, line.unit_price),
        h("td", { class: "amount" }, line.amount));
    })));
}

function invoiceItem(name: Names, invoice: Invoice): HTMLElement {
  return h("details", { class: "invoice", "data-period": invoice.period },
    h("summary", {}, `${invoice.period}: ${invoice.total} ${invoice.currency} (${invoice.lines.length} lines)`),
    linesTable(name, invoice.lines));
}

export async function usagePage(ctx: Context): Promise<void> {
  const current = h("section", { class: "usage" });
  const past = h("section", {});
  const volumes = new VolumeSet(ctx.client);
  const name: Names = (id) => ctx.store.instances.get(id)?.name ?? volumes.byId.get(id)?.name ?? id.slice(0, 8);
  const draw = (usage: Usage): void => {
    const currency = usage.currency ?? "";
    mount(current,
      h("h2", {}, "This month so far"),
      h("p", { class: "muted" }, `${new Date(usage.from).toLocaleString()} to ${new Date(usage.to).toLocaleString()}`),
      h("p", { class: "total" }, "Total: ", h("strong", {}, `${usage.total} ${currency}`)),
      usage.currency === null ? h("p", { class: "muted" }, "No prices are in effect yet: usage is counted and charges nothing.") : null,
      usage.lines.length ? chart(bars(usage.lines), (bar) => `${name(bar.resource_id)} ${bar.kind}`, currency)
        : h("p", {}, "No usage this month yet."),
      usage.lines.length ? linesTable(name, usage.lines) : null);
  };
  const [usage, invoices] = await Promise.all([ctx.client.getUsage(), ctx.client.listInvoices(),
    volumes.loadAll()]);
  draw(usage);
  mount(past, h("h2", {}, "Invoices"), ...(invoices.items.length
    ? [...invoices.items].reverse().map((i) => invoiceItem(name, i)) : [h("p", {}, "No invoice issued yet.")]));
  reloadOn(ctx, (change) => change === null || change.kind === "instance" || change.kind === "volume",
    async () => draw(await ctx.client.getUsage()));
  const refresh = h("button", { type: "button", onclick: () => void ctx.client.getUsage().then(draw) }, "Refresh");
  mount(ctx.root, h("div", { class: "bar" }, h("h1", {}, "Usage"), refresh), current, past);
}
