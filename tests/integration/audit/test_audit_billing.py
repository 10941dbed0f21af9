"""Audits over billing and the whole cloud on the real broker: past states replayed equal what
the API answered then, a forged invoice is caught by both `verify` and `rerate`, and `check`
finds a broken invariant in a log and nothing in a clean one."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson
import pytest
from click.testing import CliRunner
from tests.integration.billing.month import (
    PERIOD,
    PRICES_BEFORE,
    SMALL,
    Month,
    eventually,
    march,
    placed,
    sample,
    scripted_month,
)
from tests.integration.gateway.harness import Gateway
from tests.support.kafka import produce_events, read_events

from virga_audit import replay, replay_all, rerate, verify
from virga_billing.core import snapshot as billing_snapshot
from virga_cli.main import cli
from virga_eventlog import event_topic
from virga_events import REGISTRY, Envelope
from virga_events.catalog import api
from virga_events.catalog.compute import HostRegistered, InstanceStarted, InstanceStopped
from virga_events.catalog.l3 import FloatingIpAllocated, FloatingIpReleased, RouterCreated
from virga_gateway.billing import queries
from virga_gateway.state import restore
from virga_rating.rating import rate_window

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


async def answered(gateway: Gateway, token: str, instance_id: str, start: str) -> dict[str, Any]:
    """What the API says now of the instance and the tenant's usage since `start`, and when."""
    await asyncio.sleep(0.05)  # the instant asked about is strictly after every fact so far
    moment = datetime.now(UTC)
    instance = await gateway.call("GET", f"/v1/instances/{instance_id}", token=token)
    query = f"from={start}&to={moment.isoformat().replace('+00:00', 'Z')}"
    usage = await gateway.call("GET", f"/v1/usage?{query}", token=token)
    assert (instance.status, usage.status) == (200, 200), (instance.body, usage.body)
    await asyncio.sleep(0.05)
    return {"at": moment, "status": instance.body["status"], "usage": usage.body}


async def test_replays_at_several_instants_equal_what_the_api_answered(
    kafka_bootstrap: str,
) -> None:
    async with scripted_month(kafka_bootstrap) as month:
        gateway, token = month.gateway, month.tenant_token
        runner = gateway.runner
        assert runner is not None
        start = datetime.now(UTC).replace(microsecond=0)
        since = start.isoformat().replace("+00:00", "Z")
        hour = start.replace(minute=0, second=0).isoformat().replace("+00:00", "Z")
        await month.put_prices({**PRICES_BEFORE, "effective_from": hour})
        body = {"name": "vm", "flavor": "m1.small"}
        created = await gateway.call("POST", "/v1/instances", token=token, json=body)
        assert created.status == 202, created.body
        instance_id = created.body["id"]
        answers = [await answered(gateway, token, instance_id, since)]  # BUILDING, nothing used

        async def happen(producer: str, fact: Any) -> None:
            folded = runner.events_applied
            await month.write(producer, fact, instance_id, datetime.now(UTC))
            await eventually(lambda: runner.events_applied > folded, what="the gateway folding")

        await happen("scheduler", placed("vm", SMALL))
        await happen("compute@h1", InstanceStarted(host="h1"))
        await happen("compute@h1", sample(3_000_000_000))
        answers.append(await answered(gateway, token, instance_id, since))  # RUNNING, 3 GB out
        await happen("compute@h1", InstanceStopped(host="h1"))
        answers.append(await answered(gateway, token, instance_id, since))  # STOPPED

        assert [a["status"] for a in answers] == ["BUILDING", "RUNNING", "STOPPED"]
        assert [len(a["usage"]["lines"]) for a in answers] == [0, 2, 2]
        for answer in answers:
            moment = answer["at"]
            # The gateway's projection, rebuilt as of that instant by its own fold...
            past = restore(await replay(month.settings, "gateway", moment))
            view = queries.usage(past, month.tenant_id, start, moment)
            assert past.instances[instance_id].status == answer["status"]
            assert msgspec_json(view) == answer["usage"]
            # ...and billing's state as of then, rated by the same core, agree with it.
            state = billing_snapshot.restore(await replay(month.settings, "billing", moment))
            lines, _ = rate_window(state, month.tenant_id, start, moment)
            assert [dataclasses.asdict(line) for line in lines] == answer["usage"]["lines"]
        # Every service at once (two passes over the log) folds to the same states.
        moment = answers[-1]["at"]
        everything = await replay_all(month.settings, moment)
        for service in ("gateway", "scheduler", "storage", "network", "billing"):
            alone = await replay(month.settings, service, moment)
            assert everything[service] == (orjson.loads(alone) if isinstance(alone, str) else alone)


def msgspec_json(value: object) -> Any:
    return msgspec.json.decode(msgspec.json.encode(value))


async def test_a_forged_invoice_is_caught_by_verify_and_by_rerate(kafka_bootstrap: str) -> None:
    async with scripted_month(kafka_bootstrap) as month:
        await month.put_prices(PRICES_BEFORE)
        await month.play(
            [
                ("scheduler", placed("a", SMALL), "i-a", march(1)),
                ("compute@h1", InstanceStarted(host="h1"), "i-a", march(2)),
                ("compute@h1", InstanceStopped(host="h1"), "i-a", march(3)),
            ]
        )
        month.clock.now = march(1).replace(month=4, day=2)
        async with month.billing(snapshot=False) as service:
            await eventually(lambda: service.state.invoices, what="the March invoice")
        assert await rerate(month.settings, PERIOD) == []
        assert (await verify(month.settings)).ok

        issued = await _issued(month)
        line = dataclasses.replace(issued.payload.lines[0], amount="0.40")  # was 2.40
        forged = msgspec.structs.replace(
            issued, payload=dataclasses.replace(issued.payload, lines=(line,), total="0.40")
        )
        await produce_events(
            kafka_bootstrap, event_topic("billing", month.settings.namespace), [forged]
        )

        report = await verify(month.settings)
        assert [(p.kind, p.producer) for p in report.problems] == [("forged", "billing")]
        [difference] = await rerate(month.settings, PERIOD)
        assert (difference.resource_id, difference.charge) == ("i-a", "compute")
        assert "2.00 EUR" in difference.detail  # 24 h x 0.10 re-rated, 0.40 on the forgery


async def test_public_ip_hours_are_invoiced_and_rerate_agrees(kafka_bootstrap: str) -> None:
    fip = FloatingIpAllocated(external_network_id="ext", ip="203.0.113.10")
    router = RouterCreated(name="r", external_network_id="ext", external_ip="203.0.113.11")
    released = FloatingIpReleased(external_network_id="ext", ip="203.0.113.10")
    async with scripted_month(kafka_bootstrap) as month:
        await month.put_prices(PRICES_BEFORE)
        await month.play(
            [
                ("network", fip, "fip-a", march(1)),
                ("network", router, "r-a", march(2)),
                ("network", released, "fip-a", march(3, 12)),
            ]
        )
        month.clock.now = march(1).replace(month=4, day=2)
        async with month.billing(snapshot=False) as service:
            await eventually(lambda: service.state.invoices, what="the March invoice")
        issued = (await _issued(month)).payload
        lines = {(line.resource_id, line.kind): line for line in issued.lines}
        # 60 h of the floating IP; the router from 2 March to the month's end: 30 days.
        assert (lines["fip-a", "public_ip"].quantity, lines["fip-a", "public_ip"].amount) == (
            "60.000000",
            "0.30",
        )
        assert lines["r-a", "public_ip"].quantity == "720.000000"
        assert lines["r-a", "public_ip"].amount == "3.60"
        assert await rerate(month.settings, PERIOD) == []


async def _issued(month: Month) -> Envelope:
    events = await read_events(
        month.bootstrap, event_topic("billing", month.settings.namespace), REGISTRY
    )
    [invoice] = [e for e in events if e.type == "InvoiceIssued"]
    return invoice


async def test_check_finds_an_overcommitted_host_and_nothing_in_a_clean_log(
    kafka_bootstrap: str,
) -> None:
    async with scripted_month(kafka_bootstrap) as month:
        t0 = datetime.now(UTC) - timedelta(hours=1)
        where = ["--bootstrap", kafka_bootstrap, "--namespace", month.settings.namespace]
        host = HostRegistered(rack="r1", zone="z1", vcpus=1, ram_mb=4096, disk_gb=100)
        await month.write("compute@h1", host, "h1", t0)
        await month.write("scheduler", placed("a", SMALL), "i-a", t0 + timedelta(minutes=1))
        started = InstanceStarted(host="h1")
        await month.write("compute@h1", started, "i-a", t0 + timedelta(minutes=2))
        clean = await asyncio.to_thread(CliRunner().invoke, cli, ["audit", "check", *where])
        assert (clean.exit_code, clean.output.strip()) == (0, "all invariants hold")

        ratios = api.AllocationRatiosSet(cpu=1.0, ram=0.25, disk=1.0)  # 1024 MB allowed
        await month.write("gateway@admin", ratios, "h1", t0 + timedelta(seconds=30))
        broken = await asyncio.to_thread(CliRunner().invoke, cli, ["audit", "check", *where])
        assert broken.exit_code == 1
        assert broken.output.splitlines() == [
            "VIOLATION overcommitted h1: ram_mb 2048 claimed > 4096 x 0.25 when i-a was placed",
            "1 violations",
        ]
