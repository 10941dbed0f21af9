"""A floating IP's association is confirmed by its port's host once plumbed: which reports the
plan asks for (pure), and that the effects emit them after the rules, once each."""

from __future__ import annotations

import orjson
from tests.unit.network_agent.test_l3_core import HOST, associate, base, ev, fold, plan, port

from virga_events import Envelope
from virga_events.catalog.l3 import (
    FloatingIpAssociated,
    FloatingIpAssociationAccepted,
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


def confirmed(host: str, accepted: Envelope) -> Envelope:
    """What `host`'s agent records (and folds back) once it plumbed the `accepted` association
    of f-1."""
    payload = accepted.payload
    assert isinstance(payload, FloatingIpAssociationAccepted)
    event = FloatingIpAssociated(port_id=payload.port_id, host=host, acceptance=accepted.event_id)
    return ev(event, "f-1")


def unplumbed(host: str, accepted: Envelope) -> Envelope:
    payload = accepted.payload
    assert isinstance(payload, FloatingIpAssociationAccepted)
    event = FloatingIpUnplumbed(port_id=payload.port_id, host=host, acceptance=accepted.event_id)
    return ev(event, "f-1")


def test_the_ports_host_confirms_once_and_only_until_the_log_has_its_confirmation() -> None:
    accepted = associate("p-1", "10.0.0.5")
    events = [*PLUMBED, accepted]
    namespace = names.router_namespace("r-1", HOST)
    (report,) = plan(events).confirm
    assert report == FloatingReport(
        "f-1", "t-1", "p-1", accepted.event_id, "n-1", "10.0.0.5", namespace
    )
    assert plan(events, host="h2").confirm == ()  # not its port
    done = [*events, confirmed(HOST, accepted)]
    assert (plan(done).confirm, plan(done).unplumb) == ((), ())
    # Its own confirmation read back before the acceptance (another topic): the same.
    assert plan([*PLUMBED, confirmed(HOST, accepted), accepted]).confirm == ()
    # Another host's confirmation is not this host's; a restart from a snapshot knows its own.
    assert plan([*events, confirmed("h2", accepted)]).confirm == (report,)
    state = fold(done)
    assert restore(orjson.loads(orjson.dumps(snapshot(state)))) == state
    # Accepted again for the same port (dissociated and associated before this host
    # converged): the same rules, confirmed anew, nothing unplumbed.
    again = associate("p-1", "10.0.0.5")
    replumbed = plan([*done, ev(FloatingIpDissociated(port_id="p-1"), "f-1"), again])
    assert [r.acceptance for r in replumbed.confirm] == [again.event_id]
    assert replumbed.unplumb == ()


def test_re_association_to_another_host_unplumbs_there_and_confirms_on_the_new_host() -> None:
    first = associate("p-1", "10.0.0.5")
    done = [*PLUMBED, first, confirmed(HOST, first)]
    second = associate("p-2", "10.0.0.6")
    moved = [*done, second]
    assert plan(moved).unplumb == (FloatingReport("f-1", "t-1", "p-1", first.event_id),)
    assert plan(moved).confirm == ()
    (report,) = plan(moved, host="h2").confirm
    assert (report.port_id, report.fixed_ip) == ("p-2", "10.0.0.6")
    after = [*moved, unplumbed(HOST, first), confirmed("h2", second)]
    assert (plan(after).unplumb, plan(after, host="h2").confirm) == ((), ())
    # Dissociated, or released: the host that confirmed says when the rules are gone.
    gone_report = (FloatingReport("f-1", "t-1", "p-2", second.event_id),)
    gone = [*after, ev(FloatingIpDissociated(port_id="p-2"), "f-1")]
    assert plan(gone, host="h2").unplumb == gone_report
    released = ev(FloatingIpReleased(external_network_id="ext", ip="203.0.113.100"), "f-1")
    assert plan([*after, released], host="h2").unplumb == gone_report
    # A stale unplumbing (of a former acceptance) forgets nothing.
    assert plan([*after, unplumbed("h2", first)], host="h2").unplumb == ()


def payloads(emits: object) -> list[object]:
    """The floating IP reports among `emits` (ports' reports aside)."""
    assert isinstance(emits, list)
    reports = FloatingIpAssociated | FloatingIpUnplumbed
    return [e.payload for e in emits if isinstance(e, Emit) and isinstance(e.payload, reports)]


async def test_the_confirmation_is_emitted_after_the_rules_and_never_twice() -> None:
    driver = MemoryNetworkDriver()
    effects = AgentEffects(driver, retry_seconds=0.0)
    accepted = associate("p-1", "10.0.0.5")
    events = [*PLUMBED, accepted]
    wanted = plan(events)
    namespace = wanted.routers[0].namespace
    driver.fail_routers.add(namespace)
    assert payloads(await effects.converge(Converge(wanted))) == []  # rules not in place
    driver.fail_routers.clear()
    emits = payloads(await effects.converge(Converge(wanted)))
    assert driver.routers[namespace].floating == wanted.routers[0].floating
    assert emits == [
        FloatingIpAssociated(
            port_id="p-1", host=HOST, network_id="n-1", fixed_ip="10.0.0.5",
            acceptance=accepted.event_id,
        )
    ]  # fmt: skip
    # The same plan again, or another change before the log brought the report back: no repeat.
    assert payloads(await effects.converge(Converge(wanted))) == []
    other = plan([*events, *port("p-3", "10.0.0.7")])
    assert payloads(await effects.converge(Converge(other))) == []
    # Dissociated: the rules go first, then the report.
    done = [*events, *port("p-3", "10.0.0.7"), confirmed(HOST, accepted)]
    dissociated = plan([*done, ev(FloatingIpDissociated(port_id="p-1"), "f-1")])
    emits = payloads(await effects.converge(Converge(dissociated)))
    assert driver.routers[namespace].floating == ()
    assert emits == [FloatingIpUnplumbed(port_id="p-1", host=HOST, acceptance=accepted.event_id)]


def test_an_association_of_version_1_is_plumbed_and_then_confirmed_by_its_host() -> None:
    """Written by the controller before confirmations (upcast: `accepted`), it points the
    floating IP at the port; its host confirms it anew."""
    old = FloatingIpAssociated(
        port_id="p-1", host=HOST, network_id="n-1", fixed_ip="10.0.0.5", accepted=True
    )
    written = ev(old, "f-1")
    events = [*PLUMBED, written]
    (report,) = plan(events).confirm
    assert (report.port_id, report.fixed_ip, report.acceptance) == (
        "p-1", "10.0.0.5", written.event_id,
    )  # fmt: skip
    assert fold(events).confirmed == {}
