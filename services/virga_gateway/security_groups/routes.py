"""Security groups: allow rules on the traffic of the ports that carry them."""

from __future__ import annotations

import uuid

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.routing import Route, json_response, page_params, page_query
from virga_gateway.security_groups import commands
from virga_gateway.security_groups.bodies import CreateSecurityGroup, RuleBody
from virga_gateway.security_groups.queries import find_security_group, list_security_groups
from virga_gateway.security_groups.views import RuleView, SecurityGroupList, SecurityGroupView
from virga_gateway.writes import commit, read_body


async def create_security_group(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, CreateSecurityGroup)
    group_id = str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.create_security_group(state, call.caller, body, group_id),
        body=raw,
    )


async def get_security_groups(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    page = list_security_groups(call.gateway.state, call.caller, limit=limit, after=after)
    return json_response(page)


async def get_security_group(request: web.Request, call: Call) -> web.Response:
    state = call.gateway.state
    return json_response(find_security_group(state, call.caller, request.match_info["id"]))


async def add_rule(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, RuleBody)
    group_id, rule_id = request.match_info["id"], str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.add_rule(state, call.caller, group_id, body, rule_id),
        body=raw,
        guard=f"security-group:{group_id}",
    )


async def delete_rule(request: web.Request, call: Call) -> web.Response:
    group_id, rule_id = request.match_info["id"], request.match_info["rule_id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.delete_rule(state, call.caller, group_id, rule_id),
        guard=f"security-group:{group_id}",
    )


async def delete_security_group(request: web.Request, call: Call) -> web.Response:
    group_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.delete_security_group(state, call.caller, group_id),
        guard=f"security-group:{group_id}",
    )


ROUTES = [
    Route(
        "POST", "/v1/security-groups", create_security_group,
        operation_id="createSecurityGroup", summary="Create a security group with its rules",
        errors=(403,),  # over quota
        tag="security-groups", access="tenant", status=201, response=SecurityGroupView,
        request=CreateSecurityGroup,
    ),
    Route(
        "GET", "/v1/security-groups", get_security_groups,
        operation_id="listSecurityGroups",
        summary="List security groups, the tenant's default group first",
        tag="security-groups", access="tenant", status=200, response=SecurityGroupList,
        query=page_params("Security groups"), errors=(400,),
    ),
    Route(
        "GET", "/v1/security-groups/{id}", get_security_group,
        operation_id="getSecurityGroup", summary="Show a security group and its rules",
        tag="security-groups", access="tenant", status=200, response=SecurityGroupView,
    ),
    Route(
        "DELETE", "/v1/security-groups/{id}", delete_security_group,
        operation_id="deleteSecurityGroup",
        summary="Delete a security group no port uses (the default group stays: 409)",
        tag="security-groups", access="tenant", status=204, errors=(409,),
    ),
    Route(
        "POST", "/v1/security-groups/{id}/rules", add_rule,
        operation_id="addSecurityGroupRule",
        summary="Add a rule to a security group; the ports carrying it apply it within seconds"
        " (a repeated rule, more than 100 rules or the default group: 409)",
        tag="security-groups", access="tenant", status=201, response=RuleView,
        request=RuleBody, errors=(409,),
    ),
    Route(
        "DELETE", "/v1/security-groups/{id}/rules/{rule_id}", delete_rule,
        operation_id="deleteSecurityGroupRule",
        summary="Delete a rule of a security group; the ports carrying it stop applying it"
        " (the default group's rules stay: 409)",
        tag="security-groups", access="tenant", status=204, errors=(409,),
    ),
]  # fmt: skip
