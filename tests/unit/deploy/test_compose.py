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
}


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Debian's docker-compose (1.29): parses, validates and interpolates without an engine."""
    # Interpolation with the file's own defaults: no VIRGA_* of the caller leaks in.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIRGA_")}
    return subprocess.run(
        ["docker-compose", "--project-directory", str(ROOT), "-f", str(COMPOSE), "config", *args],
        env={**clean, **(env or {})},
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
        if name == "kafka":
            continue
        environment = service["environment"]
        port = environment.get("VIRGA_HTTP_PORT") or environment["VIRGA_GATEWAY_PORT"]
        assert f"127.0.0.1:{port}/healthz" in " ".join(service["healthcheck"]["test"]), name
