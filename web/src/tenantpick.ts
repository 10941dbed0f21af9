// Creating on behalf of a tenant: an admin's token owns no resources, so the API asks an admin
// for `tenant_id` on every create of a tenant's resource (docs/api.md). The create forms get a
// "Tenant" select for an admin; a tenant's token never sees it (nor loads the tenants).
import { h } from "./dom";
import type { Context } from "./pages";
import { field } from "./widgets";

/** For an admin, a required `tenant_id` select of every tenant (by name); null for a tenant. */
export async function tenantField(ctx: Context, id: string): Promise<HTMLElement | null> {
  if (!(await ctx.admin)) return null;
  const { admin } = await import("./adminapi"); // the admin chunk, as the admin pages load it
  const tenants = (await admin.tenants(ctx.client))
    .filter((t) => t.enabled !== false)
    .sort((a, b) => a.name.localeCompare(b.name));
  return field("Tenant", h("select", { name: "tenant_id", id, required: true },
    h("option", { value: "" }, "(choose a tenant)"),
    ...tenants.map((t) => h("option", { value: t.id }, t.name))));
}

/** `body` with the form's `tenant_id`, when the form has one chosen. */
export function onBehalf<T extends object>(form: HTMLFormElement, body: T): T & { tenant_id?: string } {
  const chosen = new FormData(form).get("tenant_id");
  return typeof chosen === "string" && chosen !== "" ? { ...body, tenant_id: chosen } : body;
}
