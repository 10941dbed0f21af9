"""Write decisions: which requests are accepted, what they append, and who may make them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.unit.gateway.events import at, envelope, fold, requested, scheduled

from virga_events.catalog import api, compute
from virga_gateway.auth import Principal
from virga_gateway.flavors.bodies import CreateFlavor
from virga_gateway.flavors.commands import create_flavor
from virga_gateway.hosts.bodies import SetAllocationRatios
from virga_gateway.hosts.commands import set_allocation_ratios
from virga_gateway.instances.bodies import CreateInstance, InstanceAction
from virga_gateway.instances.commands import create_instance, delete_instance, instance_action
from virga_gateway.problems import Problem
from virga_gateway.state import GatewayState
from virga_gateway.tenants.bodies import CreateTenant, IssueToken
from virga_gateway.tenants.commands import create_tenant, issue_token
from virga_gateway.tokens import derive_token, token_sha256

ALICE = Principal("tok-a", "tenant", "t1")
BOB = Principal("tok-b", "tenant", "t2")
ADMIN = Principal("tok-admin", "admin", None)


def problem_of(thunk: Callable[[], object]) -> Problem:
    with pytest.raises(Problem) as caught:
        thunk()
    return caught.value


def running() -> GatewayState:
    return fold(
        envelope(api.TenantCreated(name="alice"), "t1", tenant="t1"),
        requested("i1", tenant="t1"),
        scheduled("i1"),
        envelope(compute.InstanceStarted(host="h1"), "i1", producer="compute@h1", seconds=2),
    )


def test_an_instance_request_resolves_the_flavor_and_belongs_to_the_caller() -> None:
    body = CreateInstance(name="web", flavor="m1.medium", required_traits=["SSD"])
    outcome = create_instance(running(), ALICE, body, "i9")
    (emit,) = outcome.emits
    assert (outcome.status, emit.aggregate_id, emit.tenant_id) == (202, "i9", "t1")
    assert isinstance(emit.payload, api.InstanceRequested)
    assert (emit.payload.flavor.vcpus, emit.payload.flavor.ram_mb) == (2, 4096)
    assert emit.payload.required_traits == ("SSD",)


def test_unknown_flavor_and_foreign_server_group_are_named_together() -> None:
    state = fold(
        envelope(
            api.ServerGroupCreated(name="g", policy="affinity", scope="host"), "g1", tenant="t2"
        )
    )
    body = CreateInstance(name="web", flavor="m9.huge", server_group="g1")
    problem = problem_of(lambda: create_instance(state, ALICE, body, "i9"))
    assert problem.status == 422
    assert [e.field for e in problem.errors] == ["flavor", "server_group"]


def test_admins_name_an_existing_tenant_and_tenants_only_themselves() -> None:
    state = running()
    body = CreateInstance(name="web", flavor="m1.tiny")
    assert [
        e.field for e in problem_of(lambda: create_instance(state, ADMIN, body, "x")).errors
    ] == ["tenant_id"]
    ghost = CreateInstance(name="web", flavor="m1.tiny", tenant_id="t404")
    assert problem_of(lambda: create_instance(state, ADMIN, ghost, "x")).status == 422
    hijack = CreateInstance(name="web", flavor="m1.tiny", tenant_id="t2")
    assert problem_of(lambda: create_instance(state, ALICE, hijack, "x")).status == 422
    mine = CreateInstance(name="web", flavor="m1.tiny", tenant_id="t1")
    assert create_instance(state, ADMIN, mine, "x").emits[0].tenant_id == "t1"
    assert create_instance(state, ALICE, mine, "y").emits[0].tenant_id == "t1"


@pytest.mark.parametrize(
    ("action", "accepted"), [("stop", True), ("reboot", True), ("start", False)]
)
def test_actions_need_the_right_status(action: str, accepted: bool) -> None:
    body = InstanceAction(action=action)  # type: ignore[arg-type]
    if accepted:
        outcome = instance_action(running(), ALICE, "i1", body)
        assert outcome.emits[0].payload == api.InstanceActionRequested(action=action)  # type: ignore[arg-type]
    else:
        problem = problem_of(lambda: instance_action(running(), ALICE, "i1", body))
        assert problem.status == 409
        assert "RUNNING" in problem.detail


def test_another_tenants_instance_does_not_exist() -> None:
    for thunk in [
        lambda: instance_action(running(), BOB, "i1", InstanceAction(action="stop")),
        lambda: delete_instance(running(), BOB, "i1"),
    ]:
        assert problem_of(thunk).status == 404
    assert delete_instance(running(), ADMIN, "i1").emits


def test_deleting_twice_appends_once_and_a_deleted_instance_is_gone() -> None:
    state = running()
    first = delete_instance(state, ALICE, "i1")
    state = fold(envelope(first.emits[0].payload, "i1", tenant="t1", seconds=3), state=state)
    again = delete_instance(state, ALICE, "i1")
    assert (again.status, again.emits) == (202, ())
    state = fold(envelope(compute.InstanceDeleted(host="h1"), "i1", seconds=4), state=state)
    assert problem_of(lambda: delete_instance(state, ALICE, "i1")).status == 404


def test_a_token_is_derived_from_its_id_and_only_its_hash_is_appended() -> None:
    secret = b"s" * 32
    outcome = issue_token(
        running(),
        "t1",
        IssueToken(expires_in_seconds=60),
        token_id="tok9",
        now=at(0),
        secret=secret,
    )
    (emit,) = outcome.emits
    token = derive_token(secret, "tok9")
    assert emit.payload == api.TokenIssued(
        token_sha256=token_sha256(token), role="tenant", expires_at=at(60)
    )
    assert outcome.secret_fields == {"token"}
    assert outcome.view is not None
    assert outcome.view(running()).token == token  # type: ignore[attr-defined]
    assert derive_token(b"t" * 32, "tok9") != token
    assert (
        problem_of(
            lambda: issue_token(
                running(), "t404", IssueToken(), token_id="x", now=at(0), secret=secret
            )
        ).status
        == 404
    )


def test_duplicate_names_conflict() -> None:
    state = running()
    tenant = problem_of(lambda: create_tenant(state, CreateTenant(name="alice"), "t9"))
    flavor = problem_of(
        lambda: create_flavor(state, CreateFlavor(name="m1.small", vcpus=1, ram_mb=64, disk_gb=1))
    )
    assert (tenant.status, flavor.status) == (409, 409)
    assert [e.field for e in tenant.errors] == ["name"]


def test_ratios_for_an_unknown_host_are_refused() -> None:
    body = SetAllocationRatios(cpu=2, ram=1, disk=1, host="h404")
    problem = problem_of(lambda: set_allocation_ratios(running(), body))
    assert [e.field for e in problem.errors] == ["host"]
    default = set_allocation_ratios(running(), SetAllocationRatios(cpu=2, ram=1, disk=1))
    assert default.emits[0].aggregate_id == "*"
