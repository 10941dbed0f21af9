"""Deleting a tenant: refused while it owns anything, then its tokens, listing and overrides go."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.unit.gateway.events import at, envelope, fold, requested

from virga_audit import quotas as audit
from virga_events.catalog import api, compute, network, quotas
from virga_gateway.auth import authenticate
from virga_gateway.problems import Problem
from virga_gateway.quotas.model import limits
from virga_gateway.state import GatewayState, restore, snapshot
from virga_gateway.tenants.bodies import CreateTenant, IssueToken
from virga_gateway.tenants.commands import create_tenant, delete_tenant, issue_token
from virga_gateway.tenants.queries import list_tenants
from virga_gateway.tokens import token_sha256

TOKEN = "secret-token-of-t1"


def tenant_with_a_token() -> GatewayState:
    return fold(
        envelope(api.TenantCreated(name="alice"), "t1", tenant="t1"),
        envelope(api.TenantCreated(name="bob"), "t2", tenant="t2", seconds=1),
        envelope(
            api.TokenIssued(token_sha256=token_sha256(TOKEN), role="tenant"), "tok1", tenant="t1"
        ),
        envelope(quotas.TenantQuotaSet(limits={"instances": 3}), "t1", tenant="t1"),
    )


def refusal(thunk: Callable[[], object]) -> Problem:
    with pytest.raises(Problem) as raised:
        thunk()
    return raised.value


def test_a_tenant_that_owns_resources_is_refused_with_the_counts_per_kind() -> None:
    state = fold(
        requested("i1"),
        requested("i2", seconds=1),
        envelope(
            api.ServerGroupCreated(name="g", policy="affinity", scope="host"), "g1", tenant="t1"
        ),
        requested("i3", tenant="t2"),
        state=tenant_with_a_token(),
    )
    problem = refusal(lambda: delete_tenant(state, "t1"))
    assert problem.status == 409
    assert {(e.field, e.message) for e in problem.errors} == {
        ("instances", "2 not deleted"),
        ("server_groups", "1 not deleted"),
    }
    assert "2 instances" in problem.detail
    assert "1 server group" in problem.detail  # as a person writes it, not "1 server_groups"
    # Once the service reports them deleted (a group deleted too), nothing is left to name.
    state = fold(
        envelope(compute.InstanceDeleted(host="h1"), "i1", tenant="t1", producer="compute"),
        envelope(compute.InstanceDeleted(host="h1"), "i2", tenant="t1", producer="compute"),
        envelope(api.ServerGroupDeleted(), "g1", tenant="t1"),
        state=state,
    )
    outcome = delete_tenant(state, "t1")
    assert outcome.status == 204
    assert [type(e.payload) for e in outcome.emits] == [api.TenantDeleted]


def test_a_deleted_tenant_is_gone_its_tokens_refused_and_its_name_free() -> None:
    state = fold(envelope(api.TenantDeleted(), "t1", tenant="t1"), state=tenant_with_a_token())
    assert "t1" not in state.tenants
    assert [t.id for t in list_tenants(state, limit=10).items] == ["t2"]
    assert limits(state, "t1")["instances"] == 10  # its override is dropped
    with pytest.raises(Problem) as raised:
        authenticate(state, f"Bearer {TOKEN}", at(0))
    assert (raised.value.status, raised.value.detail) == (401, "the tenant was deleted")
    assert refusal(lambda: delete_tenant(state, "t1")).status == 404
    issue = IssueToken()
    assert (
        refusal(
            lambda: issue_token(state, "t1", issue, token_id="n", now=at(0), secret=b"s")
        ).status
        == 404
    )
    assert create_tenant(state, CreateTenant(name="alice"), "t3").status == 201


def test_a_late_duplicate_of_its_creation_does_not_bring_it_back_and_a_snapshot_keeps_it() -> None:
    created = envelope(api.TenantCreated(name="alice"), "t1", tenant="t1")
    state = fold(created, envelope(api.TenantDeleted(), "t1", tenant="t1"), created)
    assert state.tenants == {}
    assert state.tenant_order == []
    assert "t1" in restore(snapshot(state)).deleted_tenants


def test_the_audit_drops_a_deleted_tenants_overrides_as_the_gateway_does() -> None:
    facts = [
        envelope(api.TenantCreated(name="alice"), "t1", tenant="t1"),
        envelope(quotas.TenantQuotaSet(limits={"instances": 1}), "t1", tenant="t1"),
        envelope(api.TenantDeleted(), "t1", tenant="t1", seconds=1),
    ]
    model = audit.fold_all(facts)
    assert model.overrides == {}
    assert model.limit("t1", "instances") == limits(fold(*facts), "t1")["instances"] == 10


def test_a_network_that_failed_to_be_made_is_owned_until_deleted() -> None:
    state = fold(
        envelope(network.NetworkRequested(name="n", cidr="10.0.0.0/24"), "n1", tenant="t1"),
        envelope(network.NetworkCreationFailed(reason="no vni"), "n1", tenant="t1"),
        state=tenant_with_a_token(),
    )
    assert state.quota_usage.get("t1", {}).get("networks", 0) == 0  # counts against no quota
    problem = refusal(lambda: delete_tenant(state, "t1"))
    assert [(e.field, e.message) for e in problem.errors] == [("networks", "1 not deleted")]
