"""The agent's fold of public addresses (`virga_events.catalog.l3`): external networks,
routers and their interfaces, floating IPs and the port each points at.

The agent folds every router and floating IP of the cloud (a few records each); which of
them concern this host is the plan's business (`core.l3`). Records are made by whichever
event comes first, so the order of the controller's events never matters.
"""

from __future__ import annotations

from virga_events import Envelope
from virga_events.catalog.l3 import (
    ExternalNetworkCreated,
    ExternalNetworkDeleted,
    FloatingIpAllocated,
    FloatingIpAssociated,
    FloatingIpAssociationAccepted,
    FloatingIpDissociated,
    FloatingIpReleased,
    FloatingIpUnplumbed,
    RouterCreated,
    RouterDeleted,
    RouterInterfaceAdded,
    RouterInterfaceRemoved,
)
from virga_network.agent.core.model import (
    ConfirmedFloatingIp,
    ExternalNetworkRecord,
    FloatingIpRecord,
    NetworkAgentState,
    RouterRecord,
)
from virga_runtime.folding import Folds


def _router(state: NetworkAgentState, envelope: Envelope) -> RouterRecord:
    key = envelope.aggregate_id
    record = state.routers.get(key)
    if record is None:
        record = state.routers[key] = RouterRecord(envelope.tenant_id)
    return record


def _floating(state: NetworkAgentState, envelope: Envelope) -> FloatingIpRecord:
    key = envelope.aggregate_id
    record = state.floating_ips.get(key)
    if record is None:
        record = state.floating_ips[key] = FloatingIpRecord(envelope.tenant_id)
    return record


def register(folds: Folds[NetworkAgentState]) -> None:
    """Add the L3 events' folds to the agent's `folds`."""

    @folds.on(ExternalNetworkCreated)
    def _external_created(
        state: NetworkAgentState, envelope: Envelope, event: ExternalNetworkCreated
    ) -> None:
        state.externals[envelope.aggregate_id] = ExternalNetworkRecord(
            event.cidr, event.gateway_ip, event.host_interface
        )

    @folds.on(ExternalNetworkDeleted)
    def _external_deleted(
        state: NetworkAgentState, envelope: Envelope, event: ExternalNetworkDeleted
    ) -> None:
        state.externals.pop(envelope.aggregate_id, None)

    @folds.on(RouterCreated)
    def _router_created(state: NetworkAgentState, envelope: Envelope, event: RouterCreated) -> None:
        router = _router(state, envelope)
        router.external_network_id = event.external_network_id
        router.external_ip = event.external_ip

    @folds.on(RouterInterfaceAdded)
    def _interface_added(
        state: NetworkAgentState, envelope: Envelope, event: RouterInterfaceAdded
    ) -> None:
        router = _router(state, envelope)
        router.networks[event.network_id] = event.gateway_ip
        if event.snat_ip:
            router.snat_ports[event.network_id] = (event.snat_mac, event.snat_ip)

    @folds.on(RouterInterfaceRemoved)
    def _interface_removed(
        state: NetworkAgentState, envelope: Envelope, event: RouterInterfaceRemoved
    ) -> None:
        router = _router(state, envelope)
        router.networks.pop(event.network_id, None)
        router.snat_ports.pop(event.network_id, None)

    @folds.on(RouterDeleted)
    def _router_deleted(state: NetworkAgentState, envelope: Envelope, event: RouterDeleted) -> None:
        state.routers.pop(envelope.aggregate_id, None)

    @folds.on(FloatingIpAllocated)
    def _fip_allocated(
        state: NetworkAgentState, envelope: Envelope, event: FloatingIpAllocated
    ) -> None:
        fip = _floating(state, envelope)
        fip.external_network_id, fip.ip = event.external_network_id, event.ip

    @folds.on(FloatingIpAssociationAccepted)
    def _fip_accepted(
        state: NetworkAgentState, envelope: Envelope, event: FloatingIpAssociationAccepted
    ) -> None:
        fip = _floating(state, envelope)
        fip.port_id, fip.network_id, fip.fixed_ip = event.port_id, event.network_id, event.fixed_ip
        fip.acceptance = envelope.event_id

    @folds.on(FloatingIpAssociated)
    def _fip_associated(
        state: NetworkAgentState, envelope: Envelope, event: FloatingIpAssociated
    ) -> None:
        if event.accepted:  # v1: the controller's acceptance (this host confirms it anew)
            fip = _floating(state, envelope)
            fip.port_id, fip.network_id = event.port_id, event.network_id
            fip.fixed_ip, fip.acceptance = event.fixed_ip, envelope.event_id
        elif event.host == state.host:
            confirmed = ConfirmedFloatingIp(event.port_id, envelope.tenant_id, event.acceptance)
            state.confirmed[envelope.aggregate_id] = confirmed

    @folds.on(FloatingIpUnplumbed)
    def _fip_unplumbed(
        state: NetworkAgentState, envelope: Envelope, event: FloatingIpUnplumbed
    ) -> None:
        known = state.confirmed.get(envelope.aggregate_id)
        reported = (event.port_id, event.acceptance)
        if event.host == state.host and known and (known.port_id, known.acceptance) == reported:
            del state.confirmed[envelope.aggregate_id]

    @folds.on(FloatingIpDissociated)
    def _fip_dissociated(
        state: NetworkAgentState, envelope: Envelope, event: FloatingIpDissociated
    ) -> None:
        fip = _floating(state, envelope)
        if fip.port_id == event.port_id:
            fip.port_id, fip.network_id, fip.fixed_ip = None, "", ""

    @folds.on(FloatingIpReleased)
    def _fip_released(
        state: NetworkAgentState, envelope: Envelope, event: FloatingIpReleased
    ) -> None:
        state.floating_ips.pop(envelope.aggregate_id, None)
