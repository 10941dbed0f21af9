"""schemathesis against the gateway's own OpenAPI document, on a real gateway process.

Every operation, as an admin and as a tenant, with data that fits the document (positive)
and data that does not (negative): no 5xx, no status, content type, header or body the
document does not declare, and every body the document forbids is refused with a 4xx.
A bounded, derandomized number of examples per operation keeps it within its CI budget.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks
from tests.integration.hostile.cloud import PUBLIC_KEY
from tests.support.ports import free_port

from virga_devstack.processes import ServiceProcess
from virga_events.catalog.network import security_group_rule_id

pytestmark = pytest.mark.kafka

EXAMPLES = int(os.environ.get("VIRGA_SCHEMATHESIS_EXAMPLES", "25"))
"""Examples per operation, caller and mode (more on demand: VIRGA_SCHEMATHESIS_EXAMPLES=200).
25 by default: about a minute more than the 4 it used to be, the CI budget for this test."""

SUPPRESSED = [
    # About how fast or how big the generator's data is, not about the gateway: schemathesis
    # builds requests from the whole document (deep bodies, long strings), and on a shared CI
    # machine generating them can take longer than hypothesis's speed limits.
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
]
"""Health checks off. The others stay on: `filter_too_much` would say the generator cannot
find requests that fit the document (the fuzzing would then test little), `return_value`,
`nested_given` and `function_scoped_fixture` that the test itself is wrong."""


@schemathesis.check
def no_server_fault(ctx: Any, response: Any, case: Any) -> None:
    """No 5xx, but for a documented 503 (a dependency this test runs without, e.g. the
    storage service an image upload streams to): a refusal to retry, not a fault."""
    documented = str(response.status_code) in case.operation.definition.raw.get("responses", {})
    if response.status_code >= 500 and not (response.status_code == 503 and documented):
        raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")


@schemathesis.check
def negative_data_refused(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's `negative_data_rejection`, counting a 413 as the refusal it is: a body
    the document forbids for being too long (`user_data` is as long as the body limit) may be
    refused for its size before it is read."""
    if response.status_code == 413:
        return None
    result: bool | None = checks.negative_data_rejection(ctx, response, case)
    return result


CHECKS = [
    no_server_fault,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]

NOT_FUZZED = {
    # A WebSocket upgrade (101) with a one-time ticket: schemathesis speaks plain HTTP, which
    # the route answers with a 403 (no such ticket) before anything else. Its refusals (a
    # reused, expired or another instance's ticket, no upgrade) are tested in
    # tests/e2e/test_consoles.py and tests/unit/gateway/test_consoles.py.
    "openInstanceConsole",
    # A stream that never ends (Server-Sent Events): schemathesis would wait for the whole body.
    # Its refusals and its tenancy are tested in tests/integration/hostile/test_event_stream.py.
    "streamEvents",
}


def checks_for(mode: GenerationMode) -> list[Any]:
    return [*CHECKS, negative_data_refused] if mode is GenerationMode.NEGATIVE else CHECKS


def _has_constraints(operation: dict[str, Any]) -> bool:
    """Whether a request can break the operation's document other than by its token."""
    return "requestBody" in operation or any(
        p.get("in") == "query" for p in operation.get("parameters", []) if "in" in p
    )


class Target:
    def __init__(self, url: str, admin: str, tenant: str, owned: dict[str, str]) -> None:
        self.url = url
        self.tokens = {"admin": admin, "tenant": tenant}
        self.owned = owned
        """Collection -> id of one of the tenant's resources: operations on `{id}` are fuzzed
        on a resource that exists, so their bodies reach the logic behind the lookup."""

    def path_parameters(self, path: str) -> dict[str, str]:
        found = re.match(r"^/v1/(?P<collection>[a-z-]+)/\{(?P<param>id|name)\}", path)
        known: dict[str, str] = {}
        if found and found["collection"] in self.owned:
            known[found["param"]] = self.owned[found["collection"]]
        if "{volume_id}" in path:
            known["volume_id"] = self.owned["volumes"]
        if "{rule_id}" in path:  # the owned group's one rule (its id derives from its place)
            known["rule_id"] = security_group_rule_id(self.owned["security-groups"], 0)
        return known


OWNED: dict[str, dict[str, Any]] = {
    "instances": {"name": "fuzz-vm", "flavor": "m1.small"},
    "volumes": {"name": "fuzz-vol", "size_gb": 1},
    "networks": {"name": "fuzz-net", "cidr": "10.77.0.0/24"},
    "security-groups": {"name": "fuzz-sg", "rules": [{"direction": "egress"}]},
    "server-groups": {"name": "fuzz-sg", "policy": "affinity"},
    "keypairs": {"name": "fuzz-kp", "public_key": PUBLIC_KEY},
}


@pytest.fixture(scope="module")
def target(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    port, admin = free_port(), secrets.token_urlsafe(32)
    run_dir: Path = tmp_path_factory.mktemp("schemathesis")
    gateway = ServiceProcess(
        "gateway",
        "virga_gateway",
        {
            "VIRGA_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "VIRGA_NAMESPACE": f"fuzz{secrets.token_hex(4)}",
            "VIRGA_GATEWAY_PORT": str(port),
            "VIRGA_ADMIN_TOKEN": admin,
            "VIRGA_TOKEN_SECRET": secrets.token_urlsafe(32),
            "VIRGA_GATEWAY_MAX_BODY_BYTES": "65536",
        },
        run_dir,
        health_url=f"http://127.0.0.1:{port}/healthz",
    )
    gateway.start()
    try:
        gateway.wait_healthy(timeout=60)
        url = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {admin}"}
        with requests.Session() as http:
            tenant = http.post(f"{url}/v1/tenants", json={"name": "fuzz"}, headers=auth).json()
            token = http.post(f"{url}/v1/tenants/{tenant['id']}/tokens", headers=auth).json()
            mine = {"Authorization": f"Bearer {token['token']}"}
            owned = {}
            for collection, body in OWNED.items():
                created = http.post(f"{url}/v1/{collection}", json=body, headers=mine)
                assert created.status_code in (201, 202), created.text
                owned[collection] = created.json().get("id", body["name"])  # keypairs: names
        yield Target(url, admin, token["token"], owned)
    finally:
        gateway.stop()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("caller", ["admin", "tenant"])
def test_every_operation_answers_within_its_document(
    target: Target, caller: str, mode: GenerationMode
) -> None:
    with requests.Session() as http:
        document = http.get(f"{target.url}/v1/openapi.json").json()
        schema = schemathesis.openapi.from_dict(document)
        headers = {"Authorization": f"Bearer {target.tokens[caller]}"}
        failures: list[str] = []
        operations = 0
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), f"the document is invalid: {result.err()}"
            operation = result.ok()
            operations += 1
            if operation.definition.raw.get("operationId") in NOT_FUZZED:
                continue
            if mode is GenerationMode.NEGATIVE and not _has_constraints(operation.definition.raw):
                continue  # only its path's free-form ids could be fuzzed: nothing can be wrong

            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=SUPPRESSED,
            )
            # The caller's token stays valid in negative mode too: what is fuzzed is the
            # request, not the credentials (test_bodies_and_tokens covers bad tokens).
            @given(
                case=operation.as_strategy(
                    generation_mode=mode,
                    headers=headers,
                    path_parameters=target.path_parameters(operation.path),
                )
            )
            def fuzz(case: Any) -> None:
                case.call_and_validate(
                    base_url=target.url, session=http, headers=headers, checks=checks_for(mode)
                )

            try:
                fuzz()
            except Unsatisfiable:
                continue  # every value it could take is valid: no negative example exists
            except Exception as failure:  # every operation is tried; all findings reported
                failures.append(f"--- {operation.label}\n{failure}")
    assert operations >= 40
    assert not failures, "\n".join(failures)
