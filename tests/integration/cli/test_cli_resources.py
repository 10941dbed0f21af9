"""The `virga` CLI against a real stack: images, volumes, networks, ports, security groups, prices.

Storage runs with its in-process driver here (Ceph is exercised by the storage tests); what is
under test is that each command reaches its route with the body the API accepts.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from tests.support.stack import HostSpec, Stack

from virga_cli import errors
from virga_cli.main import cli

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(kafka_bootstrap, tmp_path_factory.mktemp("stack"), (HostSpec("cli-2", "r1"),))
    with stack.running():
        yield stack


@pytest.fixture(scope="module")
def tenant_token(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> str:
    home = tmp_path_factory.mktemp("admin")
    made = virga(stack, home, "tenant", "create", f"res-{uuid.uuid4().hex[:6]}", stack.admin_token)
    assert made.exit_code == 0, made.output
    issued = virga(stack, home, "token", "create", made.stdout.strip(), stack.admin_token)
    assert issued.exit_code == 0, issued.output
    return issued.stdout.strip()


def virga(stack: Stack, home: Path, *args: str) -> Result:
    """`virga ARGS[:-1]` with the token ARGS[-1]."""
    env = {
        "XDG_CONFIG_HOME": str(home),
        "VIRGA_API_URL": stack.gateway_url,
        "VIRGA_TOKEN": args[-1],
    }
    return CliRunner().invoke(cli, list(args[:-1]), env=env)


def settle(read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> Any:
    deadline = time.monotonic() + 30
    while not done(view := read()):
        assert time.monotonic() < deadline, f"never settled: {view}"
        time.sleep(0.2)
    return view


def test_images_and_volumes(stack: Stack, tenant_token: str, tmp_path: Path) -> None:
    def run(*args: str) -> Result:
        return virga(stack, tmp_path, *args, tenant_token)

    def as_json(*args: str) -> Any:
        result = run("--json", *args)
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout)

    disk = tmp_path / "tiny.raw"
    disk.write_bytes(bytes(range(256)) * 8192)  # 2 MiB
    image = as_json("image", "upload", str(disk), "--name", "tiny")
    assert image["status"] == "available"
    assert image["sha256"] == hashlib.sha256(disk.read_bytes()).hexdigest()
    assert image["id"] in run("image", "list").stdout

    # The image by its name: the CLI finds its id.
    volume = as_json("volume", "create", "data", "--size", "1", "--image", "tiny")
    volume = settle(
        lambda: as_json("volume", "show", volume["id"]), lambda v: v["status"] == "available"
    )
    assert volume["parent"] == f"image:{image['id']}"

    assert run("volume", "extend", volume["id"], "--size", "2").exit_code == 0
    settle(lambda: as_json("volume", "show", volume["id"]), lambda v: v["size_gb"] == 2)
    shrink = run("volume", "extend", volume["id"], "--size", "1")
    assert shrink.exit_code == errors.API_ERROR
    assert "field size_gb" in shrink.stderr

    snapshot = as_json("volume", "snapshot", volume["id"], "--name", "before")
    assert snapshot["name"] == "before"
    in_use = run("image", "delete", image["id"])
    assert in_use.exit_code == errors.API_ERROR
    assert "HTTP 409" in in_use.stderr
    settle(
        lambda: as_json("volume", "show", volume["id"]),
        lambda v: [s["status"] for s in v["snapshots"]] == ["available"],
    )
    gone = as_json("volume", "snapshot-delete", volume["id"], snapshot["id"])
    assert gone["status"] == "deleting"
    settle(lambda: as_json("volume", "show", volume["id"]), lambda v: v["snapshots"] == [])

    assert run("volume", "delete", volume["id"]).exit_code == 0
    listed = settle(
        lambda: as_json("volume", "list"),
        lambda page: all(
            v["id"] != volume["id"] or v["status"] == "deleted" for v in page["items"]
        ),
    )
    assert isinstance(listed["items"], list)


def test_networks_ports_security_groups_and_prices(
    stack: Stack, tenant_token: str, tmp_path: Path
) -> None:
    def run(*args: str, token: str = tenant_token) -> Result:
        return virga(stack, tmp_path, *args, token)

    def as_json(*args: str, token: str = tenant_token) -> Any:
        result = run("--json", *args, token=token)
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout)

    bad = run("network", "create", "lan", "--cidr", "10.0.0.300/24")
    assert bad.exit_code == errors.API_ERROR
    assert "field cidr" in bad.stderr
    # What is not a subnet is said in words, not as a string length.
    nonsense = run("network", "create", "lan", "--cidr", "nonsense")
    assert nonsense.exit_code == errors.API_ERROR
    assert "field cidr: 'nonsense' is not a CIDR (address/prefix length)" in nonsense.stderr

    network = as_json(
        "network", "create", "lan", "--cidr", "10.9.0.0/24", "--pool", "10.9.0.10-10.9.0.20"
    )
    network = settle(
        lambda: as_json("network", "show", network["id"]), lambda n: n["status"] == "ACTIVE"
    )
    assert network["allocation_pools"] == [{"start": "10.9.0.10", "end": "10.9.0.20"}]

    group = as_json(
        "security-group", "create", "ssh",
        "--rule", "direction=ingress,protocol=tcp,port=22,remote_cidr=0.0.0.0/0",
    )  # fmt: skip
    assert group["rules"][0]["port_min"] == 22
    port = as_json("port", "create", "--network", network["id"], "--security-group", group["id"])
    port = settle(lambda: as_json("port", "show", port["id"]), lambda p: bool(p["ips"]))
    assert port["ips"][0].startswith("10.9.0.")
    assert port["id"] in run("port", "list", "--network", network["id"]).stdout

    # Every resource argument takes a name too, and --json goes after the command as well.
    named = run("port", "create", "--network", "lan", "--security-group", "ssh", "--name", "p2")
    assert named.exit_code == 0, named.output
    by_name = run("port", "list", "--network", "lan", "--json")
    assert by_name.exit_code == 0, by_name.output
    listed_ports = orjson.loads(by_name.stdout)["items"]
    assert {p["id"] for p in listed_ports} >= {port["id"]}
    assert {p["name"] for p in listed_ports} == {"", "p2"}
    assert as_json("security-group", "show", "ssh")["id"] == group["id"]
    assert as_json("port", "show", "p2")["security_groups"] == [group["id"]]
    assert run("port", "delete", "p2").exit_code == 0
    nowhere = run("port", "list", "--network", "nowhere")
    assert nowhere.exit_code == errors.API_ERROR
    assert "no network has the id or name 'nowhere'" in nowhere.stderr

    # Server groups: created, listed, shown and deleted by name.
    spread = as_json("server-group", "create", "spread", "--policy", "anti-affinity")
    assert (spread["policy"], spread["scope"], spread["members"]) == ("anti-affinity", "host", [])
    assert "spread" in run("server-group", "list").stdout
    assert as_json("server-group", "show", "spread")["id"] == spread["id"]
    assert run("server-group", "delete", "spread").exit_code == 0
    gone = run("server-group", "show", spread["id"])
    assert gone.exit_code == errors.API_ERROR
    assert "HTTP 404" in gone.stderr

    busy = run("network", "delete", network["id"])
    assert busy.exit_code == errors.API_ERROR
    assert "HTTP 409" in busy.stderr
    assert run("port", "delete", port["id"]).exit_code == 0
    settle(lambda: as_json("port", "list"), lambda page: not page["items"])
    assert run("security-group", "delete", group["id"]).exit_code == 0

    admin = stack.admin_token
    this_hour = datetime.now(UTC).strftime("%Y-%m-%dT%H:00:00Z")
    prices = (
        "price", "set", "--currency", "EUR", "--flavor", "m1.tiny=0.01",
        "--effective-from", this_hour,
        "--volume-gb-month", "0.05", "--egress-gb", "0.02", "--public-ip-hour", "0.004",
    )  # fmt: skip
    # Before any price: no currency, and no "total: 0.00 " with an empty one.
    unpriced = run("usage")
    assert unpriced.exit_code == 0, unpriced.output
    assert as_json("usage")["currency"] is None
    assert "total: nothing to pay: no prices were in effect" in unpriced.stdout
    refused = run(*prices)
    assert refused.exit_code == errors.AUTH
    assert run(*prices, token=admin).exit_code == 0
    shown = as_json("price", "show")
    assert shown["in_effect"]["flavor_hour"] == {"m1.tiny": "0.01"}
    assert "EUR" in run("price", "show").stdout
    assert as_json("usage")["currency"] == "EUR"
    assert as_json("invoice", "list") == {"items": []}

    # The same catalogue again is kept once; one for the next hour shows as pending at once.
    assert run(*prices, token=admin).exit_code == 0
    assert len(as_json("price", "show")["history"]) == 1
    # Without --effective-from: from the next whole hour.
    later = [arg for arg in prices if arg not in ("--effective-from", this_hour)]
    later[later.index("m1.tiny=0.01")] = "m1.tiny=0.02"
    assert run(*later, token=admin).exit_code == 0, later
    pending = run("price", "show")
    assert "pending, from" in pending.stdout
    assert as_json("price", "show")["pending"][0]["flavor_hour"] == {"m1.tiny": "0.02"}

    # Usage already accrued under this hour's prices (a volume's) is never re-priced: a
    # catalogue from this hour again, with other prices, is refused.
    billed = as_json("volume", "create", "billed", "--size", "1")
    settle(lambda: as_json("volume", "show", billed["id"]), lambda v: v["status"] == "available")
    repricing = [*prices]
    repricing[repricing.index("m1.tiny=0.01")] = "m1.tiny=0.03"
    again = run(*repricing, token=admin)
    assert again.exit_code == errors.API_ERROR
    assert "field effective_from: would re-price usage already accrued" in again.stderr
    assert run("volume", "delete", "billed").exit_code == 0


def test_a_refused_upload_is_a_problem_naming_the_field_and_leaves_nothing(
    stack: Stack, tenant_token: str, tmp_path: Path
) -> None:
    def run(*args: str, token: str = tenant_token) -> Result:
        return virga(stack, tmp_path, *args, token)

    disk = tmp_path / "plain.raw"
    disk.write_bytes(b"\x00not a qcow2 image" * 4096)
    refused = run("image", "upload", str(disk), "--name", "mislabelled", "--format", "qcow2")
    assert refused.exit_code == errors.API_ERROR, refused.output
    assert "HTTP 422" in refused.stderr
    assert "field body: " in refused.stderr
    assert "/" not in refused.stderr.split("HTTP 422", 1)[1].split("(request")[0], refused.stderr
    assert str(stack.run_dir) not in refused.stderr
    listed = run("--json", "image", "list")
    assert "mislabelled" not in listed.stdout, listed.stdout

    # A tenant's public upload is refused before a byte of the file is sent.
    public = run("image", "upload", str(disk), "--name", "mine", "--public")
    assert public.exit_code == errors.AUTH, public.output
    assert "only administrators" in public.stderr
    assert "plain.raw" not in public.stderr  # no progress bar: nothing was streamed


def test_security_group_rules_and_a_ports_groups(
    stack: Stack, tenant_token: str, tmp_path: Path
) -> None:
    def run(*args: str) -> Result:
        return virga(stack, tmp_path, *args, tenant_token)

    def as_json(*args: str) -> Any:
        result = run("--json", *args)
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout)

    group = as_json("security-group", "create", "public-web")
    rule = as_json(
        "security-group", "rule-add", "public-web", "--protocol", "tcp", "--port", "80",
        "--remote-cidr", "0.0.0.0/0",
    )  # fmt: skip
    assert (rule["direction"], rule["port_min"], rule["remote_cidr"]) == (
        "ingress",
        80,
        "0.0.0.0/0",
    )
    assert rule["id"] in run("security-group", "show", "public-web").stdout
    repeated = run("security-group", "rule-add", group["id"], "--protocol", "tcp", "--port", "80",
                   "--remote-cidr", "0.0.0.0/0")  # fmt: skip
    assert repeated.exit_code == errors.API_ERROR
    assert "HTTP 409" in repeated.stderr

    network = as_json("network", "create", "lan-sg", "--cidr", "10.8.0.0/24")
    settle(lambda: as_json("network", "show", network["id"]), lambda n: n["status"] == "ACTIVE")
    port = as_json("port", "create", "--network", "lan-sg")
    changed = as_json("port", "set", port["id"], "--security-group", "public-web")
    assert changed["security_groups"] == [group["id"]]
    assert as_json("port", "show", port["id"])["security_groups"] == [group["id"]]

    assert run("security-group", "rule-delete", "public-web", rule["id"]).exit_code == 0
    assert as_json("security-group", "show", "public-web")["rules"] == []
    gone = run("security-group", "rule-delete", "public-web", rule["id"])
    assert gone.exit_code == errors.API_ERROR
    assert "HTTP 404" in gone.stderr
    assert run("port", "delete", port["id"]).exit_code == 0
    settle(lambda: {"gone": run("port", "show", port["id"]).exit_code != 0}, lambda v: v["gone"])
    assert run("security-group", "delete", "public-web").exit_code == 0
    assert run("network", "delete", "lan-sg").exit_code == 0


def test_external_networks_floating_ips_and_routers(
    stack: Stack, tenant_token: str, tmp_path: Path
) -> None:
    def run(*args: str, token: str = tenant_token) -> Result:
        return virga(stack, tmp_path, *args, token)

    def as_json(*args: str, token: str = tenant_token) -> Any:
        result = run("--json", *args, token=token)
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout)

    admin = stack.admin_token
    name = f"public-{uuid.uuid4().hex[:6]}"
    made = (
        "external-network", "create", name, "--cidr", "192.0.2.0/24", "--gateway", "192.0.2.1",
        "--pool", "192.0.2.10-192.0.2.19", "--interface", "br-ex",
    )  # fmt: skip
    refused = run(*made)
    assert refused.exit_code == errors.AUTH
    external = as_json(*made, token=admin)
    settle(lambda: as_json("external-network", "show", name), lambda n: n["status"] == "ACTIVE")
    assert name in run("external-network", "list").stdout

    network = as_json("network", "create", "l3-lan", "--cidr", "10.19.0.0/24")
    settle(lambda: as_json("network", "show", network["id"]), lambda n: n["status"] == "ACTIVE")
    port = as_json("port", "create", "--network", "l3-lan", "--name", "l3-port")
    settle(lambda: as_json("port", "show", port["id"]), lambda p: bool(p["ips"]))

    fip = as_json("floating-ip", "create", "--external-network", name)
    fip = settle(lambda: as_json("floating-ip", "show", fip["id"]), lambda f: f["ip"] is not None)
    assert fip["ip"].startswith("192.0.2.1")
    unrouted = run("floating-ip", "associate", fip["ip"], "l3-port")
    assert unrouted.exit_code == errors.API_ERROR
    assert "has no router on external network" in unrouted.stderr

    router = as_json("router", "create", "edge", "--external-network", name)
    settle(lambda: as_json("router", "show", "edge"), lambda r: r["status"] == "ACTIVE")
    assert run("router", "add-interface", "edge", "l3-lan").exit_code == 0
    settle(
        lambda: as_json("router", "show", "edge"),
        lambda r: [i["status"] for i in r["interfaces"]] == ["ACTIVE"],
    )
    # The port is on no host: no agent plumbs it, --wait gives up (it stays DOWN).
    waited = run("floating-ip", "associate", fip["ip"], "l3-port", "--wait", "--timeout", "1")
    assert waited.exit_code == errors.TIMEOUT, waited.output
    assert "still DOWN" in waited.stderr
    associated = run("floating-ip", "associate", fip["ip"], "l3-port")
    assert associated.exit_code == 0, associated.output
    settle(lambda: as_json("port", "show", "l3-port"), lambda p: bool(p["floating_ips"]))
    assert fip["ip"] in run("port", "show", "l3-port").stdout
    behind = run("router", "remove-interface", "edge", "l3-lan")
    assert behind.exit_code == errors.API_ERROR
    assert "HTTP 409" in behind.stderr
    assert fip["id"] in behind.stderr
    assert run("floating-ip", "dissociate", fip["ip"]).exit_code == 0
    settle(lambda: as_json("floating-ip", "show", fip["id"]), lambda f: f["port_id"] is None)
    assert run("router", "remove-interface", "edge", "l3-lan").exit_code == 0
    settle(lambda: as_json("router", "show", "edge"), lambda r: r["interfaces"] == [])
    assert run("router", "delete", "edge").exit_code == 0
    assert run("floating-ip", "delete", fip["id"]).exit_code == 0
    settle(lambda: as_json("floating-ip", "list"), lambda page: not page["items"])
    settle(lambda: as_json("router", "list"), lambda page: not page["items"])
    assert router["id"] not in run("router", "list").stdout
    assert run("port", "delete", "l3-port").exit_code == 0
    assert run("external-network", "delete", external["id"], token=admin).exit_code == 0
