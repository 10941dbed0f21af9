"""The projection's record of a server group (its members are kept by the instances' fold)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec


class ServerGroup(msgspec.Struct):
    id: str
    name: str
    policy: Literal["affinity", "anti-affinity"]
    scope: Literal["host", "rack"]
    tenant_id: str
    created_at: datetime
