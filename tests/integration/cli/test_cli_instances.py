"""The `virga` CLI against a real stack of processes on real Kafka: instances, tokens, refusals."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result
from tests.support.stack import HostSpec, Stack

from virga_cli import errors
from virga_cli.main import cli

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(kafka_bootstrap, tmp_path_factory.mktemp("stack"), (HostSpec("cli-1", "r1"),))
    with stack.running():
        yield stack


def virga(stack: Stack, home: Path, *args: str, token: str | None = None) -> Result:
    env = {
        "XDG_CONFIG_HOME": str(home),
        "VIRGA_API_URL": stack.gateway_url,
        "VIRGA_TOKEN": token,
    }
    return CliRunner().invoke(cli, list(args), env=env)


def test_a_tenant_logs_in_boots_with_wait_stops_and_deletes(stack: Stack, tmp_path: Path) -> None:
    admin = stack.admin_token
    # Bare ids and tokens on stdout: the shell's $(...) takes them as they are.
    made = virga(stack, tmp_path, "tenant", "create", f"cli-{uuid.uuid4().hex[:6]}", token=admin)
    assert made.exit_code == 0, made.output
    tenant_id = made.stdout.strip()
    issued = virga(stack, tmp_path, "token", "create", tenant_id, token=admin)
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip()

    logged_in = virga(stack, tmp_path, "login", "--token", token)
    assert logged_in.exit_code == 0, logged_in.output

    # From here on the saved login is all the CLI needs.
    booted = virga(stack, tmp_path, "instance", "create", "web-1", "--flavor", "m1.tiny", "--wait")
    assert booted.exit_code == 0, booted.output
    steps = [line.split()[3] for line in booted.stdout.splitlines() if line[:4].isdigit()]
    assert steps[0] == "InstanceRequested"
    # Printed as the gateway folds them: the scheduler's and the host's events come from two
    # topics, so under load the start may be read first. The history itself is in event time.
    assert {"InstanceScheduled", "InstanceStarted"} <= set(steps), steps
    assert booted.stdout.splitlines()[-1] == "instance web-1 is RUNNING on cli-1"

    listed = virga(stack, tmp_path, "--json", "instance", "list")
    [instance] = orjson.loads(listed.stdout)["items"]
    assert (instance["name"], instance["status"], instance["host"]) == ("web-1", "RUNNING", "cli-1")
    request = urllib.request.Request(
        f"{stack.gateway_url}/v1/instances/{instance['id']}/events",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        types = [event["type"] for event in orjson.loads(answer.read())]
    assert types.index("InstanceScheduled") < types.index("InstanceStarted"), types
    table = virga(stack, tmp_path, "instance", "list")
    assert instance["id"] in table.stdout
    assert "RUNNING" in table.stdout

    stopped = virga(
        stack, tmp_path, "instance", "stop", instance["id"], "--wait", "--timeout", "60"
    )
    assert stopped.exit_code == 0, stopped.output
    assert "InstanceStopped" in stopped.stdout
    assert "InstanceRequested" not in stopped.stdout  # only what the stop caused

    refused = virga(stack, tmp_path, "instance", "reboot", instance["id"])
    assert refused.exit_code == errors.API_ERROR
    assert "HTTP 409" in refused.stderr

    deleted = virga(
        stack, tmp_path, "instance", "delete", instance["id"], "--wait", "--timeout", "60"
    )
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.splitlines()[-1].endswith("is DELETED")
    shown = virga(stack, tmp_path, "--json", "instance", "show", instance["id"])
    assert orjson.loads(shown.stdout)["status"] == "DELETED"
    again = virga(stack, tmp_path, "instance", "delete", instance["id"])
    assert again.exit_code == errors.API_ERROR
    assert "HTTP 404" in again.stderr


def test_refusals_name_the_field_and_bad_tokens_exit_4(stack: Stack, tmp_path: Path) -> None:
    admin = stack.admin_token
    made = virga(
        stack, tmp_path, "--json", "tenant", "create", f"cli-{uuid.uuid4().hex[:6]}", token=admin
    )
    tenant_id = orjson.loads(made.stdout)["id"]
    token = virga(stack, tmp_path, "token", "create", tenant_id, token=admin).stdout.strip()

    unknown = virga(stack, tmp_path, "instance", "create", "x", "--flavor", "m9.huge", token=token)
    assert unknown.exit_code == errors.API_ERROR
    assert "field flavor:" in unknown.stderr

    bad_login = virga(stack, tmp_path, "login", "--token", "virga_not-a-token")
    assert bad_login.exit_code == errors.AUTH
    assert "HTTP 401" in bad_login.stderr
    assert not (tmp_path / "virga" / "credentials.json").exists()
