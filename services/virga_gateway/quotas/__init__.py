"""Per-tenant quotas: limits (defaults and overrides), usage counted from the projection, and
their enforcement inside the write that would exceed them."""
