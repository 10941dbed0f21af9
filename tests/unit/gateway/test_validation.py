"""Request bodies: every refusal names the field the client has to fix."""

from __future__ import annotations

from typing import Any

import pytest

from virga_gateway import validation as v
from virga_gateway.flavors.bodies import CreateFlavor
from virga_gateway.hosts.bodies import HostAction, SetAllocationRatios
from virga_gateway.instances.bodies import CreateInstance, InstanceAction
from virga_gateway.networks.bodies import CreateNetwork
from virga_gateway.problems import Problem
from virga_gateway.server_groups.bodies import CreateServerGroup
from virga_gateway.tenants.bodies import IssueToken

OK = {"name": "ok", "flavor": "m1.small"}


def refusal(body: Any, body_type: type[Any] = CreateInstance) -> tuple[int, list[str], str]:
    with pytest.raises(Problem) as caught:
        v.validate(body, body_type)
    problem = caught.value
    return problem.status, [e.field for e in problem.errors], problem.detail


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"flavor": "m1.small"}, "name"),
        ({"name": "", "flavor": "m1.small"}, "name"),
        ({"name": "a" * 64, "flavor": "m1.small"}, "name"),
        ({"name": "white space", "flavor": "m1.small"}, "name"),
        ({"name": "ok"}, "flavor"),
        ({"name": "ok", "flavor": 3}, "flavor"),
        ({**OK, "delete_on_termination": "yes"}, "delete_on_termination"),
        ({**OK, "required_traits": ["GOOD", "bad"]}, "required_traits[1]"),
        ({**OK, "flavour": "typo"}, "flavour"),
        ([1, 2], "body"),
    ],
)  # fmt: skip
def test_instance_requests_name_the_bad_field(body: Any, field: str) -> None:
    status, fields, detail = refusal(body)
    assert status == 422
    assert fields == [field]
    assert detail.startswith(f"{field}: ")


def test_a_missing_field_says_it_is_required() -> None:
    _, _, detail = refusal({"name": "ok"})
    assert detail == "flavor: is required"


def test_valid_bodies_get_their_defaults() -> None:
    body = v.validate({"name": "web-1.a_b", "flavor": "m1.small"}, CreateInstance)
    assert body.required_traits == []
    assert body.delete_on_termination is True
    group = v.validate({"name": "g", "policy": "affinity"}, CreateServerGroup)
    assert group.scope == "host"
    assert v.validate({"name": "n", "cidr": "10.0.0.0/24"}, CreateNetwork).dhcp is True
    network = v.validate({"name": "n", "cidr": "10.0.0.0/24", "dhcp": False}, CreateNetwork)
    assert network.dhcp is False


@pytest.mark.parametrize(
    ("body_type", "body", "field"),
    [
        (CreateFlavor, {"name": "f", "vcpus": 0, "ram_mb": 512, "disk_gb": 1}, "vcpus"),
        (InstanceAction, {"action": "hibernate"}, "action"),
        (CreateServerGroup, {"name": "g", "policy": "spread"}, "policy"),
        (SetAllocationRatios, {"cpu": 0, "ram": 1, "disk": 1}, "cpu"),
        (IssueToken, {"expires_in_seconds": 0}, "expires_in_seconds"),
        (HostAction, {"action": "disable", "reason": "x" * 256}, "reason"),
        (CreateNetwork, {"name": "n", "cidr": "10.0.0.0/24", "dhcp": "false"}, "dhcp"),
        (CreateNetwork, {"name": "n", "cidr": "10.0.0.0/24", "dhcp": 0}, "dhcp"),
        (CreateNetwork, {"name": "n", "cidr": "10.0.0.0/24", "dhcp": None}, "dhcp"),
    ],
)
def test_other_bodies_name_the_bad_field(body_type: type[Any], body: Any, field: str) -> None:
    assert refusal(body, body_type)[:2] == (422, [field])


def test_malformed_json_is_a_400_naming_the_body() -> None:
    with pytest.raises(Problem) as caught:
        v.parse_json(b'{"name": ')
    assert caught.value.status == 400
    assert [e.field for e in caught.value.errors] == ["body"]


def test_problem_details_never_show_a_servers_file_paths() -> None:
    from virga_gateway.problems import without_paths

    reason = "qemu-img info: Could not open '/srv/virga/stack/spool/3b7e.qcow2': Invalid"
    assert without_paths(reason) == "qemu-img info: Could not open '3b7e.qcow2': Invalid"
    assert without_paths("a /tmp/x/spool/ dir") == "a spool dir"
    for kept in ("see https://virga.dev/problems/x", "10.0.0.0/24", "1/2 done"):
        assert without_paths(kept) == kept
