"""Reads of volumes as a principal may see them: a foreign volume does not exist (404)."""

from __future__ import annotations

import bisect
from collections.abc import Callable

from virga_gateway.auth import Principal
from virga_gateway.cursor import OrderKey, encode_cursor
from virga_gateway.problems import not_found
from virga_gateway.state import GatewayState
from virga_gateway.volumes.model import Volume, volume_status
from virga_gateway.volumes.views import VolumeList, volume_view


def find_volume(state: GatewayState, principal: Principal, volume_id: str) -> Volume:
    volume = state.volumes.get(volume_id)
    if volume is None or not volume.listed or volume.deleted:
        raise not_found("volume", volume_id)
    if not principal.sees(volume.tenant_id):
        raise not_found("volume", volume_id)
    return volume


def list_volumes(
    state: GatewayState,
    principal: Principal,
    *,
    limit: int,
    after: OrderKey | None = None,
    tenant_id: str | None = None,
) -> VolumeList:
    """One page in (created_at, id) order after the cursor's key; deleted volumes are left out."""
    if not principal.is_admin:
        tenant_id = principal.tenant_id
    order = (
        state.volume_order if tenant_id is None else state.tenant_volume_order.get(tenant_id, [])
    )
    start = bisect.bisect_right(order, after) if after is not None else 0
    page: list[Volume] = []
    for key in order[start:]:
        volume = state.volumes[key[1]]
        if volume.deleted:
            continue
        if len(page) == limit:
            last = page[-1]
            assert last.created_at is not None
            return VolumeList(
                items=[volume_view(x, state.instances) for x in page],
                next=encode_cursor((last.created_at, last.id)),
            )
        page.append(volume)
    return VolumeList(items=[volume_view(x, state.instances) for x in page], next=None)


def live_clones(
    state: GatewayState, parent: str, cloned_from: Callable[[Volume], bool]
) -> set[str]:
    """Volumes asked as clones of a source, or made from `parent` (``image:<id>`` or
    ``snapshot:<id>``), that still read from it: not flattened, deleted or failed."""
    return {
        volume.id
        for volume in state.volumes.values()
        if (cloned_from(volume) or volume.parent == parent)
        and not volume.flattened
        and volume_status(volume, state.instances) not in ("deleted", "error")
    }


def snapshot_dependents(state: GatewayState, snapshot_id: str) -> list[str]:
    """Volumes that are (or are about to be) copy-on-write clones of the snapshot, sorted."""
    parent = f"snapshot:{snapshot_id}"
    return sorted(live_clones(state, parent, lambda volume: volume.snapshot == snapshot_id))
