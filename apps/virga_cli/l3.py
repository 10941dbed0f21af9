"""`virga external-network|router|floating-ip ...`: public addresses (Neutron's L3)."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import click

from virga_cli import errors
from virga_cli.client import Client
from virga_cli.names import pick, resolve
from virga_cli.network import _pool
from virga_cli.output import Cli, Column, pass_cli


def _pools(network: dict[str, Any]) -> list[str]:
    return [f"{p['start']}-{p['end']}" for p in network.get("allocation_pools") or []]


EXTERNAL_COLUMNS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("status", "status"),
    ("cidr", "cidr"),
    ("gateway", "gateway_ip"),
]
EXTERNAL_FIELDS: list[Column] = [
    *EXTERNAL_COLUMNS,
    ("fault", "fault"),
    ("pools", _pools),
    ("host interface", "host_interface"),
    ("created", "created_at"),
]
FLOATING_IP_COLUMNS: list[Column] = [
    ("id", "id"),
    ("ip", "ip"),
    ("status", "status"),
    ("external network", "external_network_id"),
    ("port", "port_id"),
    ("fixed ip", "fixed_ip"),
]
ROUTER_COLUMNS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("status", "status"),
    ("external network", "external_network_id"),
    ("external ip", "external_ip"),
    ("networks", lambda r: [i["network_id"] for i in r.get("interfaces") or []]),
]


@click.group("external-network")
def external_network() -> None:
    """External networks: provider segments public addresses come from (admins make them)."""


@external_network.command("create")
@click.argument("name")
@click.option("--cidr", required=True, help="The segment's subnet, e.g. 203.0.113.0/24.")
@click.option("--gateway", "gateway_ip", required=True, help="The upstream router's address.")
@click.option("--pool", "pools", multiple=True, help="START-END addresses handed out (repeat).")
@click.option(
    "--interface", "host_interface", required=True, help="Each host's interface to it (br-ex)."
)
@pass_cli
def external_network_create(
    cli: Cli, name: str, cidr: str, gateway_ip: str, pools: tuple[str, ...], host_interface: str
) -> None:
    """Create external network NAME (admins)."""
    body: dict[str, Any] = {
        "name": name,
        "cidr": cidr,
        "gateway_ip": gateway_ip,
        "host_interface": host_interface,
    }
    if pools:
        body["allocation_pools"] = [_pool(p) for p in pools]
    created = cli.client().post("/v1/external-networks", body)
    cli.emit(created, lambda n: cli.record(n, EXTERNAL_FIELDS))


@external_network.command("list")
@pass_cli
def external_network_list(cli: Cli) -> None:
    """List external networks."""
    answer = {"items": cli.client().paged("/v1/external-networks")}
    cli.emit(answer, lambda d: cli.table(d["items"], EXTERNAL_COLUMNS))


@external_network.command("show")
@click.argument("network_id")
@pass_cli
def external_network_show(cli: Cli, network_id: str) -> None:
    """Show an external network (by id or name)."""
    client = cli.client()
    network_id = resolve(client, "external network", network_id)
    found = client.get(f"/v1/external-networks/{network_id}")
    cli.emit(found, lambda n: cli.record(n, EXTERNAL_FIELDS))


@external_network.command("delete")
@click.argument("network_id")
@pass_cli
def external_network_delete(cli: Cli, network_id: str) -> None:
    """Delete an external network (by id or name) no floating IP or router uses (admins)."""
    client = cli.client()
    network_id = resolve(client, "external network", network_id)
    answer = client.delete(f"/v1/external-networks/{network_id}")
    cli.emit(answer, lambda n: cli.out.print(f"external network {n['name']} is {n['status']}"))


@click.group("floating-ip")
def floating_ip() -> None:
    """Floating IPs: public addresses pointed at one of your ports."""


def resolve_floating_ip(client: Client, value: str) -> str:
    """A floating IP's id, given its id or its address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return value  # an id: the API answers 404 naming it if there is none
    listed = client.paged("/v1/floating-ips")
    return pick("floating IP", value, lambda: [{**f, "name": f.get("ip")} for f in listed])


@floating_ip.command("create")
@click.option("--external-network", "network_id", required=True, help="Where from (id or name).")
@click.option("--tenant", "tenant_id", help="Admins: the tenant that will own it.")
@pass_cli
def floating_ip_create(cli: Cli, network_id: str, tenant_id: str | None) -> None:
    """Take a public address from an external network."""
    client = cli.client()
    body: dict[str, Any] = {"external_network_id": resolve(client, "external network", network_id)}
    if tenant_id:
        body["tenant_id"] = tenant_id
    created = client.post("/v1/floating-ips", body)
    cli.emit(created, lambda f: cli.record(f, FLOATING_IP_COLUMNS))


@floating_ip.command("list")
@pass_cli
def floating_ip_list(cli: Cli) -> None:
    """List floating IPs."""
    answer = {"items": cli.client().paged("/v1/floating-ips")}
    cli.emit(answer, lambda d: cli.table(d["items"], FLOATING_IP_COLUMNS))


@floating_ip.command("show")
@click.argument("floating_ip_id")
@pass_cli
def floating_ip_show(cli: Cli, floating_ip_id: str) -> None:
    """Show a floating IP (by id or address)."""
    client = cli.client()
    found = client.get(f"/v1/floating-ips/{resolve_floating_ip(client, floating_ip_id)}")
    cli.emit(found, lambda f: cli.record(f, [*FLOATING_IP_COLUMNS, ("fault", "fault")]))


@floating_ip.command("associate")
@click.argument("floating_ip_id")
@click.argument("port_id")
@click.option("--wait", is_flag=True, help="Wait until the port's host NATs it (ACTIVE).")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds --wait waits.")
@pass_cli
def floating_ip_associate(
    cli: Cli, floating_ip_id: str, port_id: str, wait: bool, timeout: float
) -> None:
    """Point a floating IP (id or address) at PORT (id or name; it moves from its former one).

    It is ACTIVE once the port's host has its NAT rules and answers ARP for it; DOWN until then.
    An instance's port: `virga port list --instance NAME`."""
    client = cli.client()
    fip = resolve_floating_ip(client, floating_ip_id)
    port = resolve(client, "port", port_id)
    answer = client.put(f"/v1/floating-ips/{fip}", {"port_id": port})
    if wait:
        answer = _wait_active(client, fip, port, timeout)
    cli.emit(answer, lambda f: cli.record(f, FLOATING_IP_COLUMNS))


def _wait_active(client: Client, fip_id: str, port_id: str, timeout: float) -> Any:
    """The floating IP's view once it is ACTIVE on `port_id`; a refused association (its
    fault, the port not taken) exits FAILED, running out of time TIMEOUT."""
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, Any] = client.get(f"/v1/floating-ips/{fip_id}")
        on_port = found.get("port_id") == port_id
        if on_port and found.get("status") == "ACTIVE":
            return found
        if not on_port and found.get("fault") is not None:
            raise errors.CliFailure(
                f"floating IP {found.get('ip')} was not associated: {found['fault']}",
                errors.FAILED,
            )
        if found.get("status") in ("ERROR", "DELETING", "DELETED"):
            raise errors.CliFailure(
                f"floating IP {found.get('ip')} is {found.get('status')}", errors.FAILED
            )
        if time.monotonic() > deadline:
            raise errors.CliFailure(
                f"floating IP {found.get('ip')} is still {found.get('status')} on port"
                f" {found.get('port_id')} after {timeout:g} s",
                errors.TIMEOUT,
            )
        time.sleep(0.2)


@floating_ip.command("dissociate")
@click.argument("floating_ip_id")
@pass_cli
def floating_ip_dissociate(cli: Cli, floating_ip_id: str) -> None:
    """Point a floating IP (id or address) at no port."""
    client = cli.client()
    fip = resolve_floating_ip(client, floating_ip_id)
    answer = client.put(f"/v1/floating-ips/{fip}", {"port_id": None})
    cli.emit(answer, lambda f: cli.record(f, FLOATING_IP_COLUMNS))


@floating_ip.command("delete")
@click.argument("floating_ip_id")
@pass_cli
def floating_ip_delete(cli: Cli, floating_ip_id: str) -> None:
    """Release a floating IP (id or address): its address goes back to the pool."""
    client = cli.client()
    answer = client.delete(f"/v1/floating-ips/{resolve_floating_ip(client, floating_ip_id)}")
    cli.emit(answer, lambda f: cli.out.print(f"floating IP {f['ip']} is {f['status']}"))


@click.group()
def router() -> None:
    """Routers: your networks' way out (SNAT) through an address on an external network."""


@router.command("create")
@click.argument("name")
@click.option(
    "--external-network", "network_id", required=True, help="Where its address comes from."
)
@click.option("--tenant", "tenant_id", help="Admins: the tenant that will own it.")
@pass_cli
def router_create(cli: Cli, name: str, network_id: str, tenant_id: str | None) -> None:
    """Create router NAME with an address on an external network (id or name)."""
    client = cli.client()
    body: dict[str, Any] = {
        "name": name,
        "external_network_id": resolve(client, "external network", network_id),
    }
    if tenant_id:
        body["tenant_id"] = tenant_id
    created = client.post("/v1/routers", body)
    cli.emit(created, lambda r: cli.record(r, ROUTER_COLUMNS))


@router.command("list")
@pass_cli
def router_list(cli: Cli) -> None:
    """List routers."""
    answer = {"items": cli.client().paged("/v1/routers")}
    cli.emit(answer, lambda d: cli.table(d["items"], ROUTER_COLUMNS))


@router.command("show")
@click.argument("router_id")
@pass_cli
def router_show(cli: Cli, router_id: str) -> None:
    """Show a router (by id or name) and its interfaces."""
    client = cli.client()
    found = client.get(f"/v1/routers/{resolve(client, 'router', router_id)}")
    cli.emit(found, lambda r: cli.record(r, [*ROUTER_COLUMNS, ("fault", "fault")]))


@router.command("delete")
@click.argument("router_id")
@pass_cli
def router_delete(cli: Cli, router_id: str) -> None:
    """Delete a router (by id or name) that has no interfaces left."""
    client = cli.client()
    answer = client.delete(f"/v1/routers/{resolve(client, 'router', router_id)}")
    cli.emit(answer, lambda r: cli.out.print(f"router {r['name']} is {r['status']}"))


@router.command("add-interface")
@click.argument("router_id")
@click.argument("network_id")
@pass_cli
def router_add_interface(cli: Cli, router_id: str, network_id: str) -> None:
    """Attach NETWORK (id or name) to ROUTER (id or name)."""
    client = cli.client()
    path = f"/v1/routers/{resolve(client, 'router', router_id)}/interfaces"
    answer = client.post(path, {"network_id": resolve(client, "network", network_id)})
    cli.emit(answer, lambda r: cli.record(r, ROUTER_COLUMNS))


@router.command("remove-interface")
@click.argument("router_id")
@click.argument("network_id")
@pass_cli
def router_remove_interface(cli: Cli, router_id: str, network_id: str) -> None:
    """Detach NETWORK (id or name) from ROUTER (id or name)."""
    client = cli.client()
    router_id = resolve(client, "router", router_id)
    answer = client.delete(
        f"/v1/routers/{router_id}/interfaces/{resolve(client, 'network', network_id)}"
    )
    cli.emit(answer, lambda r: cli.record(r, ROUTER_COLUMNS))
