"""Response bodies of server groups."""

from __future__ import annotations

from typing import Literal

import msgspec

from virga_gateway.server_groups.model import ServerGroup
from virga_gateway.state import GatewayState


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class ServerGroupView(_View):
    id: str
    name: str
    policy: Literal["affinity", "anti-affinity"]
    scope: Literal["host", "rack"]
    tenant_id: str
    members: list[str]
    """Ids of the instances requested into the group and not deleted."""


class ServerGroupList(_View):
    items: list[ServerGroupView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


def server_group_view(state: GatewayState, group: ServerGroup) -> ServerGroupView:
    return ServerGroupView(
        id=group.id,
        name=group.name,
        policy=group.policy,
        scope=group.scope,
        tenant_id=group.tenant_id,
        members=list(state.group_members.get(group.id, [])),
    )
