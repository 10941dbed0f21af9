"""On the real broker: the gateway prunes the usage history of a resource deleted in a closed
month, and answers `/v1/usage` for later windows exactly as billing's whole history rates them
(before a restart and after a rebuild from the log); a window reaching the pruned history is
refused naming `from`."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from tests.integration.billing.month import (
    PRICES_BEFORE,
    SMALL,
    eventually,
    placed,
    sample,
    scripted_month,
)

from virga_audit import replay
from virga_billing.core import snapshot as billing_snapshot
from virga_events.catalog.compute import InstanceDeleted, InstanceStarted
from virga_rating.rating import bounds, period_of, rate_window

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_the_gateway_prunes_closed_months_and_still_answers_as_billing_rates(
    kafka_bootstrap: str,
) -> None:
    async with scripted_month(kafka_bootstrap) as month:
        gateway, token = month.gateway, month.tenant_token
        runner = gateway.runner
        assert runner is not None
        now = datetime.now(UTC)
        this_month = bounds(period_of(now))[0]
        old = this_month - timedelta(days=40)  # a month that closed more than an hour ago
        await month.put_prices(
            {**PRICES_BEFORE, "effective_from": rfc3339(old - timedelta(days=1))}
        )
        new_deleted = min(now, this_month + timedelta(seconds=30))
        script = [
            ("scheduler", placed("vm-old", SMALL), "i-old", old),
            ("compute@h1", InstanceStarted(host="h1"), "i-old", old + timedelta(hours=1)),
            ("compute@h1", sample(2_000_000_000), "i-old", old + timedelta(hours=2)),
            ("compute@h1", InstanceDeleted(host="h1"), "i-old", old + timedelta(hours=5)),
            ("scheduler", placed("vm-live", SMALL), "i-live", old),
            ("compute@h1", InstanceStarted(host="h1"), "i-live", old + timedelta(hours=1)),
            ("scheduler", placed("vm-new", SMALL), "i-new", this_month),
            ("compute@h1", InstanceStarted(host="h1"), "i-new", this_month),
            ("compute@h1", InstanceDeleted(host="h1"), "i-new", new_deleted),
        ]  # fmt: skip
        written = await month.play(script)
        last = max(envelope.occurred_at for envelope in written)
        await eventually(
            lambda: (
                "i-new" in runner.state.billing.instances
                and runner.state.billing.instances["i-new"].deleted
            ),
            what="the gateway folding the script",
        )
        assert "i-old" not in runner.state.billing.instances  # pruned
        assert "i-live" in runner.state.billing.instances  # still running: kept

        end = max(now, last) + timedelta(seconds=1)
        windows = [(this_month, end), (old + timedelta(hours=5, seconds=1), end)]
        billing = billing_snapshot.restore(await replay(month.settings, "billing", end))
        # The gateway takes a `to` in the future as its own now: ask once `end` has passed, so
        # both sides rate the running instance up to the same instant.
        await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 0.05)
        assert "i-old" in billing.instances  # billing itself keeps the whole history
        answers = []
        for start, until in windows:
            query = f"from={rfc3339(start)}&to={rfc3339(until)}"
            reply = await gateway.call("GET", f"/v1/usage?{query}", token=token)
            assert reply.status == 200, reply.body
            lines, _ = rate_window(billing, month.tenant_id, start, until)
            assert reply.body["lines"] == [dataclasses.asdict(line) for line in lines]
            assert {line["resource_id"] for line in reply.body["lines"]} >= {"i-live"}
            answers.append(reply.body)
        query = f"from={rfc3339(old)}&to={rfc3339(end)}"
        refused = await gateway.call("GET", f"/v1/usage?{query}", token=token)
        assert refused.status == 422, refused.body
        assert [error["field"] for error in refused.body["errors"]] == ["from"]

        await gateway.restart(snapshot=False)  # rebuilt: it prunes the same
        for (start, until), answer in zip(windows, answers, strict=True):
            query = f"from={rfc3339(start)}&to={rfc3339(until)}"
            reply = await gateway.call("GET", f"/v1/usage?{query}", token=token)
            assert (reply.status, reply.body) == (200, answer)
        refused = await gateway.call("GET", f"/v1/usage?from={rfc3339(old)}", token=token)
        assert refused.status == 422, refused.body
