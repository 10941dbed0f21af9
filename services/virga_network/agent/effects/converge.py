"""The agent's one side effect: converge the host's plumbing on a `HostPlan`, report ports.

The handler remembers the last plan it carried out in full, so a plan that did not change
costs nothing, and only what changed is redone. A floating IP is reported plumbed
(`FloatingIpAssociated`) only after its router's rules are in place, and unplumbed only once
every router removal or change succeeded; a report is not repeated while the log has yet to
bring it back. After a start (or any failure) it first lists
what exists and removes every Virga-named interface the plan does not want. Failures become
PortBindingFailed events; only a host that cannot be listed raises (the service restarts).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from virga_events.catalog.l3 import FloatingIpAssociated, FloatingIpUnplumbed
from virga_events.catalog.network import (
    MigrationPortPlumbed,
    MigrationPortPlumbingFailed,
    MigrationPortSwitched,
    NetworkAgentRegistered,
    PortBindingFailed,
    PortBound,
    PortUnbound,
)
from virga_events.registry import Event
from virga_network.agent.core.l3 import FloatingReport
from virga_network.agent.core.migration import MigrationAnswer
from virga_network.agent.core.plan import HostPlan, PortPlan
from virga_network.agent.core.plumbing import EdgePlumbing, TapKind
from virga_network.agent.drivers.base import DriverError, HostInventory, NetworkDriver
from virga_network.agent.effects.arrival import Arrivals
from virga_network.agent.effects.intents import Converge, Register
from virga_runtime.service import EffectHandler, Emit

log = structlog.get_logger(__name__)
EdgeServing = Callable[[list[tuple[str, EdgePlumbing]]], Awaitable[bool]]
"""Serve exactly these (network id, edge) pairs; False if one could not be served."""


def _partner(name: str, kind: str) -> str:
    """The bridge of a VXLAN interface or the reverse: same network hash, other kind letter."""
    return f"{name[:-11]}{kind}{name[-10:]}"


class AgentEffects:
    """The effect handlers of one agent, over its driver."""

    def __init__(
        self,
        driver: NetworkDriver,
        retry_seconds: float = 5.0,
        edges: EdgeServing | None = None,
        instance_tap_kind: TapKind | None = "tap",
    ) -> None:
        """`edges`: serves DHCP and metadata on the edges a plan wants (the agent's
        `EdgeServer`); None: nothing served. `instance_tap_kind`: what an instance's port
        is made as (QEMU opens a tap; None: the driver's kind, for tests whose guests are
        namespaces)."""
        self._driver = driver
        self._instance_tap_kind = instance_tap_kind
        self._edges = edges
        self._applied: HostPlan | None = None
        """The last plan carried out without a failure; None: list the host first."""
        self._retry_seconds = retry_seconds
        self._failed: tuple[HostPlan, float] | None = None
        """A plan that failed and when it may be tried again: a host that keeps refusing
        (a busy device) is retried every few seconds, not every tick."""
        self._reported: set[tuple[str, FloatingReport]] = set()
        """Floating IP reports emitted that the plan still asks for (not folded back yet)."""
        self._answered: set[MigrationAnswer] = set()
        """Migration answers emitted that the plan still asks for (not folded back yet)."""
        self._arrivals = Arrivals(driver)

    def handlers(self) -> dict[type[Any], EffectHandler]:
        return {Register: self.register, Converge: self.converge}

    async def register(self, effect: Register) -> Sequence[Emit]:
        await self._driver.prepare()  # no nft, no br_netfilter: stop now, say why
        log.info("network_agent_ready", host=effect.host, vtep_ip=effect.vtep_ip)
        if not effect.announce:
            return []
        return [Emit(NetworkAgentRegistered(vtep_ip=effect.vtep_ip), effect.host, None)]

    async def converge(self, effect: Converge) -> Sequence[Emit]:
        plan, applied = effect.plan, self._applied
        # A migrated guest's arrival is looked for on every tick, even when nothing changed.
        made = set() if applied is None else {p.filter.tap for p in applied.ports}
        arrived = await self._arrivals.seen(plan.host, plan.arrivals, made)
        if plan == applied:
            return arrived
        failed_plan, retry_at = self._failed or (None, 0.0)
        if plan == failed_plan and time.monotonic() < retry_at:
            return arrived
        return [*arrived, *await self._converge(plan, applied)]

    async def _converge(self, plan: HostPlan, applied: HostPlan | None) -> list[Emit]:
        full = applied is None
        inventory = await self._driver.inventory() if full else None
        failed = False
        emits: list[Emit] = []
        failures: dict[str, str] = {}

        def fail(port: PortPlan, reason: str) -> None:
            failures[port.port_id] = reason
            if port.prepared:  # the migration's answer says it; the binding is elsewhere
                log.warning("migration_port_failed", port_id=port.port_id, reason=reason)
                return
            log.warning("port_binding_failed", port_id=port.port_id, reason=reason)
            bound = PortBindingFailed(host=plan.host, reason=reason, instance_id=port.instance_id)
            emits.append(Emit(bound, port.port_id, port.tenant_id))

        failed_networks: dict[str, str] = {}
        done_networks = set() if applied is None else set(applied.networks)
        for network in plan.networks:
            if network in done_networks:
                continue
            try:
                await self._driver.ensure_network(network, plan.vtep_ip)
            except DriverError as exc:
                failed, failed_networks[network.network_id] = True, str(exc)
        # Filters first: rules match interface names, so a tap is never on a bridge unfiltered.
        filters = plan.filters(frozenset(failed_networks))
        filtered, filters_failure = True, ""
        if applied is None or filters != applied.filters():
            try:
                await self._driver.apply_filters(filters)
            except DriverError as exc:
                failed, filtered = True, False
                filters_failure = f"filters failed: {exc}"
        # A port is remade only if new or moved; one whose report merely went out is done.
        done_ports = {} if applied is None else {p.port_id: p for p in applied.ports}
        bound: list[PortPlan] = []
        for port in plan.ports:
            if port.network_id in failed_networks:
                if port.report or port.prepared:
                    fail(port, f"network plumbing failed: {failed_networks[port.network_id]}")
                continue
            done = done_ports.get(port.port_id)
            if done is None or (done.filter.tap, done.bridge) != (port.filter.tap, port.bridge):
                if not filtered:
                    fail(port, filters_failure)  # never plugged in without its filters
                    continue
                try:
                    # An instance's port is always a tap: QEMU opens it. Other ports (an
                    # operator's, a test's) are made as VIRGA_NETWORK_TAP_KIND says.
                    instance = port.instance_id is not None
                    kind = self._instance_tap_kind if instance else None
                    await self._driver.ensure_port(port.filter.tap, port.bridge, kind=kind)
                except DriverError as exc:
                    failed = True
                    fail(port, str(exc))
                    continue
            bound.append(port)
        failed |= await self._remove_unwanted(plan, applied, inventory, bound)
        unready = await self._routers(plan, applied, inventory, frozenset(failed_networks))
        failed |= bool(unready)
        emits += self._floating_reports(plan, unready)
        if self._edges is not None:
            serving = [
                (n.network_id, n.edge)
                for n in plan.networks
                if n.edge is not None and n.network_id not in failed_networks
            ]
            failed |= not await self._edges(serving)
        for port in bound:
            if port.report:
                emits.append(self._bound(plan, port))
        for unbind in plan.unbind:
            emits.append(Emit(PortUnbound(host=plan.host), unbind.port_id, unbind.tenant_id))
        emits += self._migration_answers(plan, {p.port_id for p in bound}, failures)
        self._applied = None if failed else plan
        self._failed = (plan, time.monotonic() + self._retry_seconds) if failed else None
        return emits

    async def _remove_unwanted(
        self,
        plan: HostPlan,
        applied: HostPlan | None,
        inventory: HostInventory | None,
        bound: list[PortPlan],
    ) -> bool:
        """Remove taps and networks neither the plan nor a failure-free binding wants."""
        wanted_taps = {p.filter.tap for p in bound}
        wanted_bridges = {n.bridge for n in plan.networks}
        wanted_vxlans = {n.vxlan for n in plan.networks}
        taps: set[str] = set()
        networks: set[tuple[str, str]] = set()
        if applied is not None:
            taps |= {p.filter.tap for p in applied.ports}
            networks |= {(n.bridge, n.vxlan) for n in applied.networks}
        if inventory is not None:
            taps |= set(inventory.taps)
            networks |= {(b, _partner(b, "x")) for b in inventory.bridges}
            networks |= {(_partner(x, "b"), x) for x in inventory.vxlans}
            # An edge whose bridge is gone (a crash between the two) goes with its network.
            networks |= {(_partner(e, "b"), _partner(e, "x")) for e in inventory.edges}
        failed = False
        for tap in sorted(taps - wanted_taps):
            try:
                await self._driver.remove_port(tap)
                log.info("tap_removed", tap=tap)
            except DriverError as exc:
                failed = True
                log.warning("tap_removal_failed", tap=tap, reason=str(exc))
        for bridge, vxlan in sorted(networks):
            if bridge in wanted_bridges or vxlan in wanted_vxlans:
                continue
            try:
                await self._driver.remove_network(bridge, vxlan)
                log.info("network_removed", bridge=bridge, vxlan=vxlan)
            except DriverError as exc:
                failed = True
                log.warning("network_removal_failed", bridge=bridge, reason=str(exc))
        return failed

    async def _routers(
        self,
        plan: HostPlan,
        applied: HostPlan | None,
        inventory: HostInventory | None,
        failed_networks: frozenset[str],
    ) -> set[str]:
        """Make the plan's routers (after their networks and ports), remove the others; the
        namespaces not as planned ("" for a removal that failed)."""
        unready: set[str] = set()
        done = {} if applied is None else {r.namespace: r for r in applied.routers}
        wanted = {r.namespace for r in plan.routers}
        gone = set(done) | (set(inventory.routers) if inventory is not None else set())
        for namespace in sorted(gone - wanted):
            try:
                await self._driver.remove_router(namespace)
                log.info("router_removed", namespace=namespace)
            except DriverError as exc:
                unready.add("")
                log.warning("router_removal_failed", namespace=namespace, reason=str(exc))
        for router in plan.routers:
            if done.get(router.namespace) == router:
                continue
            if any(leg.network_id in failed_networks for leg in router.interfaces):
                unready.add(router.namespace)
                continue
            try:
                await self._driver.ensure_router(router)
            except DriverError as exc:
                unready.add(router.namespace)
                log.warning("router_failed", router_id=router.router_id, reason=str(exc))
                continue
            before = done.get(router.namespace)
            for nat in router.floating:
                if before is None or nat not in before.floating:
                    log.info(
                        "floating_ip_plumbed",
                        router_id=router.router_id,
                        floating_ip=nat.floating_ip,
                        fixed_ip=nat.fixed_ip,
                    )
        return unready

    def _floating_reports(self, plan: HostPlan, unready: set[str]) -> list[Emit]:
        """Report the plan's floating IPs whose routers are in place, and (once every router
        is as planned) those no longer NATed here; each once until the log has it."""
        due = {("confirm", r) for r in plan.confirm} | {("unplumb", r) for r in plan.unplumb}
        self._reported &= due
        emits: list[Emit] = []
        for kind, report in sorted(due - self._reported, key=lambda d: (d[1].floating_ip_id, d[0])):
            if report.namespace in unready or (kind == "unplumb" and unready):
                continue
            self._reported.add((kind, report))
            event: FloatingIpAssociated | FloatingIpUnplumbed
            if kind == "confirm":
                event = FloatingIpAssociated(
                    port_id=report.port_id,
                    host=plan.host,
                    network_id=report.network_id,
                    fixed_ip=report.fixed_ip,
                    acceptance=report.acceptance,
                )
            else:
                event = FloatingIpUnplumbed(
                    port_id=report.port_id, host=plan.host, acceptance=report.acceptance
                )
            log.info(
                "floating_ip_reported",
                floating_ip_id=report.floating_ip_id,
                port_id=report.port_id,
                plumbed=kind == "confirm",
            )
            emits.append(Emit(event, report.floating_ip_id, report.tenant_id))
        return emits

    def _migration_answers(
        self, plan: HostPlan, made: set[str], failures: dict[str, str]
    ) -> list[Emit]:
        """Answer the migration steps whose ports are all made here (or say which failed);
        each once until the log has it."""
        self._answered &= set(plan.migrations)
        emits: list[Emit] = []
        for answer in plan.migrations:
            if answer in self._answered:
                continue
            failed = [f"port {p}: {failures[p]}" for p in answer.ports if p in failures]
            if answer.kind == "switched" and failed:
                continue  # retried at the next convergence; the flow retries the request
            if not failed and not all(p in made for p in answer.ports):
                continue
            event: Event
            if answer.kind == "switched":
                event = MigrationPortSwitched(
                    flow_id=answer.flow_id, step="switch_port", host=plan.host
                )
            elif failed:
                reason = "; ".join(failed)
                event = MigrationPortPlumbingFailed(
                    flow_id=answer.flow_id, step="plumb", host=plan.host, reason=reason
                )
            else:
                event = MigrationPortPlumbed(flow_id=answer.flow_id, step="plumb", host=plan.host)
            log.info(
                "migration_answered",
                flow_id=answer.flow_id,
                instance_id=answer.instance_id,
                answer=event.TYPE,
                ports=answer.ports,
            )
            self._answered.add(answer)
            emits.append(Emit(event, answer.instance_id, answer.tenant_id))
        return emits

    def _bound(self, plan: HostPlan, port: PortPlan) -> Emit:
        log.info("port_bound", port_id=port.port_id, tap=port.filter.tap)
        bound = PortBound(
            host=plan.host,
            network_id=port.network_id,
            tap=port.filter.tap,
            mac=port.filter.mac,
            ips=port.filter.ips,
            instance_id=port.instance_id,
        )
        return Emit(bound, port.port_id, port.tenant_id)
