"""The gateway's security group rules and port groups: commands, fold order, preview, snapshot."""

from __future__ import annotations

import orjson
import pytest
from tests.unit.gateway.events import at, envelope, fold
from tests.unit.gateway.test_commands import ALICE, BOB, problem_of

from virga_events.catalog import api
from virga_events.catalog import network as net
from virga_gateway.preview import preview
from virga_gateway.security_groups.bodies import RuleBody
from virga_gateway.security_groups.commands import MAX_RULES, add_rule, delete_rule
from virga_gateway.state import GatewayState, restore, snapshot
from virga_runtime.service import Emit

HTTP = net.SecurityGroupRule(
    direction="ingress", protocol="tcp", port_min=80, port_max=80, remote_cidr="0.0.0.0/0",
    id="r-http",
)  # fmt: skip


def with_group(*rules: net.SecurityGroupRule) -> GatewayState:
    return fold(
        envelope(api.TenantCreated(name="alice"), "t1", tenant="t1"),
        envelope(net.SecurityGroupCreated(name="web", rules=rules), "sg-1", tenant="t1"),
    )


def test_a_rule_is_added_with_its_id_unless_it_repeats_one_and_deleted_by_id() -> None:
    state = with_group(HTTP)
    ssh = RuleBody(direction="ingress", protocol="tcp", port_min=22)
    outcome = add_rule(state, ALICE, "sg-1", ssh, "r-ssh")
    assert outcome.status == 201
    [emit] = outcome.emits
    assert emit.payload == net.SecurityGroupRuleAdded(
        rule=net.SecurityGroupRule(
            direction="ingress", protocol="tcp", port_min=22, port_max=22, id="r-ssh"
        )
    )
    same = RuleBody(direction="ingress", protocol="tcp", port_min=80, remote_cidr="0.0.0.0/0")
    repeated = problem_of(lambda: add_rule(state, ALICE, "sg-1", same, "r-2"))
    assert (repeated.status, "r-http" in repeated.detail) == (409, True)
    assert problem_of(lambda: add_rule(state, BOB, "sg-1", ssh, "r-3")).status == 404
    default = net.default_security_group_id("t1")
    assert problem_of(lambda: add_rule(state, ALICE, default, ssh, "r-4")).status == 409
    assert delete_rule(state, ALICE, "sg-1", "r-http").status == 204
    assert problem_of(lambda: delete_rule(state, ALICE, "sg-1", "r-ssh")).status == 404
    assert problem_of(lambda: delete_rule(state, BOB, "sg-1", "r-http")).status == 404


def test_a_group_takes_no_rule_past_the_limit() -> None:
    rules = [
        net.SecurityGroupRule(
            direction="ingress", protocol="tcp", port_min=p, port_max=p, id=f"r{p}"
        )
        for p in range(1, MAX_RULES + 1)
    ]
    state = with_group(*rules)
    body = RuleBody(direction="egress")
    over = problem_of(lambda: add_rule(state, ALICE, "sg-1", body, "r-x"))
    assert over.status == 409
    assert f"{MAX_RULES} rules" in over.detail
    state = fold(envelope(net.SecurityGroupRuleDeleted(rule_id="r1"), "sg-1", tenant="t1"),
                 state=state)  # fmt: skip
    assert add_rule(state, ALICE, "sg-1", body, "r-x").status == 201


def test_a_preview_of_a_rule_change_leaves_the_projection_as_it_was() -> None:
    state = with_group(HTTP)
    added = net.SecurityGroupRuleAdded(rule=net.SecurityGroupRule(direction="egress", id="r-e"))
    scratch = preview(state, [Emit(added, "sg-1", "t1")], at(5), "correlation")
    assert [r.id for r in scratch.security_groups["sg-1"].rules] == ["r-http", "r-e"]
    assert [r.id for r in state.security_groups["sg-1"].rules] == ["r-http"]


@pytest.mark.parametrize("allocation_first", [True, False])
def test_a_ports_changed_groups_win_over_its_allocation_in_either_order(
    allocation_first: bool,
) -> None:
    allocated = envelope(
        net.PortAllocated(network_id="n1", mac="02:00:00:00:00:01", ips=("10.0.0.2",),
                          security_groups=("sg-default",), instance_id="i1"),
        "p1", tenant="t1", producer="network",
    )  # fmt: skip
    changed = envelope(
        net.PortSecurityGroupsChanged(security_groups=("sg-1",)), "p1", tenant="t1", seconds=1
    )
    order = (allocated, changed) if allocation_first else (changed, allocated)
    state = fold(*order)
    assert state.ports["p1"].security_groups == ["sg-1"]


def test_rules_of_a_snapshot_from_before_rule_ids_get_them_at_restore() -> None:
    state = with_group(net.SecurityGroupRule(direction="egress"), HTTP)
    data = orjson.loads(snapshot(state))
    for rule in data["security_groups"]["sg-1"]["rules"]:
        del rule["id"]
    restored = restore(orjson.dumps(data))
    assert [r.id for r in restored.security_groups["sg-1"].rules] == [
        net.security_group_rule_id("sg-1", 0),
        net.security_group_rule_id("sg-1", 1),
    ]
    # The fold gives a creation's rules written without ids the same ids.
    folded = with_group(net.SecurityGroupRule(direction="egress")).security_groups["sg-1"]
    assert [r.id for r in folded.rules] == [net.security_group_rule_id("sg-1", 0)]
