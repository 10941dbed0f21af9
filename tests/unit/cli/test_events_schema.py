"""`virga events schema` exports a JSON Schema that accepts exactly what Virga writes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import orjson
from click.testing import CliRunner

from virga_cli.main import cli
from virga_events import encode, new_event
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.common import Flavor


def schema_from_cli(tmp_path: Path) -> dict[str, object]:
    target = tmp_path / "events.json"
    result = CliRunner().invoke(cli, ["events", "schema", "--output", str(target)])
    assert result.exit_code == 0, result.output
    loaded: dict[str, object] = orjson.loads(target.read_bytes())
    return loaded


def test_the_schema_validates_a_real_event_and_rejects_a_broken_one(tmp_path: Path) -> None:
    schema = schema_from_cli(tmp_path)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    event = new_event(
        InstanceRequested(
            name="web-1", flavor=Flavor(name="m1.tiny", vcpus=1, ram_mb=256, disk_gb=1)
        ),
        aggregate_id="i-1",
        tenant_id="t-1",
        producer="gateway",
        occurred_at=datetime(2026, 11, 23, tzinfo=UTC),
    )
    good = orjson.loads(encode(event))
    assert validator.is_valid(good)
    broken = {**good, "payload": {**good["payload"], "flavor": {"name": "m1.tiny"}}}
    assert not validator.is_valid(broken)


def test_every_registered_type_has_a_variant(tmp_path: Path) -> None:
    schema = schema_from_cli(tmp_path)
    variants = schema["oneOf"]
    assert isinstance(variants, list)
    titles = {variant["title"] for variant in variants}
    assert {"InstanceRequested", "InstanceScheduled", "InstanceStarted", "HostRegistered"} <= titles
