// The typed client of the admin routes: tenants, their tokens and quotas, the price catalogue
// (tests/unit/gateway/test_web.py checks every path and field here against /v1/openapi.json).
// Only the admin pages' chunk imports it.
import type { Client, Page } from "./api";
import { all } from "./netapi";

export interface Tenant {
  id: string;
  name: string;
  enabled?: boolean;
}

export interface IssuedToken {
  id: string;
  token: string;
  expires_at: string | null;
}

/** Quota amounts by resource (`instances`, `vcpus`, ...); -1 is unlimited. */
export type Amounts = Record<string, number>;

export interface QuotaView {
  tenant_id: string;
  limits: Amounts;
  usage: Amounts;
  overridden: string[];
}

export interface PricesView {
  currency: string;
  effective_from: string;
  flavor_hour: Record<string, string>;
  volume_gb_month: string;
  egress_gb: string;
  public_ip_hour: string;
}

export interface PriceCatalogue {
  in_effect: PricesView | null;
  pending: PricesView[];
  history: PricesView[];
}

const id = (value: string): string => encodeURIComponent(value);
const more = (cursor?: string): string => (cursor ? `&cursor=${id(cursor)}` : "");

export const admin = {
  tenants: (c: Client): Promise<Tenant[]> =>
    all((cursor) => c.request<Page<Tenant>>("GET", `/v1/tenants?limit=200${more(cursor)}`)),
  createTenant: (c: Client, name: string): Promise<Tenant> => c.request("POST", "/v1/tenants", { name }),
  issueToken: (c: Client, tenantId: string): Promise<IssuedToken> =>
    c.request("POST", `/v1/tenants/${id(tenantId)}/tokens`, {}),
  quotas: (c: Client, tenantId: string): Promise<QuotaView> => c.request("GET", `/v1/tenants/${id(tenantId)}/quotas`),
  setQuotas: (c: Client, tenantId: string, limits: Record<string, number | null>): Promise<QuotaView> =>
    c.request("PUT", `/v1/tenants/${id(tenantId)}/quotas`, limits),
  prices: (c: Client): Promise<PriceCatalogue> => c.request("GET", "/v1/prices"),
  setPrices: (c: Client, prices: PricesView): Promise<PricesView> => c.request("PUT", "/v1/prices", prices),
};

/** The quota form's changes: a number where it differs from the shown limit, null (the
 * default again) where an own limit's field was emptied; other resources are left out. */
export function quotaChanges(view: QuotaView, entered: Record<string, string>): Record<string, number | null> {
  const changes: Record<string, number | null> = {};
  for (const [resource, limit] of Object.entries(view.limits)) {
    const text = (entered[resource] ?? "").trim();
    if (text === "") {
      if (view.overridden.includes(resource)) changes[resource] = null;
    } else if (Number(text) !== limit) {
      changes[resource] = Number(text);
    }
  }
  return changes;
}

/** `m1.small=0.10` lines as the catalogue's flavor_hour (blank lines skipped). */
export function flavorPrices(text: string): Record<string, string> {
  const prices: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const [flavor, price] = line.split("=").map((part) => part.trim());
    if (flavor) prices[flavor] = price ?? "";
  }
  return prices;
}

export function flavorLines(prices: Record<string, string>): string {
  return Object.entries(prices).map(([flavor, price]) => `${flavor}=${price}`).join("\n");
}
