"""The README's quick start, run as written by bash (the `virga` CLI on the PATH) against a
real stack that `make up` would have left: the admin token in `.virga/admin-token`, the
public image `virga-guest`, a host with its network agent."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.netns import links, sh
from tests.support.stack import HostSpec, Stack

from virga_cli.client import Client

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

README = Path(__file__).resolve().parents[3] / "README.md"
PREFIX = "vqs"
"""The network agent names every bridge, VXLAN and tap of this test with it."""


def quick_start() -> str:
    """The README's first sh block that logs in: the quick start."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.DOTALL)
    [block] = [b for b in blocks if "virga login" in b][:1]
    return str(block)


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("stack"),
        (HostSpec("qs-1", "r1"),),
        network_agent_prefix=PREFIX,
    )
    try:
        with stack.running():
            yield stack
    finally:
        for name in {n for n in links("") if n.startswith(PREFIX)}:
            sh("ip", "link", "del", name, check=False)


def test_the_quick_start_runs_as_written(stack: Stack, tmp_path: Path) -> None:
    admin = Client(stack.gateway_url, stack.admin_token)
    seed = tmp_path / "virga-guest.raw"
    seed.write_bytes(bytes(range(256)) * 4096)
    admin.request(
        "POST", "/v1/images",
        query={"name": "virga-guest", "visibility": "public"}, data=seed.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    (tmp_path / ".virga").mkdir()
    (tmp_path / ".virga" / "admin-token").write_text(stack.admin_token)
    script = quick_start()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "VIRGA_API_URL": stack.gateway_url,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    env.pop("VIRGA_TOKEN", None)
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "virga-guest" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1] == "instance web-1 is RUNNING on qs-1"
