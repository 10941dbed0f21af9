"""How quota limits fold into the projection, and how usage follows every other fact.

Usage is kept per tenant as the sum of what each record counts (`model.contribution`), and a
record's share is recounted after every event about it: whatever order a rebuild folds an
aggregate's facts in, its share ends as the function of its final record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_events.catalog import quotas
from virga_gateway.quotas.model import TABLES, USAGE_OF, add, counted
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


@folds.on(quotas.QuotaDefaultsSet)
def _defaults_set(state: GatewayState, env: Envelope, event: quotas.QuotaDefaultsSet) -> None:
    known = {k: v for k, v in event.limits.items() if k in quotas.QUOTA_RESOURCES}
    state.quota_defaults = {**state.quota_defaults, **known}


@folds.on(quotas.TenantQuotaSet)
def _tenant_quota_set(state: GatewayState, env: Envelope, event: quotas.TenantQuotaSet) -> None:
    own = dict(state.quota_overrides.get(env.aggregate_id, {}))
    own.update((k, v) for k, v in event.limits.items() if k in quotas.QUOTA_RESOURCES)
    for name in event.cleared:
        own.pop(name, None)
    if own:
        state.quota_overrides[env.aggregate_id] = own
    else:
        state.quota_overrides.pop(env.aggregate_id, None)


def recount(state: GatewayState, key: str) -> None:
    """Bring the usage of the records named `key` (in any table) up to date."""
    # Once per event of a rebuild: the tables and their usage functions are looked up once.
    quota_counted = state.quota_counted
    for table, usage_of in _RECOUNTED:
        record = getattr(state, table).get(key)
        new = None if record is None else counted(record, usage_of)
        counted_key = f"{table}/{key}"
        old = quota_counted.get(counted_key)
        if old == new:
            continue
        if old is not None:
            _move(state, old.tenant_id, old.usage, -1)
            del quota_counted[counted_key]
        if new is not None:
            _move(state, new.tenant_id, new.usage, 1)
            quota_counted[counted_key] = new


_RECOUNTED = tuple((table, USAGE_OF[table]) for table in TABLES)
"""The quota tables in TABLES' order, each with its usage function."""


def recount_all(state: GatewayState) -> GatewayState:
    """Usage counted afresh from every record (after a restore)."""
    state.quota_counted, state.quota_usage = {}, {}
    for table in TABLES:
        for key in list(getattr(state, table)):
            recount(state, key)
    return state


def _move(state: GatewayState, tenant_id: str, usage: dict[str, int], sign: int) -> None:
    # Replaced, never mutated: a preview shares these dicts with the projection.
    total = dict(state.quota_usage.get(tenant_id, {}))
    add(total, usage, sign)
    if total:
        state.quota_usage[tenant_id] = total
    else:
        state.quota_usage.pop(tenant_id, None)
