// The admin's pages (a lazy chunk, admins only, like the hosts page): tenants (list, create),
// a tenant's page (issue a token, shown once; view and set its quotas), and the price
// catalogue (view, set a new one). The tenants list and a tenant's page follow the live
// stream as the hosts page does: a tenant made elsewhere appears, and a tenant's usage and
// quotas change in place (a limit being edited is left as typed).
import { admin, flavorLines, flavorPrices, quotaChanges, type PricesView, type QuotaView } from "./adminapi";
import { h, mount } from "./dom";
import { errorBox } from "./errors";
import { fill, follow, message, ofKind, onSubmit, table } from "./forms";
import type { Context } from "./pages";
import { href } from "./route";
import { button, field } from "./widgets";

async function adminsOnly(ctx: Context, title: string): Promise<boolean> {
  if (await ctx.admin) return true;
  mount(ctx.root, h("h1", {}, title),
    h("p", { class: "error", role: "alert" }, `Admins only: log in with an admin token to see ${title.toLowerCase()}.`));
  return false;
}

export async function tenantsPage(ctx: Context): Promise<void> {
  if (!(await adminsOnly(ctx, "Tenants"))) return;
  const body = h("tbody");
  const said = message();
  const load = async (): Promise<void> => {
    const tenants = await admin.tenants(ctx.client);
    fill(body, tenants.map((t) => h("tr", { "data-id": t.id },
      h("td", {}, h("a", { href: href({ page: "tenant", id: t.id }) }, t.name)),
      h("td", {}, h("code", {}, t.id)),
      h("td", {}, t.enabled === false ? "disabled" : "enabled"))), "No tenants yet.", 3);
  };
  const form = h("form", { class: "form", id: "create-tenant" },
    field("Name", h("input", { name: "name", id: "tenant-name", required: true, autocomplete: "off" })),
    h("button", { type: "submit" }, "Create tenant")) as HTMLFormElement;
  onSubmit(form, said, (data) => admin.createTenant(ctx.client, data.name ?? ""), () => void load());
  await follow(ctx, ofKind("tenant"), load);
  mount(ctx.root, h("h1", {}, "Tenants"), said, table(["Name", "Id", "State"], body),
    h("section", {}, h("h2", {}, "Create a tenant"), form));
}

interface QuotaForm {
  form: HTMLFormElement;
  /** Shows a newer view: usage and own/default in place, limits where the field is untouched. */
  update: (view: QuotaView) => void;
}

function quotaForm(ctx: Context, tenantId: string, first: QuotaView, said: HTMLElement,
  redraw: (view: QuotaView) => void): QuotaForm {
  let view = first;
  const rows = Object.entries(view.limits).map(([resource, limit]) => h("tr", { "data-resource": resource },
    h("th", {}, resource),
    h("td", { class: "usage" }, String(view.usage[resource] ?? 0)),
    h("td", {}, h("input", { name: resource, id: `quota-${resource}`, inputmode: "numeric", value: String(limit),
      "aria-label": `${resource} limit (-1: unlimited; empty: the default)` })),
    h("td", { class: "muted origin" }, view.overridden.includes(resource) ? "own" : "default")));
  const form = h("form", { class: "form", id: "quotas" },
    table(["Resource", "In use", "Limit", ""], h("tbody", {}, ...rows)),
    h("button", { type: "submit" }, "Save quotas")) as HTMLFormElement;
  const input = (resource: string): HTMLInputElement | null =>
    form.elements.namedItem(resource) as HTMLInputElement | null;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const entered: Record<string, string> = {};
    for (const resource of Object.keys(view.limits)) entered[resource] = input(resource)?.value ?? "";
    admin.setQuotas(ctx.client, tenantId, quotaChanges(view, entered))
      .then((next) => { mount(said); redraw(next); })
      .catch((error: unknown) => mount(said, errorBox(error, form)));
  });
  const update = (next: QuotaView): void => {
    for (const row of form.querySelectorAll<HTMLElement>("tr[data-resource]")) {
      const resource = row.dataset.resource ?? "";
      const limit = next.limits[resource];
      const field = input(resource);
      if (limit === undefined || field === null) continue;
      mount(row.querySelector(".usage") as HTMLElement, String(next.usage[resource] ?? 0));
      mount(row.querySelector(".origin") as HTMLElement, next.overridden.includes(resource) ? "own" : "default");
      const untouched = field.value === field.defaultValue && document.activeElement !== field;
      if (untouched) field.defaultValue = field.value = String(limit);
    }
    view = next;
  };
  return { form, update };
}

/** Whether a change is about the tenant, or one of its resources (its usage). */
export function tenantChanged(tenantId: string) {
  return (change: { id: string; tenant_id: string | null }): boolean =>
    change.id === tenantId || change.tenant_id === tenantId;
}

export async function tenantPage(ctx: Context, tenantId: string): Promise<void> {
  if (!(await adminsOnly(ctx, "Tenants"))) return;
  const said = message();
  const issued = h("div", { class: "issued", "aria-live": "polite" });
  const quotaBox = h("div");
  const title = h("h1");
  let shown: QuotaForm | null = null;
  const drawQuotas = (view: QuotaView): void => {
    shown = quotaForm(ctx, tenantId, view, said, drawQuotas);
    mount(quotaBox, shown.form);
  };
  const load = async (): Promise<void> => {
    const [tenants, quotas] = await Promise.all([admin.tenants(ctx.client), admin.quotas(ctx.client, tenantId)]);
    const tenant = tenants.find((t) => t.id === tenantId);
    mount(title, tenant?.name ?? tenantId, tenant?.enabled === false ? " (disabled)" : "");
    if (shown === null) drawQuotas(quotas);
    else shown.update(quotas);
  };
  await follow(ctx, tenantChanged(tenantId), load);
  const issue = button("Issue a token", false, () => {
    admin.issueToken(ctx.client, tenantId).then((token) => mount(issued,
      h("p", {}, "The new token, shown this once (the gateway keeps only its hash):"),
      h("code", { class: "token" }, token.token)))
      .catch((error: unknown) => mount(said, errorBox(error)));
  });
  mount(ctx.root, h("p", {}, h("a", { href: href({ page: "tenants" }) }, "← Tenants")),
    title, said,
    h("section", {}, h("h2", {}, "Tokens"), issue, issued),
    h("section", {}, h("h2", {}, "Quotas"), quotaBox));
}

function catalogue(prices: PricesView): HTMLElement {
  return h("dl", { class: "details prices" },
    h("dt", {}, "From"), h("dd", {}, prices.effective_from),
    h("dt", {}, "Currency"), h("dd", {}, prices.currency),
    ...Object.entries(prices.flavor_hour).flatMap(([flavor, price]) =>
      [h("dt", {}, `${flavor} / hour`), h("dd", {}, price)]),
    h("dt", {}, "Volume GB-month"), h("dd", {}, prices.volume_gb_month),
    h("dt", {}, "Egress GB"), h("dd", {}, prices.egress_gb),
    h("dt", {}, "Public IP / hour"), h("dd", {}, prices.public_ip_hour));
}

/** The next whole UTC hour, as the catalogue's effective_from wants it. */
export function nextHour(now: Date): string {
  const next = new Date(now.getTime());
  next.setUTCMinutes(0, 0, 0);
  next.setUTCHours(next.getUTCHours() + 1);
  return next.toISOString().replace(".000Z", "Z");
}

export async function pricesPage(ctx: Context): Promise<void> {
  if (!(await adminsOnly(ctx, "Prices"))) return;
  const shown = h("div");
  const said = message();
  const load = async (): Promise<PricesView | null> => {
    const found = await admin.prices(ctx.client);
    mount(shown, h("h2", {}, "In effect"),
      found.in_effect ? catalogue(found.in_effect) : h("p", {}, "No prices yet: nothing is charged."),
      ...(found.pending.length ? [h("h2", {}, "Pending"), ...found.pending.map(catalogue)] : []));
    return found.pending.at(-1) ?? found.in_effect;
  };
  const last = await load();
  const input = (name: string, value: string, label: string): HTMLElement =>
    field(label, h("input", { name, id: `price-${name}`, value, required: true, autocomplete: "off" }));
  const form = h("form", { class: "form", id: "set-prices" },
    input("currency", last?.currency ?? "EUR", "Currency"),
    input("effective_from", nextHour(new Date()), "From (RFC 3339, a whole UTC hour)"),
    field("Per flavor and hour (flavor=price, one a line)", h("textarea", { name: "flavor_hour",
      id: "price-flavor_hour", rows: "4", spellcheck: "false" }, flavorLines(last?.flavor_hour ?? {}))),
    input("volume_gb_month", last?.volume_gb_month ?? "0", "Volume, per GB-month"),
    input("egress_gb", last?.egress_gb ?? "0", "Egress, per GB"),
    input("public_ip_hour", last?.public_ip_hour ?? "0", "Public IP, per hour"),
    h("button", { type: "submit" }, "Set prices")) as HTMLFormElement;
  onSubmit(form, said, (data) => admin.setPrices(ctx.client, {
    currency: data.currency ?? "", effective_from: data.effective_from ?? "",
    flavor_hour: flavorPrices(data.flavor_hour ?? ""), volume_gb_month: data.volume_gb_month ?? "",
    egress_gb: data.egress_gb ?? "", public_ip_hour: data.public_ip_hour ?? "",
  }), () => void load());
  mount(ctx.root, h("h1", {}, "Prices"), said, shown,
    h("section", {}, h("h2", {}, "Set a new catalogue (replaces the whole one from its hour on)"), form));
}
