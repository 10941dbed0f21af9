"""A floating IP is ACTIVE only once its port's host confirmed the plumbing (DOWN before, and
again after a dissociation or while a new host has yet to confirm); an association recorded
before confirmations existed (FloatingIpAssociated v1) reads as done."""

from __future__ import annotations

import orjson
from tests.unit.gateway.events import envelope, fold
from tests.unit.gateway.test_l3_fold import PORT, life

from virga_events import REGISTRY, Envelope, Event, decode, encode
from virga_events.catalog import l3
from virga_gateway.state import GatewayState

OTHER = "port-2"


def ctl(event: Event, seconds: float) -> Envelope:
    return envelope(event, "f1", tenant="t1", producer="network", seconds=seconds)


def accepted(host: str | None, port_id: str = PORT, seconds: float = 10) -> Envelope:
    event = l3.FloatingIpAssociationAccepted(
        port_id=port_id, network_id="n1", fixed_ip="10.0.0.2", host=host
    )
    return ctl(event, seconds)


def confirmed(host: str, acceptance: Envelope, port_id: str = PORT) -> Envelope:
    """What `host`'s agent records once it plumbed `acceptance`."""
    event = l3.FloatingIpAssociated(port_id=port_id, host=host, acceptance=acceptance.event_id)
    return ctl(event, 11)


def unplumbed(host: str, acceptance: Envelope) -> Envelope:
    event = l3.FloatingIpUnplumbed(port_id=PORT, host=host, acceptance=acceptance.event_id)
    return ctl(event, 12)


def before_association() -> list[Envelope]:
    return [
        e
        for e in life()
        if not (
            e.aggregate_id == "f1"
            and isinstance(e.payload, l3.FloatingIpAssociationAccepted | l3.FloatingIpAssociated)
        )
    ]


def status(*events: Envelope, state: GatewayState | None = None) -> str:
    base = state if state is not None else fold(*before_association())
    return fold(*events, state=base).floating_ips["f1"].status


def test_down_until_the_ports_host_confirms_then_active() -> None:
    on_1 = accepted("hv-1")
    assert status() == "DOWN"
    assert status(on_1) == "DOWN"
    assert status(on_1, confirmed("hv-1", on_1)) == "ACTIVE"
    # Read before its acceptance (a rebuild reading the host's topic first): the same.
    assert status(confirmed("hv-1", on_1), on_1) == "ACTIVE"
    # Another host's (a stale) confirmation is not this one's.
    assert status(on_1, confirmed("hv-2", on_1)) == "DOWN"
    # Unplaced ports wait for their host: the controller accepts again naming it.
    unplaced = accepted(None)
    assert status(unplaced, confirmed("hv-1", unplaced)) == "DOWN"
    assert status(unplaced, on_1, confirmed("hv-1", on_1)) == "ACTIVE"


def test_moved_re_accepted_or_dissociated_it_is_down_until_confirmed_again() -> None:
    on_1 = accepted("hv-1")
    done = [on_1, confirmed("hv-1", on_1)]
    # The port moved: the old host unplumbs, the new one confirms (in any order).
    on_2 = accepted("hv-2", seconds=13)
    assert status(*done, on_2) == "DOWN"
    assert status(*done, on_2, unplumbed("hv-1", on_1)) == "DOWN"
    assert status(*done, on_2, unplumbed("hv-1", on_1), confirmed("hv-2", on_2)) == "ACTIVE"
    assert status(*done, on_2, confirmed("hv-2", on_2), unplumbed("hv-1", on_1)) == "ACTIVE"
    # Its own host took the rules away (the association stands): DOWN.
    assert status(*done, unplumbed("hv-1", on_1)) == "DOWN"
    assert status(*done, ctl(l3.FloatingIpDissociated(port_id=PORT), 12)) == "DOWN"
    # Dissociated and associated again to the same port: DOWN until that acceptance is
    # confirmed, whatever the host said of the former one.
    again = accepted("hv-1", seconds=14)
    dissociated = ctl(l3.FloatingIpDissociated(port_id=PORT), 12)
    assert status(*done, dissociated, again) == "DOWN"
    assert status(*done, dissociated, again, confirmed("hv-1", again)) == "ACTIVE"


def test_an_association_written_before_confirmations_is_upcast_and_reads_as_done() -> None:
    v2 = encode(accepted("hv-1"))
    wire = orjson.loads(v2)
    wire.update(type="FloatingIpAssociated", version=1)
    old = decode(orjson.dumps(wire), REGISTRY)
    assert old.payload == l3.FloatingIpAssociated(
        port_id=PORT, host="hv-1", network_id="n1", fixed_ip="10.0.0.2", accepted=True
    )
    state = fold(*before_association(), old)
    fip = state.floating_ips["f1"]
    assert (fip.status, fip.port_id, fip.fixed_ip) == ("ACTIVE", PORT, "10.0.0.2")
    assert state.ports[PORT].floating_ips == {"f1": "203.0.113.10"}
    # An unplaced port's (host null) too.
    wire["payload"] = {**wire["payload"], "host": None}
    unplaced = decode(orjson.dumps(wire), REGISTRY)
    assert isinstance(unplaced.payload, l3.FloatingIpAssociated)
    assert (unplaced.payload.host, unplaced.payload.accepted) == ("", True)
