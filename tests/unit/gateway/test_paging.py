"""Every list route pages: `limit`, a cursor, `{"items", "next"}`, over per-tenant indexes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.unit.gateway.events import envelope, fold

from virga_events.catalog import Flavor, api, compute, storage
from virga_events.catalog import network as net
from virga_gateway.auth import Principal
from virga_gateway.billing.queries import invoices
from virga_gateway.cursor import OrderKey, decode_cursor
from virga_gateway.flavors.queries import list_flavors
from virga_gateway.hosts.queries import list_hosts
from virga_gateway.images.queries import list_images
from virga_gateway.networks.queries import list_networks
from virga_gateway.ports.queries import list_ports
from virga_gateway.security_groups.queries import list_security_groups
from virga_gateway.server_groups.queries import list_server_groups
from virga_gateway.state import GatewayState
from virga_gateway.tenants.queries import list_tenants

ADMIN = Principal("admin", "admin", None)
ALICE = Principal("tok-a", "tenant", "alice")
BOB = Principal("tok-b", "tenant", "bob")

Lister = Callable[[GatewayState, Principal, int, OrderKey | None], Any]


def walk(lister: Lister, state: GatewayState, principal: Principal, limit: int) -> list[str]:
    """Every item's id (or name), page by page, following `next`."""
    seen: list[str] = []
    after: OrderKey | None = None
    while True:
        page = lister(state, principal, limit, after)
        assert len(page.items) <= limit
        seen += [getattr(item, "id", None) or item.name for item in page.items]
        if page.next is None:
            return seen
        assert len(page.items) == limit
        after = decode_cursor(page.next)


def fleet() -> GatewayState:
    """Two tenants with networks, ports, images, groups and flavors, created interleaved."""
    events = [
        envelope(api.TenantCreated(name="alice"), "alice", tenant="alice", seconds=0),
        envelope(api.TenantCreated(name="bob"), "bob", tenant="bob", seconds=1),
    ]
    for n in range(7):
        for tenant in ("alice", "bob"):
            seconds = 10 + 2 * n + (tenant == "bob")
            net_id = f"net-{tenant}-{n}"
            events += [
                envelope(net.NetworkRequested(name=net_id, cidr="10.0.0.0/24"), net_id,
                         tenant=tenant, seconds=seconds),
                envelope(net.PortRequested(network_id=f"net-{tenant}-0", name=f"p{n}"),
                         f"port-{tenant}-{n}", tenant=tenant, seconds=seconds),
                envelope(net.SecurityGroupCreated(name=f"sg{n}", rules=()), f"sg-{tenant}-{n}",
                         tenant=tenant, seconds=seconds),
                envelope(api.ServerGroupCreated(name=f"g{n}", policy="affinity", scope="host"),
                         f"grp-{tenant}-{n}", tenant=tenant, seconds=seconds),
                envelope(storage.ImageImportRequested(name=f"i{n}", disk_format="raw",
                                                      visibility="private"),
                         f"img-{tenant}-{n}", tenant=tenant, seconds=seconds),
            ]  # fmt: skip
        public = storage.ImageImportRequested(
            name=f"pub{n}", disk_format="raw", visibility="public"
        )
        events.append(envelope(public, f"img-public-{n}", seconds=10 + 2 * n))
        flavor = Flavor(name=f"f{n}", vcpus=n + 1, ram_mb=64 * (n + 1), disk_gb=1)
        events.append(envelope(api.FlavorCreated(flavor=flavor), f"f{n}", seconds=5))
        registered = compute.HostRegistered(rack="r", zone="z", vcpus=4, ram_mb=4096, disk_gb=40)
        events.append(envelope(registered, f"host-{n}", producer=f"compute@host-{n}"))
    return fold(*events)


LISTERS: dict[str, Lister] = {
    "networks": lambda s, p, n, a: list_networks(s, p, limit=n, after=a),
    "ports": lambda s, p, n, a: list_ports(s, p, limit=n, after=a),
    "images": lambda s, p, n, a: list_images(s, p, limit=n, after=a),
    "security groups": lambda s, p, n, a: list_security_groups(s, p, limit=n, after=a),
    "server groups": lambda s, p, n, a: list_server_groups(s, p, limit=n, after=a),
}


@pytest.mark.parametrize("name", sorted(LISTERS))
@pytest.mark.parametrize("limit", [1, 2, 3, 50])
def test_pages_of_a_tenant_list_its_items_once_oldest_first(name: str, limit: int) -> None:
    state = fleet()
    lister = LISTERS[name]
    everything = lister(state, ALICE, 1000, None).items
    ids = [getattr(item, "id", None) for item in everything]
    assert walk(lister, state, ALICE, limit) == ids
    assert len(ids) == len(set(ids))
    assert not any("bob" in str(i) for i in ids)  # only the tenant's own (and public) items


@pytest.mark.parametrize("name", sorted(LISTERS))
def test_an_admin_pages_through_every_tenants_items_merged_in_order(name: str) -> None:
    state = fleet()
    lister = LISTERS[name]
    everything = walk(lister, state, ADMIN, 1000)
    assert walk(lister, state, ADMIN, 3) == everything
    assert any("alice" in i for i in everything)
    assert any("bob" in i for i in everything)


def test_networks_and_ports_are_listed_oldest_first_after_the_cursor() -> None:
    state = fleet()
    first = list_networks(state, ALICE, limit=2)
    assert [n.id for n in first.items] == ["net-alice-0", "net-alice-1"]
    assert first.next is not None
    rest = list_networks(state, ALICE, limit=50, after=decode_cursor(first.next))
    assert [n.id for n in rest.items] == [f"net-alice-{n}" for n in range(2, 7)]
    assert rest.next is None


def test_the_ports_of_one_network_page_through_that_networks_index() -> None:
    state = fleet()
    walked = walk(
        lambda s, p, n, a: list_ports(s, p, limit=n, after=a, network_id="net-alice-0"),
        state,
        ALICE,
        2,
    )
    assert walked == [f"port-alice-{n}" for n in range(7)]
    assert list_ports(state, BOB, limit=50, network_id="net-alice-0").items == []


def test_images_are_the_public_ones_and_the_tenants_own() -> None:
    state = fleet()
    walked = walk(LISTERS["images"], state, ALICE, 4)
    assert {i for i in walked if "public" in i} == {f"img-public-{n}" for n in range(7)}
    assert {i for i in walked if "alice" in i} == {f"img-alice-{n}" for n in range(7)}
    assert len(walked) == 14


def test_the_default_security_group_comes_first_on_the_first_page() -> None:
    state = fleet()
    first = list_security_groups(state, ALICE, limit=1)
    assert first.items[0].default
    assert first.next is not None
    second = list_security_groups(state, ALICE, limit=1, after=decode_cursor(first.next))
    assert second.items[0].id == "sg-alice-0"
    admin_defaults = [g for g in list_security_groups(state, ADMIN, limit=2).items]
    assert [g.tenant_id for g in admin_defaults] == ["alice", "bob"]


def test_a_deleted_security_group_leaves_its_tenants_index() -> None:
    state = fleet()
    fold(
        envelope(net.SecurityGroupDeleted(), "sg-alice-3", tenant="alice", seconds=99), state=state
    )
    ids = walk(LISTERS["security groups"], state, ALICE, 2)
    assert "sg-alice-3" not in ids
    assert "sg-alice-4" in ids
    assert "alice" in state.tenant_security_group_order
    assert len(state.tenant_security_group_order["alice"]) == 6


def test_global_lists_page_too_tenants_flavors_hosts_invoices() -> None:
    state = fleet()
    tenants = walk(lambda s, p, n, a: list_tenants(s, limit=n, after=a), state, ADMIN, 1)
    assert tenants == ["alice", "bob"]
    flavors = walk(lambda s, p, n, a: list_flavors(s, limit=n, after=a), state, ADMIN, 2)
    everything = [f.name for f in list_flavors(state, limit=200).items]
    assert flavors == everything
    assert len(everything) == len(state.flavors)
    sizes = [(state.flavors[f].vcpus, state.flavors[f].ram_mb) for f in everything]
    assert sizes == sorted(sizes)  # smallest first, as before paging
    hosts = walk(lambda s, p, n, a: list_hosts(s, limit=n, after=a), state, ADMIN, 3)
    assert hosts == [f"host-{n}" for n in range(7)]
    assert invoices(state, "alice", limit=5).items == []
    assert invoices(state, "alice", limit=5).next is None


def test_a_tenant_list_walks_only_that_tenants_index() -> None:
    state = fleet()
    # Another tenant's records are never visited: break them and list anyway.
    for key in state.tenant_network_order["bob"]:
        del state.networks[key[1]]
    assert len(list_networks(state, ALICE, limit=50).items) == 7
