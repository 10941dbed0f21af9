"""The web console's files at `/`: its safe headers, its assets by name only, and the typed
client of web/src/api.ts checked against the OpenAPI document."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import msgspec
from aiohttp.test_utils import TestClient, TestServer
from tests.unit.gateway.app import CONFIG

from virga_eventlog import KafkaSettings
from virga_gateway.app import build_app
from virga_gateway.openapi import openapi_document
from virga_gateway.routes import ROUTES
from virga_gateway.service import gateway_runner

WEB_SRC = Path(__file__).resolve().parents[3] / "web" / "src"
API_CLIENT = WEB_SRC / "api.ts"
NET_CLIENT = WEB_SRC / "netapi.ts"
"""The network, keypair and image routes' client (the lazily loaded pages')."""
ADMIN_CLIENT = WEB_SRC / "adminapi.ts"
"""The admin pages' client: tenants, tokens, quotas, prices."""


def built(root: Path) -> Path:
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text('<script type="module" src="/assets/index-ab12.js">')
    (root / "assets" / "index-ab12.js").write_text("console.log(1)")
    (root / "secret.txt").write_text("not served")
    return root


async def test_index_and_assets_are_served_with_safe_headers(tmp_path: Path) -> None:
    config = dataclasses.replace(CONFIG, web_root=built(tmp_path / "dist"))
    app = build_app(gateway_runner(config, KafkaSettings(bootstrap_servers="127.0.0.1:1")), config)
    async with TestClient(TestServer(app)) as client:
        page = await client.get("/")
        assert page.status == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert page.headers["Cache-Control"] == "no-store"
        csp = page.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        script = await client.get("/assets/index-ab12.js")
        assert script.status == 200
        assert script.headers["Content-Type"].startswith("text/javascript")
        assert "immutable" in script.headers["Cache-Control"]
        for path in ("/assets/..%2Fsecret.txt", "/assets/.hidden.js", "/assets/missing.js",
                     "/secret.txt", "/assets/index-ab12.txt"):  # fmt: skip
            assert (await client.get(path)).status == 404, path


async def test_without_a_build_the_root_says_so(tmp_path: Path) -> None:
    config = dataclasses.replace(CONFIG, web_root=tmp_path / "absent")
    app = build_app(gateway_runner(config, KafkaSettings(bootstrap_servers="127.0.0.1:1")), config)
    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/")
        assert answer.status == 404
        assert "not built" in (await answer.json())["detail"]


def test_the_web_client_calls_only_documented_operations() -> None:
    document = msgspec.json.decode(msgspec.json.encode(openapi_document(ROUTES)))
    paths: dict[str, dict[str, object]] = document["paths"]
    source = API_CLIENT.read_text() + NET_CLIENT.read_text() + ADMIN_CLIENT.read_text()
    called = re.findall(r'"(GET|POST|DELETE|PUT|PATCH)", `?"?(/v1/[^`"?]*)', source)
    called += [("GET", p) for p in re.findall(r'this\.fetcher\("(/v1/[^"]+)"', source)]
    assert len(called) >= 40, called
    # Parameters compare by place, not by name: `/v1/hosts/{name}` is called with any variable.
    shapes = {re.sub(r"\{\w+\}", "{}", path): path for path in paths}
    for method, raw in called:
        shape = re.sub(r"\$\{(encodeURIComponent|id)\(\w+\)\}", "{}", raw).replace("${query}", "")
        shape = re.sub(r"\$\{query\(.*$", "", shape)  # netapi's `${query(cursor, ...)}`
        assert shape in shapes, raw
        assert method.lower() in paths[shapes[shape]], (method, raw)
    schemas = document["components"]["schemas"]
    for interface, schema in (
        ("Instance", "InstanceView"), ("Volume", "VolumeView"), ("Host", "HostView"),
        ("VolumeSnapshot", "VolumeSnapshotView"),
        ("Usage", "UsageView"), ("Invoice", "InvoiceView"), ("ChargeLine", "InvoiceLine"),
        ("Network", "NetworkView"), ("Pool", "PoolView"), ("Port", "PortView"),
        ("FloatingIpRef", "FloatingIpRef"), ("SecurityGroup", "SecurityGroupView"),
        ("RuleBody", "RuleBody"), ("Rule", "RuleView"), ("KeypairView", "KeypairView"),
        ("ExternalNetwork", "ExternalNetworkView"), ("RouterInterface", "RouterInterfaceView"),
        ("Router", "RouterView"), ("FloatingIp", "FloatingIpView"), ("Image", "ImageView"),
        ("Tenant", "TenantView"), ("IssuedToken", "IssuedToken"), ("QuotaView", "QuotaView"),
        ("PricesView", "PricesView"), ("PriceCatalogue", "PriceCatalogue"),
    ):  # fmt: skip
        properties = schemas[schema]["properties"]
        head = rf"export interface {interface}(?: extends \w+)? "
        block = re.search(head + r"\{(.*?)\n\}", source, re.S)
        assert block is not None, interface
        for field in re.findall(r"^\s+(\w+)\??:", block.group(1), re.M):
            assert field in properties, (interface, field)
