"""A floating IP's association is confirmed by its port's host once plumbed: which reports the
plan asks for (pure), and that the effects emit them after the rules, once each."""

from __future__ import annotations

import orjson
from tests.unit.network_agent.test_l3_core import HOST, associate, base, ev, fold, plan, port

from virga_events import Envelope
from virga_events.catalog.l3 import (
    FloatingIpAssociated,
    FloatingIpDissociated,
    FloatingIpReleased,
    FloatingIpUnplumbed,
)
from virga_network.agent.core import names
from virga_network.agent.core.l3 import FloatingReport
from virga_network.agent.core.snapshot import restore, snapshot
from virga_network.agent.drivers.memory import MemoryNetworkDriver
from virga_network.agent.effects.converge import AgentEffects
from virga_network.agent.effects.intents import Converge
from virga_runtime.service import Emit

PLUMBED = [*base(), *port("p-1", "10.0.0.5"), *port("p-2", "10.0.0.6", host="h2")]


def confirmed(host: str, port_id: str) -> Envelope:
    """What `host`'s agent records (and folds back) once it plumbed f-1 for `port_id`."""
    return ev(FloatingIpAssociated(port_id=port_id, host=host), "f-1")


def unplumbed(host: str, port_id: str) -> Envelope:
    return ev(FloatingIpUnplumbed(port_id=port_id, host=host), "f-1")


def test_the_ports_host_confirms_once_and_only_until_the_log_has_its_confirmation() -> None:
    events = [*PLUMBED, associate("p-1", "10.0.0.5")]
    namespace = names.router_namespace("r-1", HOST)
    (report,) = plan(events).confirm
    assert report == FloatingReport("f-1", "t-1", "p-1", "n-1", "10.0.0.5", namespace)
    assert plan(events, host="h2").confirm == ()  # not its port
    done = [*events, confirmed(HOST, "p-1")]
    assert (plan(done).confirm, plan(done).unplumb) == ((), ())
    # Another host's confirmation is not this host's; a restart from a snapshot knows its own.
    assert plan([*events, confirmed("h2", "p-1")]).confirm == (report,)
    state = fold(done)
    assert restore(orjson.loads(orjson.dumps(snapshot(state)))) == state
    # Snapshots from before confirmations: the host confirms what it plumbs anew.
    old = snapshot(state)
    del old["confirmed"]
    assert restore(old).confirmed == {}


def test_re_association_to_another_host_unplumbs_there_and_confirms_on_the_new_host() -> None:
    done = [*PLUMBED, associate("p-1", "10.0.0.5"), confirmed(HOST, "p-1")]
    moved = [*done, associate("p-2", "10.0.0.6")]
    assert plan(moved).unplumb == (FloatingReport("f-1", "t-1", "p-1"),)
    assert plan(moved).confirm == ()
    (report,) = plan(moved, host="h2").confirm
    assert (report.port_id, report.fixed_ip) == ("p-2", "10.0.0.6")
    after = [*moved, unplumbed(HOST, "p-1"), confirmed("h2", "p-2")]
    assert (plan(after).unplumb, plan(after, host="h2").confirm) == ((), ())
    # Dissociated, or released: the host that confirmed says when the rules are gone.
    gone = [*after, ev(FloatingIpDissociated(port_id="p-2"), "f-1")]
    assert plan(gone, host="h2").unplumb == (FloatingReport("f-1", "t-1", "p-2"),)
    released = ev(FloatingIpReleased(external_network_id="ext", ip="203.0.113.100"), "f-1")
    assert plan([*after, released], host="h2").unplumb == (FloatingReport("f-1", "t-1", "p-2"),)
    # A stale unplumbing (of a former port) forgets nothing.
    assert plan([*after, unplumbed("h2", "p-1")], host="h2").unplumb == ()


def payloads(emits: object) -> list[object]:
    """The floating IP reports among `emits` (ports' reports aside)."""
    assert isinstance(emits, list)
    reports = FloatingIpAssociated | FloatingIpUnplumbed
    return [e.payload for e in emits if isinstance(e, Emit) and isinstance(e.payload, reports)]


async def test_the_confirmation_is_emitted_after_the_rules_and_never_twice() -> None:
    driver = MemoryNetworkDriver()
    effects = AgentEffects(driver, retry_seconds=0.0)
    events = [*PLUMBED, associate("p-1", "10.0.0.5")]
    wanted = plan(events)
    namespace = wanted.routers[0].namespace
    driver.fail_routers.add(namespace)
    assert payloads(await effects.converge(Converge(wanted))) == []  # rules not in place
    driver.fail_routers.clear()
    emits = payloads(await effects.converge(Converge(wanted)))
    assert driver.routers[namespace].floating == wanted.routers[0].floating
    assert emits == [
        FloatingIpAssociated(port_id="p-1", host=HOST, network_id="n-1", fixed_ip="10.0.0.5")
    ]
    # The same plan again, or another change before the log brought the report back: no repeat.
    assert payloads(await effects.converge(Converge(wanted))) == []
    other = plan([*events, *port("p-3", "10.0.0.7")])
    assert payloads(await effects.converge(Converge(other))) == []
    # Dissociated: the rules go first, then the report.
    done = [*events, *port("p-3", "10.0.0.7"), confirmed(HOST, "p-1")]
    dissociated = plan([*done, ev(FloatingIpDissociated(port_id="p-1"), "f-1")])
    emits = payloads(await effects.converge(Converge(dissociated)))
    assert driver.routers[namespace].floating == ()
    assert emits == [FloatingIpUnplumbed(port_id="p-1", host=HOST)]


def test_an_association_of_version_1_is_plumbed_and_then_confirmed_by_its_host() -> None:
    """Written by the controller before confirmations (upcast: `accepted`), it points the
    floating IP at the port; its host confirms it anew."""
    old = FloatingIpAssociated(
        port_id="p-1", host=HOST, network_id="n-1", fixed_ip="10.0.0.5", accepted=True
    )
    events = [*PLUMBED, ev(old, "f-1")]
    (report,) = plan(events).confirm
    assert (report.port_id, report.fixed_ip) == ("p-1", "10.0.0.5")
    assert fold(events).confirmed == {}
