"""The network controller's fold of public addresses: external networks, floating IPs, routers.

As for ports (see `fold`), a rebuild may fold a floating IP's or router's allocation before
its external network's creation: the holder is kept on the network's stub and its address
claimed once the CIDR is known; each address keeps the list of its holders.
"""

from __future__ import annotations

from virga_events import Envelope
from virga_events.catalog import l3
from virga_network.core.holders import bounded_add as _bounded_add
from virga_network.core.holders import claim as _claim
from virga_network.core.holders import release as _release
from virga_network.core.model import (
    ExternalNetworkRecord,
    FloatingIpRecord,
    NetworkRecord,
    NetworkState,
    RouterRecord,
    subnet_of,
)
from virga_runtime.folding import Folds

l3_folds: Folds[NetworkState] = Folds()


def external_record(state: NetworkState, external_network_id: str) -> ExternalNetworkRecord:
    record = state.external_networks.get(external_network_id)
    if record is None:
        record = state.external_networks[external_network_id] = ExternalNetworkRecord(
            external_network_id=external_network_id
        )
    return record


def _hold(state: NetworkState, external_network_id: str, holder: str, ip: str) -> None:
    if external_network_id in state.gone:
        return  # a rebuild folded the network's deletion first
    record = external_record(state, external_network_id)
    record.holders[holder] = ip
    if record.created:
        _claim_one(record, holder, ip)
    else:
        record.early_ips.append(ip)


def _claim_one(record: ExternalNetworkRecord, holder: str, ip: str) -> None:
    offset = subnet_of(record.cidr).offset(ip)
    _claim(record.used, offset, holder)
    record.high_water = max(record.high_water, offset)
    while record.in_use_below in record.used:
        record.in_use_below += 1


def claim_address(network: NetworkRecord, holder: str, ip: str) -> None:
    """`holder` (a port, a router's SNAT port) holds `ip` of the created `network`."""
    offset = subnet_of(network.cidr).offset(ip)
    _claim(network.used, offset, holder)
    network.high_water = max(network.high_water, offset)
    while network.in_use_below in network.used:
        network.in_use_below += 1


def _hold_snat(state: NetworkState, network_id: str, holder: str, mac: str, ip: str) -> None:
    """A router's SNAT port holds `mac` and `ip` of the network, as a port would."""
    _claim(state.macs, mac, holder)
    if network_id in state.deleted_networks:
        return  # a rebuild folded the network's deletion first: its addresses are moot
    network = state.networks.get(network_id)
    if network is None:
        network = state.networks[network_id] = NetworkRecord(network_id=network_id)
    network.held[holder] = ip
    if network.created:
        claim_address(network, holder, ip)
    else:
        network.early_ips.append(ip)


def _unhold_snat(state: NetworkState, router: RouterRecord, network_id: str) -> None:
    snat = router.snat.pop(network_id, None)
    if snat is None:
        return
    holder = l3.snat_port_id(router.router_id, network_id)
    _release(state.macs, snat[0], holder)
    network = state.networks.get(network_id)
    if network is not None and network.held.pop(holder, None) is not None and network.created:
        offset = subnet_of(network.cidr).offset(snat[1])
        _release(network.used, offset, holder)
        network.in_use_below = min(network.in_use_below, offset)


def _unhold(state: NetworkState, external_network_id: str, holder: str) -> None:
    record = state.external_networks.get(external_network_id)
    if record is None:
        return
    ip = record.holders.pop(holder, None)
    if ip is not None and record.created:
        offset = subnet_of(record.cidr).offset(ip)
        _release(record.used, offset, holder)
        record.in_use_below = min(record.in_use_below, offset)


@l3_folds.on(l3.ExternalNetworkCreated)
def _external_created(
    state: NetworkState, envelope: Envelope, event: l3.ExternalNetworkCreated
) -> None:
    if envelope.aggregate_id in state.gone:
        return
    record = external_record(state, envelope.aggregate_id)
    if record.created:
        return
    subnet = subnet_of(event.cidr)
    record.created, record.cidr = True, event.cidr
    record.pools = [(subnet.offset(p.start), subnet.offset(p.end)) for p in event.allocation_pools]
    record.in_use_below = record.pools[0][0]
    for holder, ip in record.holders.items():
        _claim_one(record, holder, ip)
    for ip in record.early_ips:
        record.high_water = max(record.high_water, subnet.offset(ip))
    record.early_ips = []


@l3_folds.on(l3.ExternalNetworkDeleted)
def _external_deleted(
    state: NetworkState, envelope: Envelope, event: l3.ExternalNetworkDeleted
) -> None:
    state.external_networks.pop(envelope.aggregate_id, None)
    state.refused.pop(envelope.aggregate_id, None)
    _bounded_add(state.gone, envelope.aggregate_id)


@l3_folds.on(l3.FloatingIpAllocated)
def _floating_ip_allocated(
    state: NetworkState, envelope: Envelope, event: l3.FloatingIpAllocated
) -> None:
    fip_id = envelope.aggregate_id
    if fip_id in state.floating_ips or fip_id in state.gone:
        return
    state.floating_ips[fip_id] = FloatingIpRecord(
        floating_ip_id=fip_id,
        tenant_id=envelope.tenant_id,
        external_network_id=event.external_network_id,
        ip=event.ip,
    )
    _hold(state, event.external_network_id, fip_id, event.ip)


def _point(state: NetworkState, fip: FloatingIpRecord, port_id: str | None) -> None:
    if fip.port_id is not None:
        _release(state.port_floating_ips, fip.port_id, fip.floating_ip_id)
    fip.port_id = port_id
    if port_id is not None:
        _claim(state.port_floating_ips, port_id, fip.floating_ip_id)


@l3_folds.on(l3.FloatingIpAssociationAccepted)
def _floating_ip_accepted(
    state: NetworkState, envelope: Envelope, event: l3.FloatingIpAssociationAccepted
) -> None:
    fip = state.floating_ips.get(envelope.aggregate_id)
    if fip is not None:
        _point(state, fip, event.port_id)


@l3_folds.on(l3.FloatingIpAssociated)
def _floating_ip_associated(
    state: NetworkState, envelope: Envelope, event: l3.FloatingIpAssociated
) -> None:
    """A host's confirmation changes nothing here; one upcast from v1 is the acceptance."""
    fip = state.floating_ips.get(envelope.aggregate_id)
    if fip is not None and event.accepted:
        _point(state, fip, event.port_id)


@l3_folds.on(l3.FloatingIpDissociated)
def _floating_ip_dissociated(
    state: NetworkState, envelope: Envelope, event: l3.FloatingIpDissociated
) -> None:
    fip = state.floating_ips.get(envelope.aggregate_id)
    if fip is not None and fip.port_id == event.port_id:
        _point(state, fip, None)


@l3_folds.on(l3.FloatingIpReleased)
def _floating_ip_released(
    state: NetworkState, envelope: Envelope, event: l3.FloatingIpReleased
) -> None:
    fip_id = envelope.aggregate_id
    fip = state.floating_ips.pop(fip_id, None)
    state.refused.pop(fip_id, None)
    _bounded_add(state.gone, fip_id)
    if fip is not None:
        _point(state, fip, None)
        _unhold(state, fip.external_network_id, fip_id)


@l3_folds.on(l3.RouterCreated)
def _router_created(state: NetworkState, envelope: Envelope, event: l3.RouterCreated) -> None:
    router_id = envelope.aggregate_id
    if router_id in state.routers or router_id in state.gone:
        return
    state.routers[router_id] = RouterRecord(
        router_id=router_id,
        tenant_id=envelope.tenant_id,
        external_network_id=event.external_network_id,
        external_ip=event.external_ip,
    )
    _hold(state, event.external_network_id, router_id, event.external_ip)


@l3_folds.on(l3.RouterInterfaceAdded)
def _interface_added(
    state: NetworkState, envelope: Envelope, event: l3.RouterInterfaceAdded
) -> None:
    router = state.routers.get(envelope.aggregate_id)
    if router is not None:
        router.networks[event.network_id] = None
        state.network_routers[event.network_id] = router.router_id
        if event.snat_ip and event.network_id not in router.snat:
            router.snat[event.network_id] = (event.snat_mac, event.snat_ip)
            holder = l3.snat_port_id(router.router_id, event.network_id)
            _hold_snat(state, event.network_id, holder, event.snat_mac, event.snat_ip)


@l3_folds.on(l3.RouterInterfaceRemoved)
def _interface_removed(
    state: NetworkState, envelope: Envelope, event: l3.RouterInterfaceRemoved
) -> None:
    router = state.routers.get(envelope.aggregate_id)
    if router is not None:
        router.networks.pop(event.network_id, None)
        _unhold_snat(state, router, event.network_id)
    if state.network_routers.get(event.network_id) == envelope.aggregate_id:
        del state.network_routers[event.network_id]


@l3_folds.on(l3.RouterDeleted)
def _router_deleted(state: NetworkState, envelope: Envelope, event: l3.RouterDeleted) -> None:
    router_id = envelope.aggregate_id
    router = state.routers.pop(router_id, None)
    state.refused.pop(router_id, None)
    _bounded_add(state.gone, router_id)
    if router is not None:
        for network_id in router.networks:
            if state.network_routers.get(network_id) == router_id:
                del state.network_routers[network_id]
        for network_id in list(router.snat):
            _unhold_snat(state, router, network_id)
        _unhold(state, router.external_network_id, router_id)


def _refused(
    state: NetworkState,
    envelope: Envelope,
    event: l3.ExternalNetworkCreationFailed
    | l3.FloatingIpAllocationFailed
    | l3.RouterCreationFailed,
) -> None:
    _bounded_add(state.refused, envelope.aggregate_id)


l3_folds.add(l3.ExternalNetworkCreationFailed, _refused)
l3_folds.add(l3.FloatingIpAllocationFailed, _refused)
l3_folds.add(l3.RouterCreationFailed, _refused)


def register(folds: Folds[NetworkState]) -> None:
    """Add these folds to the controller's table (`fold.folds`)."""
    for event_type in l3_folds.event_types:
        folds.add(event_type, _delegate)


def _delegate(state: NetworkState, envelope: Envelope, event: object) -> None:
    l3_folds.evolve(state, envelope)
