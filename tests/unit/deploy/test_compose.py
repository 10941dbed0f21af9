"""docker-compose.yml parses, and everything it names exists: modules, Dockerfile, variables."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from virga_devstack.kafka_jars import KAFKA_VERSION

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
SERVICES = {
    "kafka": None,
    "gateway": "virga_gateway",
    "scheduler": "virga_scheduler",
    "storage": "virga_storage",
    "network": "virga_network",
    "billing": "virga_billing",
    "compute-agent": "virga_compute",
    "network-agent": "virga_network.agent",
    "provision": None,
}
ADMIN_PASSWORD = {"VIRGA_KAFKA_ADMIN_PASSWORD": "compose-test-admin"}
"""The one variable the file requires (the Kafka super user's password)."""


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Debian's docker-compose (1.29): parses, validates and interpolates without an engine."""
    # Interpolation with the file's own defaults: no VIRGA_* of the caller leaks in.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIRGA_")}
    return subprocess.run(
        ["docker-compose", "--project-directory", str(ROOT), "-f", str(COMPOSE), "config", *args],
        env={**clean, **ADMIN_PASSWORD, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    answer = compose()
    assert answer.returncode == 0, answer.stderr
    document: dict[str, Any] = yaml.safe_load(answer.stdout)
    return document


def test_the_parser_accepts_the_file_as_it_is_and_with_settings_for_another_host() -> None:
    assert compose("-q").returncode == 0
    other_host = {"VIRGA_HOST": "hv-7", "VIRGA_VTEP_IP": "10.0.0.7"}
    answer = compose(env={**other_host, "VIRGA_KAFKA_ADVERTISED_HOST": "10.0.0.1"})
    assert answer.returncode == 0, answer.stderr
    services = yaml.safe_load(answer.stdout)["services"]
    assert services["network-agent"]["environment"]["VIRGA_VTEP_IP"] == "10.0.0.7"
    assert services["compute-agent"]["environment"]["VIRGA_HOST"] == "hv-7"
    assert services["compute-agent"]["environment"]["VIRGA_KAFKA_BOOTSTRAP"] == "10.0.0.1:9092"


def test_a_broken_file_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("    command:", "    comand:", 1))
    answer = subprocess.run(
        ["docker-compose", "-f", str(broken), "config", "-q"],
        env={**os.environ, **ADMIN_PASSWORD},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answer.returncode != 0
    assert "comand" in answer.stderr


def test_every_service_runs_a_module_of_this_repository_from_its_dockerfile(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    assert set(services) == set(SERVICES)
    for name, module in SERVICES.items():
        if module is None:
            continue
        service = services[name]
        assert service["command"] == ["python", "-m", module], name
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{name}: no module {module}"
        assert spec.origin is not None
        assert Path(spec.origin).is_relative_to(ROOT / "services"), spec.origin
        assert (Path(service["build"]["context"]) / service["build"]["dockerfile"]) == DOCKERFILE


def test_the_dockerfile_copies_only_what_exists_and_checks_the_ceph_bindings() -> None:
    text = DOCKERFILE.read_text()
    sources = re.findall(r"^COPY (?!--from)(.+) \S+$", text, flags=re.MULTILINE)
    copied = [part for line in sources for part in line.split()]
    assert copied, "no COPY lines found"
    for source in copied:
        assert (ROOT / source).exists(), source
    assert "python:3.11-slim-bookworm" in text
    assert "python3-rados python3-rbd" in text
    assert "import rados, rbd, libvirt" in text


def test_every_virga_variable_in_the_file_is_one_the_code_reads(resolved: dict[str, Any]) -> None:
    code = "\n".join(
        path.read_text()
        for root in ("services", "libs", "events", "apps")
        for path in (ROOT / root).rglob("*.py")
    )
    for name, service in resolved["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith("VIRGA_"):
                assert f'"{variable}' in code, f"{name}: nothing reads {variable}"


def test_agents_run_in_the_hosts_namespaces_and_reach_libvirtd_and_kafka(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    for agent in ("compute-agent", "network-agent"):
        assert services[agent]["privileged"] is True
        assert services[agent]["network_mode"] == "host"
        # On the host's network the compose network's names do not resolve.
        assert services[agent]["environment"]["VIRGA_KAFKA_BOOTSTRAP"] == "127.0.0.1:9092"
    assert "/var/run/libvirt:/var/run/libvirt:rw" in services["compute-agent"]["volumes"]
    assert services["compute-agent"]["environment"]["VIRGA_LIBVIRT_URI"] == "qemu:///system"
    kafka = services["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert "HOST://127.0.0.1:9092" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]


def test_each_healthcheck_asks_the_port_its_service_serves(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        if name in ("kafka", "provision"):
            continue
        environment = service["environment"]
        port = environment.get("VIRGA_HTTP_PORT") or environment["VIRGA_GATEWAY_PORT"]
        assert f"127.0.0.1:{port}/healthz" in " ".join(service["healthcheck"]["test"]), name


def test_kafka_runs_with_sasl_and_acls_and_every_service_logs_in_as_its_own_user(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    kafka = services["kafka"]["environment"]
    protocols = dict(p.split(":") for p in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}, protocols  # no listener in clear
    assert kafka["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert kafka["KAFKA_SUPER_USERS"] == "User:admin"
    assert "SCRAM-SHA-512" in kafka["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")
    assert (
        'user_admin="compose-test-admin"'
        in kafka["KAFKA_LISTENER_NAME_HOST_PLAIN_SASL_JAAS_CONFIG"]
    )
    assert "--command-config" in " ".join(services["kafka"]["healthcheck"]["test"])
    users = {
        name: service["environment"]["VIRGA_KAFKA_USERNAME"]
        for name, service in services.items()
        if name not in ("kafka", "provision")
    }
    assert users == {
        "gateway": "gateway",
        "scheduler": "scheduler",
        "storage": "storage",
        "network": "network",
        "billing": "billing",
        "compute-agent": "compute-host-1",
        "network-agent": "network-host-1",
    }
    for name, user in users.items():
        environment = services[name]["environment"]
        assert environment["VIRGA_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT", name
        assert environment["VIRGA_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert environment["VIRGA_KAFKA_PASSWORD_FILE"] == f"/run/virga/kafka/{user}.password"
        assert "kafka-credentials:/run/virga/kafka:ro" in services[name]["volumes"], name
        assert services[name]["depends_on"]["provision"]["condition"] == (
            "service_completed_successfully"
        ), name
    provision = services["provision"]
    assert provision["environment"]["VIRGA_KAFKA_USERNAME"] == "admin"
    script = " ".join(provision["command"])
    assert "python -m virga_eventlog.provision --credentials-dir /run/virga/kafka" in script
    assert '--host "$$VIRGA_HOST"' in script or '--host "$VIRGA_HOST"' in script


def test_another_hosts_agents_log_in_as_that_hosts_users() -> None:
    answer = compose(env={"VIRGA_HOST": "hv-7"})
    assert answer.returncode == 0, answer.stderr
    services = yaml.safe_load(answer.stdout)["services"]
    assert services["compute-agent"]["environment"]["VIRGA_KAFKA_USERNAME"] == "compute-hv-7"
    assert services["network-agent"]["environment"]["VIRGA_KAFKA_USERNAME"] == "network-hv-7"


def test_the_file_refuses_to_run_without_an_admin_password() -> None:
    answer = compose("-q", env={"VIRGA_KAFKA_ADMIN_PASSWORD": ""})
    assert answer.returncode != 0
    assert "set VIRGA_KAFKA_ADMIN_PASSWORD" in answer.stderr
