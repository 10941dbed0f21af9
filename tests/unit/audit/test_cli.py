"""`virga audit` refuses bad arguments before it reaches for the broker."""

from __future__ import annotations

from click.testing import CliRunner

from virga_cli.main import cli

NOWHERE = ["--bootstrap", "127.0.0.1:1", "--namespace", "nowhere"]


def test_replay_refuses_a_time_that_is_not_iso_8601() -> None:
    result = CliRunner().invoke(cli, ["audit", "replay", "--until", "yesterday", *NOWHERE])
    assert result.exit_code == 2
    assert "not an ISO 8601 time: 'yesterday'" in result.output


def test_replay_refuses_an_unknown_service() -> None:
    result = CliRunner().invoke(
        cli, ["audit", "replay", "--until", "2026-11-23T12:00:00Z", "--service", "dns"]
    )
    assert result.exit_code == 2
    assert "dns" in result.output


def test_rerate_refuses_a_period_that_is_not_a_month() -> None:
    result = CliRunner().invoke(cli, ["audit", "rerate", "--period", "2026-13", *NOWHERE])
    assert result.exit_code == 2
    assert "--period" in result.output


def test_replay_of_a_compute_agent_needs_its_host() -> None:
    result = CliRunner().invoke(
        cli,
        ["audit", "replay", "--until", "2026-11-23T12:00:00Z", "--service", "compute", *NOWHERE],
    )
    assert result.exit_code == 2
    assert "needs its host" in result.output
