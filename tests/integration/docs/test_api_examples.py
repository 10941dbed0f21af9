"""Every `curl` example of docs/api.md, run as written (by bash, with curl) against a real
stack, answers the status its comment gives: a page that drifts from the API fails here.

Ids are shell variables in the page (`$INSTANCE`, `$VOLUME`...); each is bound to a live
resource of that kind, made anew once an example deleted the one it named.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.docs.examples import Example, examples
from tests.support.qcow2 import qemu_img_create
from tests.support.stack import HostSpec, Stack

from virga_cli.client import Client

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

PAGE = Path(__file__).resolve().parents[3] / "docs" / "api.md"
HOST = "docs-1"


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(kafka_bootstrap, tmp_path_factory.mktemp("stack"), (HostSpec(HOST, "r1"),))
    with stack.running():
        yield stack


def settle(read: Callable[[], Any], done: Callable[[Any], bool], seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while not done(view := read()):
        assert time.monotonic() < deadline, f"never settled: {view}"
        time.sleep(0.2)
    return view


class Ids:
    """A live resource for each id variable of the page, made when first needed."""

    def __init__(self, stack: Stack, admin: Client, tenant: Client, work: Path) -> None:
        self.stack, self.admin, self.tenant, self.work = stack, admin, tenant, work
        self.bound: dict[str, str] = {"HOST": HOST}

    def env(self, command: str) -> dict[str, str]:
        for name in list(self.MAKERS):
            if f"${name}" in command and name not in self.bound:
                self.bound[name] = self.MAKERS[name](self)
        return dict(self.bound)

    def forget(self, name: str) -> None:
        self.bound.pop(name, None)
        if name == "VOLUME":
            self.bound.pop("SNAPSHOT", None)

    def _tenant(self) -> str:
        made = self.admin.post("/v1/tenants", {"name": f"docs-{uuid.uuid4().hex[:6]}"})
        return str(made["id"])

    def _token_id(self) -> str:
        tenant = self.bound.get("TENANT") or self.env("$TENANT")["TENANT"]
        return str(self.admin.post(f"/v1/tenants/{tenant}/tokens", {})["id"])

    def _image(self) -> str:
        raw = self.work / "seed.raw"
        raw.write_bytes(bytes(range(256)) * 4096)
        image = self.tenant.request(
            "POST", "/v1/images", query={"name": "seed"}, data=raw.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )  # fmt: skip
        return str(image["id"])

    def _network(self) -> str:
        made = self.tenant.post("/v1/networks", {"name": "seed", "cidr": "10.42.0.0/24"})
        path = f"/v1/networks/{made['id']}"
        settle(lambda: self.tenant.get(path), lambda n: n["status"] == "ACTIVE")
        return str(made["id"])

    def _instance(self) -> str:
        made = self.tenant.post("/v1/instances", {"name": "seed", "flavor": "m1.tiny"})
        path = f"/v1/instances/{made['id']}"
        settle(lambda: self.tenant.get(path), lambda i: i["status"] == "RUNNING")
        return str(made["id"])

    def _volume(self) -> str:
        made = self.tenant.post("/v1/volumes", {"name": "seed", "size_gb": 1})
        path = f"/v1/volumes/{made['id']}"
        settle(lambda: self.tenant.get(path), lambda v: v["status"] == "available")
        return str(made["id"])

    def _snapshot(self) -> str:
        volume = self.bound.get("VOLUME") or self.env("$VOLUME")["VOLUME"]
        made = self.tenant.post(f"/v1/volumes/{volume}/snapshots", {"name": "seed"})
        path = f"/v1/volumes/{volume}"
        settle(
            lambda: self.tenant.get(path),
            lambda v: (
                [s["status"] for s in v["snapshots"] if s["id"] == made["id"]] == ["available"]
            ),
        )
        return str(made["id"])

    def _port(self) -> str:
        network = self.bound.get("NETWORK") or self.env("$NETWORK")["NETWORK"]
        return str(self.tenant.post("/v1/ports", {"network_id": network})["id"])

    def _group(self) -> str:
        made = self.tenant.post("/v1/server-groups", {"name": "seed", "policy": "affinity"})
        return str(made["id"])

    def _security_group(self) -> str:
        return str(self.tenant.post("/v1/security-groups", {"name": "seed"})["id"])

    def _rule(self) -> str:
        group = self.bound.get("SECURITY_GROUP") or self.env("$SECURITY_GROUP")["SECURITY_GROUP"]
        rule = {"direction": "ingress", "protocol": "udp", "port_min": 53}
        return str(self.tenant.post(f"/v1/security-groups/{group}/rules", rule)["id"])

    def _external_network(self) -> str:
        body = {
            "name": "seed",
            "cidr": "198.51.100.0/24",
            "gateway_ip": "198.51.100.1",
            "host_interface": "br-ex",
        }
        made = self.admin.post("/v1/external-networks", body)
        path = f"/v1/external-networks/{made['id']}"
        settle(lambda: self.admin.get(path), lambda n: n["status"] == "ACTIVE")
        return str(made["id"])

    def _floating_ip(self) -> str:
        external = (
            self.bound.get("EXTERNAL_NETWORK") or self.env("$EXTERNAL_NETWORK")["EXTERNAL_NETWORK"]
        )
        made = self.tenant.post("/v1/floating-ips", {"external_network_id": external})
        path = f"/v1/floating-ips/{made['id']}"
        settle(lambda: self.tenant.get(path), lambda f: f["status"] == "DOWN")
        return str(made["id"])

    def _router(self) -> str:
        external = (
            self.bound.get("EXTERNAL_NETWORK") or self.env("$EXTERNAL_NETWORK")["EXTERNAL_NETWORK"]
        )
        made = self.tenant.post("/v1/routers", {"name": "seed", "external_network_id": external})
        path = f"/v1/routers/{made['id']}"
        settle(lambda: self.tenant.get(path), lambda r: r["status"] == "ACTIVE")
        return str(made["id"])

    MAKERS: dict[str, Callable[[Ids], str]] = {
        "TENANT": _tenant,
        "TOKEN_ID": _token_id,
        "IMAGE": _image,
        "NETWORK": _network,
        "INSTANCE": _instance,
        "VOLUME": _volume,
        "SNAPSHOT": _snapshot,
        "PORT": _port,
        "GROUP": _group,
        "SECURITY_GROUP": _security_group,
        "RULE": _rule,
        "EXTERNAL_NETWORK": _external_network,
        "FLOATING_IP": _floating_ip,
        "ROUTER": _router,
    }


CURL = """curl() { command curl -s -o "$BODY" -w '%{http_code}' "$@"; }\n"""


def test_the_page_has_examples_of_every_resource() -> None:
    commands = "\n".join(e.command for e in examples(PAGE))
    routes = ["/v1/instances", "/v1/volumes", "/v1/images", "/v1/networks", "/v1/ports"]
    routes += ["/v1/security-groups", "/v1/server-groups", "/v1/prices", "/v1/tenants"]
    routes += ["/v1/keypairs", "/v1/external-networks", "/v1/floating-ips", "/v1/routers"]
    for route in routes:
        assert route in commands, route


def test_every_example_of_the_api_page_answers_as_documented(stack: Stack, tmp_path: Path) -> None:
    admin = Client(stack.gateway_url, stack.admin_token)
    tenant_id = admin.post("/v1/tenants", {"name": f"docs-{uuid.uuid4().hex[:6]}"})["id"]
    token = admin.post(f"/v1/tenants/{tenant_id}/tokens", {})["token"]
    ids = Ids(stack, admin, Client(stack.gateway_url, token), tmp_path)
    qemu_img_create(tmp_path / "debian-12.qcow2", "4M")
    body = tmp_path / "body"
    wrong: list[str] = []
    ran: list[Example] = []
    for example in examples(PAGE):
        env = {
            **os.environ,
            "API": stack.gateway_url,
            "ADMIN": stack.admin_token,
            "TOKEN": token,
            "BODY": str(body),
            **ids.env(example.command),
        }
        done = subprocess.run(
            ["bash", "-c", CURL + example.command],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        ran.append(example)
        status = int(done.stdout.strip() or 0)
        if not example.accepts(status):
            answer = body.read_text(errors="replace")[:300] if body.exists() else done.stderr
            wrong.append(f"{example.command}\n  -> {status} {answer}\n")
        if example.command.lstrip().startswith("curl -X DELETE"):
            [url] = [word for word in example.command.split() if "$API" in word]
            target = url.strip('"').split("?")[0].rsplit("/", 1)[-1]
            if target.startswith("$"):
                ids.forget(target[1:])
    assert len(ran) > 40
    assert not wrong, "\n".join(wrong)
