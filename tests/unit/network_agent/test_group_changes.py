"""The network agent's core on security groups changed after their creation: rules added and
deleted, a port's groups replaced, in either order of the topics, and their snapshots."""

from __future__ import annotations

import dataclasses
import itertools

import orjson
from tests.unit.network_agent.test_agent_core import (
    CONFIG,
    DEFAULT,
    HOST,
    TENANT,
    allocated,
    ev,
    fold,
    network,
    plan,
)

from virga_events import Envelope, Event
from virga_events.catalog.network import (
    PortBound,
    PortHostAssigned,
    PortSecurityGroupsChanged,
    SecurityGroupCreated,
    SecurityGroupDeleted,
    SecurityGroupRule,
    SecurityGroupRuleAdded,
    SecurityGroupRuleDeleted,
    security_group_rule_id,
)
from virga_network.agent.core import names
from virga_network.agent.core.decide import decide
from virga_network.agent.core.plumbing import FilterRule
from virga_network.agent.core.snapshot import restore, snapshot
from virga_network.agent.effects.intents import Converge

WEB = "sg-web"
HTTP = SecurityGroupRule(
    direction="ingress", protocol="tcp", port_min=80, port_max=80, remote_cidr="0.0.0.0/0",
    id="r-http",
)  # fmt: skip
HTTP_FILTER = FilterRule(
    direction="ingress", ethertype="IPv4", protocol="tcp", port_min=80, port_max=80,
    remote=("0.0.0.0/0",),
)  # fmt: skip


def api(payload: Event, key: str) -> Envelope:
    return ev(payload, key, producer="gateway")


def web_port() -> list[Envelope]:
    return [
        network(),
        api(SecurityGroupCreated(name="web", rules=()), WEB),
        allocated("p-1", "10.0.0.5", groups=(WEB,)),
        ev(PortHostAssigned(host=HOST), "p-1"),
    ]


def test_a_rule_added_and_deleted_changes_the_ports_filter_and_converges_at_once() -> None:
    state = fold(web_port())
    assert plan(state).ports[0].filter.rules == ()
    added = api(SecurityGroupRuleAdded(rule=HTTP), WEB)
    state = fold([added], state)
    assert plan(state).ports[0].filter.rules == (HTTP_FILTER,)
    assert [type(i) for i in decide(CONFIG, state, added)] == [Converge]
    state = fold([added], state)  # a duplicate adds nothing
    assert plan(state).ports[0].filter.rules == (HTTP_FILTER,)
    deleted = api(SecurityGroupRuleDeleted(rule_id=HTTP.id), WEB)
    state = fold([deleted], state)
    assert plan(state).ports[0].filter.rules == ()
    assert [type(i) for i in decide(CONFIG, state, deleted)] == [Converge]


def test_a_ports_changed_groups_win_whichever_topic_is_folded_first() -> None:
    changed = api(PortSecurityGroupsChanged(security_groups=(WEB, DEFAULT)), "p-1")
    group = api(SecurityGroupCreated(name="web", rules=(HTTP,)), WEB)
    events = [network(), group, allocated("p-1", "10.0.0.5"), changed]
    states = [fold(list(order)) for order in itertools.permutations(events)]
    assert {state.ports["p-1"].security_groups for state in states} == {(WEB, DEFAULT)}
    state = fold([ev(PortHostAssigned(host=HOST), "p-1")], states[0])
    assert HTTP_FILTER in plan(state).ports[0].filter.rules
    assert [type(i) for i in decide(CONFIG, state, changed)] == [Converge]


def test_rule_ids_and_changed_groups_survive_a_snapshot_and_old_snapshots_get_ids() -> None:
    changed = api(PortSecurityGroupsChanged(security_groups=(WEB,)), "p-1")
    state = fold([*web_port(), api(SecurityGroupRuleAdded(rule=HTTP), WEB), changed])
    again = restore(orjson.loads(orjson.dumps(snapshot(state))))
    assert again == state
    # A snapshot written before rules had ids: creation rules without "id", in order.
    old = snapshot(fold([api(SecurityGroupCreated(name="w", rules=(HTTP, HTTP)), WEB)]))
    for rule in old["groups"][WEB]["rules"]:
        del rule["id"]
    restored = restore(orjson.loads(orjson.dumps(old)))
    assert [r.id for r in restored.groups[WEB].rules] == [
        security_group_rule_id(WEB, 0),
        security_group_rule_id(WEB, 1),
    ]
    assert restored.groups[WEB].rules[0] == dataclasses.replace(
        HTTP, id=restored.groups[WEB].rules[0].id
    )


def test_rules_created_without_ids_get_them_from_their_position() -> None:
    bare = dataclasses.replace(HTTP, id="")
    state = fold([api(SecurityGroupCreated(name="w", rules=(bare,)), WEB)])
    assert state.groups[WEB].rules[0].id == security_group_rule_id(WEB, 0)
    deleted = api(SecurityGroupRuleDeleted(rule_id=security_group_rule_id(WEB, 0)), WEB)
    assert fold([deleted], state).groups[WEB].rules == ()
    assert state.groups[WEB].tenant_id == TENANT


def test_a_bound_port_given_a_group_not_read_yet_keeps_its_tap_with_what_is_known() -> None:
    bound = ev(
        PortBound(host=HOST, network_id="n-1", tap=names.tap_name("p-1"), mac="02:00:00:00:00:05",
                  ips=("10.0.0.5",)),
        "p-1",
    )  # fmt: skip
    state = fold([*web_port(), api(SecurityGroupRuleAdded(rule=HTTP), WEB), bound])
    assert not plan(state).ports[0].report
    # Its groups now name one whose creation is on another partition, not folded yet.
    changed = api(PortSecurityGroupsChanged(security_groups=(WEB, "sg-later")), "p-1")
    state = fold([changed], state)
    [port] = plan(state).ports
    assert port.filter.rules == (HTTP_FILTER,)
    assert plan(state).unbind == ()
    later = SecurityGroupRule(direction="ingress", protocol="udp", id="r-dns")
    state = fold([api(SecurityGroupCreated(name="later", rules=(later,)), "sg-later")], state)
    assert len(plan(state).ports[0].filter.rules) == 2
    # A group's deletion folded before the change that took it off the port: the same.
    state = fold([api(SecurityGroupDeleted(), WEB)], state)
    assert [r.protocol for r in plan(state).ports[0].filter.rules] == ["udp"]
    # Not bound yet: the port waits for its groups, as before.
    waiting = fold([network(), allocated("p-2", "10.0.0.6", groups=("sg-unknown",)),
                    ev(PortHostAssigned(host=HOST), "p-2")])  # fmt: skip
    assert plan(waiting).ports == ()
