"""What quota requests decide: the limits events to append, if anything changes."""

from __future__ import annotations

from virga_events.catalog.quotas import (
    DEFAULT_LIMITS,
    QUOTA_DEFAULTS_ID,
    QUOTA_RESOURCES,
    QuotaDefaultsSet,
    TenantQuotaSet,
)
from virga_gateway.outcome import Outcome
from virga_gateway.problems import not_found
from virga_gateway.quotas.bodies import SetQuotas
from virga_gateway.quotas.model import default_limits
from virga_gateway.quotas.views import defaults_view, quota_view
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit


def _named(body: SetQuotas, raw: object) -> tuple[dict[str, int], list[str]]:
    """(limits set, limits cleared with null): a resource absent from `raw` is neither."""
    present = raw if isinstance(raw, dict) else {}
    values = {name: getattr(body, name) for name in QUOTA_RESOURCES if name in present}
    set_ = {name: value for name, value in values.items() if value is not None}
    return set_, [name for name, value in values.items() if value is None]


def set_tenant_quotas(state: GatewayState, tenant_id: str, body: SetQuotas, raw: object) -> Outcome:
    if tenant_id not in state.tenants:
        raise not_found("tenant", tenant_id)
    set_, cleared = _named(body, raw)
    own = state.quota_overrides.get(tenant_id, {})
    set_ = {name: value for name, value in set_.items() if own.get(name) != value}
    cleared = [name for name in cleared if name in own]
    view = lambda s: quota_view(s, tenant_id)  # noqa: E731
    if not set_ and not cleared:
        return Outcome(200, (), view)
    event = TenantQuotaSet(limits=set_, cleared=tuple(cleared))
    return Outcome(200, (Emit(event, tenant_id, tenant_id),), view)


def set_default_quotas(state: GatewayState, body: SetQuotas, raw: object) -> Outcome:
    set_, cleared = _named(body, raw)
    wanted = {**set_, **{name: DEFAULT_LIMITS[name] for name in cleared}}
    current = default_limits(state)
    changed = {name: value for name, value in wanted.items() if current[name] != value}
    if not changed:
        return Outcome(200, (), defaults_view)
    emit = Emit(QuotaDefaultsSet(limits=changed), QUOTA_DEFAULTS_ID, None)
    return Outcome(200, (emit,), defaults_view)
