"""`python -m virga_gateway` as an operator runs it: first boot, health, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
from tests.support.ports import free_port

pytestmark = pytest.mark.kafka


async def test_the_gateway_process_boots_with_a_generated_admin_token_and_stops_cleanly(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VIRGA_ADMIN", "VIRGA_TOKEN"))
    }
    env |= {
        "VIRGA_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "VIRGA_NAMESPACE": f"t{uuid.uuid4().hex[:8]}",
        "VIRGA_GATEWAY_PORT": str(port),
    }
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "virga_gateway", cwd=tmp_path, env=env, stdout=out, stderr=out
        )
        try:
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                for _ in range(300):
                    assert process.returncode is None, log.read_text()[-3000:]
                    try:
                        async with http.get(f"{base}/healthz") as health:
                            if health.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"never healthy:\n{log.read_text()[-3000:]}")
                token = (tmp_path / ".virga" / "admin-token").read_text().strip()
                headers = {"Authorization": f"Bearer {token}"}
                async with http.get(f"{base}/v1/tenants", headers=headers) as reply:
                    assert reply.status == 200
                    assert reply.headers["X-Request-Id"]
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 30)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert ".virga/admin-token" in text  # the operator is told where the token is
    assert '"event":"request"' in text  # JSON logs, one line per request
