"""`virga network|port|security-group ...`: tenant networks, their ports, and filters."""

from __future__ import annotations

from typing import Any

import click

from virga_cli.names import resolve, resolve_all
from virga_cli.output import Cli, Column, pass_cli

NETWORK_COLUMNS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("status", "status"),
    ("cidr", "cidr"),
    ("vni", "vni"),
    ("dhcp", lambda n: "yes" if n.get("dhcp", True) else "no"),
    ("ports", lambda n: len(n.get("ports") or [])),
]
NETWORK_FIELDS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("status", "status"),
    ("fault", "fault"),
    ("tenant", "tenant_id"),
    ("cidr", "cidr"),
    ("gateway", "gateway_ip"),
    ("vxlan id", "vni"),
    ("dhcp", lambda n: "yes" if n.get("dhcp", True) else "no"),
    ("pools", lambda n: [f"{p['start']}-{p['end']}" for p in n.get("allocation_pools") or []]),
    ("ports", "ports"),
    ("created", "created_at"),
]
PORT_COLUMNS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("status", "status"),
    ("network", "network_id"),
    ("mac", "mac"),
    ("ips", "ips"),
    ("instance", "instance_id"),
    ("host", "host"),
    ("floating ips", lambda p: [f["ip"] for f in p.get("floating_ips") or []]),
]
RULE_COLUMNS: list[Column] = [
    ("id", "id"),
    ("direction", "direction"),
    ("ethertype", "ethertype"),
    ("protocol", "protocol"),
    ("ports", lambda r: _ports(r)),
    ("remote", lambda r: r.get("remote_cidr") or r.get("remote_group") or "any"),
]


def _ports(rule: dict[str, Any]) -> str:
    low, high = rule.get("port_min"), rule.get("port_max")
    if low is None:
        return "any"
    return str(low) if high in (None, low) else f"{low}-{high}"


@click.group()
def network() -> None:
    """Tenant networks (one subnet each, a VXLAN segment across hosts)."""


def _pool(value: str) -> dict[str, str]:
    start, sep, end = value.partition("-")
    if not sep or not start or not end:
        raise click.BadParameter(f"{value!r} is not START-END", param_hint="--pool")
    return {"start": start.strip(), "end": end.strip()}


@network.command("create")
@click.argument("name")
@click.option("--cidr", required=True, help="IPv4 or IPv6 subnet, e.g. 10.0.0.0/24.")
@click.option("--pool", "pools", multiple=True, help="START-END addresses handed out (repeat).")
@click.option(
    "--dhcp/--no-dhcp",
    default=True,
    help="Answer the guests' DHCP (default); --no-dhcp: they configure themselves statically"
    " (a config drive).",
)
@click.option("--tenant", "tenant_id", help="Admins: the tenant that will own it.")
@pass_cli
def network_create(
    cli: Cli, name: str, cidr: str, pools: tuple[str, ...], dhcp: bool, tenant_id: str | None
) -> None:
    """Create network NAME with subnet --cidr."""
    body: dict[str, Any] = {"name": name, "cidr": cidr}
    if not dhcp:
        body["dhcp"] = False
    if pools:
        body["allocation_pools"] = [_pool(p) for p in pools]
    if tenant_id:
        body["tenant_id"] = tenant_id
    created = cli.client().post("/v1/networks", body)
    cli.emit(created, lambda n: cli.record(n, NETWORK_FIELDS))


@network.command("list")
@pass_cli
def network_list(cli: Cli) -> None:
    """List networks."""
    answer = {"items": cli.client().paged("/v1/networks")}
    cli.emit(answer, lambda d: cli.table(d["items"], NETWORK_COLUMNS))


@network.command("show")
@click.argument("network_id")
@pass_cli
def network_show(cli: Cli, network_id: str) -> None:
    """Show a network (by id or name)."""
    client = cli.client()
    network_id = resolve(client, "network", network_id)
    found = client.get(f"/v1/networks/{network_id}")
    cli.emit(found, lambda n: cli.record(n, NETWORK_FIELDS))


@network.command("delete")
@click.argument("network_id")
@pass_cli
def network_delete(cli: Cli, network_id: str) -> None:
    """Delete a network (by id or name) that has no ports left."""
    client = cli.client()
    network_id = resolve(client, "network", network_id)
    answer = client.delete(f"/v1/networks/{network_id}")
    cli.emit(answer, lambda n: cli.out.print(f"network {n['name']} is {n['status']}"))


@click.group()
def port() -> None:
    """Ports: a MAC and addresses on a network."""


@port.command("list")
@click.option("--network", "network_id", help="Only this network's ports.")
@click.option("--instance", "instance_id", help="Only this instance's ports.")
@pass_cli
def port_list(cli: Cli, network_id: str | None, instance_id: str | None) -> None:
    """List ports (of one network, of one instance: by id or name)."""
    client = cli.client()
    if network_id is not None:
        network_id = resolve(client, "network", network_id)
    if instance_id is not None:
        instance_id = resolve(client, "instance", instance_id)
    answer = {"items": client.paged("/v1/ports", network_id=network_id, instance_id=instance_id)}
    cli.emit(answer, lambda d: cli.table(d["items"], PORT_COLUMNS))


@port.command("create")
@click.option("--network", "network_id", required=True, help="The network (id or name).")
@click.option("--name", default="", help="A name for it.")
@click.option(
    "--security-group", "groups", multiple=True, help="A security group (id or name; repeat)."
)
@click.option("--tenant", "tenant_id", help="Admins: the tenant that will own it.")
@pass_cli
def port_create(
    cli: Cli, network_id: str, name: str, groups: tuple[str, ...], tenant_id: str | None
) -> None:
    """Create a port on a network (default security group unless --security-group)."""
    client = cli.client()
    network_id = resolve(client, "network", network_id)
    body: dict[str, Any] = {"network_id": network_id}
    if name:
        body["name"] = name
    if groups:
        body["security_groups"] = resolve_all(client, "security group", groups)
    if tenant_id:
        body["tenant_id"] = tenant_id
    created = client.post("/v1/ports", body)
    cli.emit(created, lambda p: cli.record(p, PORT_COLUMNS))


@port.command("show")
@click.argument("port_id")
@pass_cli
def port_show(cli: Cli, port_id: str) -> None:
    """Show a port (by id or name)."""
    client = cli.client()
    found = client.get(f"/v1/ports/{resolve(client, 'port', port_id)}")
    cli.emit(found, lambda p: cli.record(p, [*PORT_COLUMNS, ("fault", "fault")]))


@port.command("set")
@click.argument("port_id")
@click.option(
    "--security-group",
    "groups",
    multiple=True,
    required=True,
    help="The port's security groups from now on (id or name; repeat).",
)
@pass_cli
def port_set(cli: Cli, port_id: str, groups: tuple[str, ...]) -> None:
    """Give a port (by id or name) other security groups; its host applies them at once."""
    client = cli.client()
    body = {"security_groups": resolve_all(client, "security group", groups)}
    changed = client.request("PUT", f"/v1/ports/{resolve(client, 'port', port_id)}", body)
    cli.emit(changed, lambda p: cli.record(p, [*PORT_COLUMNS, ("groups", "security_groups")]))


@port.command("delete")
@click.argument("port_id")
@pass_cli
def port_delete(cli: Cli, port_id: str) -> None:
    """Delete a port (by id or name; an instance's port goes with its instance)."""
    client = cli.client()
    answer = client.delete(f"/v1/ports/{resolve(client, 'port', port_id)}")
    cli.emit(answer, lambda p: cli.out.print(f"port {p['id']} is {p['status']}"))


RULE_KEYS = {"direction", "ethertype", "protocol", "port", "port_min", "port_max"}
RULE_KEYS |= {"remote_cidr", "remote_group"}


def parse_rule(spec: str) -> dict[str, Any]:
    """`direction=ingress,protocol=tcp,port=22,remote_cidr=0.0.0.0/0` as an API rule;
    `port=1000-2000` is a range."""
    rule: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in RULE_KEYS:
            raise click.BadParameter(
                f"{part!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(RULE_KEYS))}",
                param_hint="--rule",
            )
        if key in ("port", "port_min", "port_max"):
            low, _, high = value.partition("-")
            try:
                numbers = [int(low)] + ([int(high)] if high else [])
            except ValueError:
                raise click.BadParameter(
                    f"{part!r}: not a port number", param_hint="--rule"
                ) from None
            if key == "port":
                rule["port_min"], rule["port_max"] = numbers[0], numbers[-1]
            else:
                rule[key] = numbers[0]
        else:
            rule[key] = value
    if "direction" not in rule:
        raise click.BadParameter(
            f"{spec!r}: direction=ingress|egress is required", param_hint="--rule"
        )
    return rule


@click.group("security-group")
def security_group() -> None:
    """Security groups: allow rules for the ports that carry them."""


@security_group.command("create")
@click.argument("name")
@click.option(
    "--rule",
    "rules",
    multiple=True,
    help="direction=ingress|egress[,protocol=tcp|udp|icmp|icmpv6|any][,port=N[-M]]"
    "[,ethertype=IPv4|IPv6][,remote_cidr=CIDR|remote_group=ID] (repeat).",
)
@click.option("--tenant", "tenant_id", help="Admins: the tenant that will own it.")
@pass_cli
def security_group_create(
    cli: Cli, name: str, rules: tuple[str, ...], tenant_id: str | None
) -> None:
    """Create security group NAME; what no rule allows is dropped."""
    body: dict[str, Any] = {"name": name, "rules": [parse_rule(r) for r in rules]}
    if tenant_id:
        body["tenant_id"] = tenant_id
    created = cli.client().post("/v1/security-groups", body)
    cli.emit(created, lambda g: _show_group(cli, g))


def _show_group(cli: Cli, group: dict[str, Any]) -> None:
    cli.record(group, [("id", "id"), ("name", "name"), ("default", "default")])
    cli.table(group.get("rules") or [], RULE_COLUMNS)


@security_group.command("list")
@pass_cli
def security_group_list(cli: Cli) -> None:
    """List security groups."""
    answer = {"items": cli.client().paged("/v1/security-groups")}
    columns: list[Column] = [
        ("id", "id"),
        ("name", "name"),
        ("default", "default"),
        ("rules", lambda g: len(g.get("rules") or [])),
    ]
    cli.emit(answer, lambda d: cli.table(d["items"], columns))


@security_group.command("show")
@click.argument("group_id")
@pass_cli
def security_group_show(cli: Cli, group_id: str) -> None:
    """Show a security group (by id or name) and its rules."""
    client = cli.client()
    found = client.get(f"/v1/security-groups/{resolve(client, 'security group', group_id)}")
    cli.emit(found, lambda g: _show_group(cli, g))


@security_group.command("delete")
@click.argument("group_id")
@pass_cli
def security_group_delete(cli: Cli, group_id: str) -> None:
    """Delete a security group (by id or name) no port uses."""
    client = cli.client()
    group_id = resolve(client, "security group", group_id)
    client.delete(f"/v1/security-groups/{group_id}")
    cli.emit({"id": group_id, "deleted": True}, lambda _: cli.out.print(f"deleted {group_id}"))


@security_group.command("rule-add")
@click.argument("group_id")
@click.option(
    "--direction", type=click.Choice(["ingress", "egress"]), default="ingress", show_default=True
)
@click.option(
    "--protocol", type=click.Choice(["any", "tcp", "udp", "icmp", "icmpv6"]), default="any",
    show_default=True,
)  # fmt: skip
@click.option("--port", "ports", help="A destination port N or range N-M (tcp, udp).")
@click.option("--ethertype", type=click.Choice(["IPv4", "IPv6"]), help="Default: IPv4.")
@click.option("--remote-cidr", help="Peers' addresses (default: any peer).")
@click.option("--remote-group", help="Peers are the ports of this security group (id or name).")
@pass_cli
def security_group_rule_add(
    cli: Cli,
    group_id: str,
    direction: str,
    protocol: str,
    ports: str | None,
    ethertype: str | None,
    remote_cidr: str | None,
    remote_group: str | None,
) -> None:
    """Add a rule to a security group (by id or name); its ports apply it within seconds."""
    spec = [f"direction={direction}", f"protocol={protocol}"]
    spec += [f"{key}={value}" for key, value in (("port", ports), ("ethertype", ethertype),
             ("remote_cidr", remote_cidr)) if value is not None]  # fmt: skip
    rule = parse_rule(",".join(spec))
    client = cli.client()
    if remote_group is not None:
        rule["remote_group"] = resolve(client, "security group", remote_group)
    group_id = resolve(client, "security group", group_id)
    added = client.post(f"/v1/security-groups/{group_id}/rules", rule)
    cli.emit(added, lambda r: cli.table([r], RULE_COLUMNS))


@security_group.command("rule-delete")
@click.argument("group_id")
@click.argument("rule_id")
@pass_cli
def security_group_rule_delete(cli: Cli, group_id: str, rule_id: str) -> None:
    """Delete rule RULE_ID (`virga security-group show`) of a security group (by id or name)."""
    client = cli.client()
    group_id = resolve(client, "security group", group_id)
    client.delete(f"/v1/security-groups/{group_id}/rules/{rule_id}")
    answer = {"id": rule_id, "security_group": group_id, "deleted": True}
    cli.emit(answer, lambda _: cli.out.print(f"deleted rule {rule_id} of {group_id}"))
