"""Rebalancing (admin only)."""

from __future__ import annotations

import uuid

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.rebalance import commands
from virga_gateway.rebalance.fold import latest
from virga_gateway.rebalance.plan import current_plan
from virga_gateway.rebalance.views import RebalanceView, RunView, rebalance_view
from virga_gateway.routing import Route, json_response
from virga_gateway.writes import commit


async def get_rebalance(request: web.Request, call: Call) -> web.Response:
    state = call.gateway.state
    return json_response(rebalance_view(current_plan(state), latest(state)))


async def post_rebalance(request: web.Request, call: Call) -> web.Response:
    flow_id = str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.execute(state, flow_id),
        guard="rebalance",
    )


ROUTES = [
    Route(
        "GET", "/v1/rebalance", get_rebalance,
        operation_id="getRebalance",
        summary="Propose live migrations that lower the hosts' imbalance (the spread of their"
        " RAM and vCPU utilisation) without breaking a placement rule, and show the latest"
        " rebalance executed",
        tag="hosts", access="admin", status=200, response=RebalanceView,
    ),
    Route(
        "POST", "/v1/rebalance", post_rebalance,
        operation_id="executeRebalance",
        summary="Execute the current plan as live migrations, a bounded number at a time;"
        " moves the cluster no longer allows are skipped (while a rebalance runs, it is the"
        " answer)",
        tag="hosts", access="admin", status=202, response=RunView,
    ),
]  # fmt: skip
