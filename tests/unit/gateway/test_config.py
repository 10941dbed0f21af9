"""Gateway settings: secrets from the environment, a named file, or generated once."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from virga_gateway.config import GatewayConfig


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        "VIRGA_ADMIN_TOKEN",
        "VIRGA_ADMIN_TOKEN_FILE",
        "VIRGA_TOKEN_SECRET",
        "VIRGA_TOKEN_SECRET_FILE",
        "VIRGA_GATEWAY_HOST",
        "VIRGA_GATEWAY_PORT",
        "VIRGA_GATEWAY_MAX_BODY_BYTES",
    ]:
        monkeypatch.delenv(name, raising=False)


def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    monkeypatch.setenv("VIRGA_ADMIN_TOKEN", "admin-from-env")
    monkeypatch.setenv("VIRGA_TOKEN_SECRET_FILE", str(secret_file))
    monkeypatch.setenv("VIRGA_GATEWAY_HOST", "0.0.0.0")
    monkeypatch.setenv("VIRGA_GATEWAY_PORT", "9999")
    config = GatewayConfig.from_env(state_dir=tmp_path / "state")
    assert config.admin_token == "admin-from-env"
    assert config.token_secret == b"from-a-file"
    assert (config.host, config.port, config.max_body_bytes) == ("0.0.0.0", 9999, 1024 * 1024)
    assert not (tmp_path / "state").exists()
    assert "admin-from-env" not in repr(config)


def test_missing_secrets_are_generated_once_readable_by_the_owner_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = GatewayConfig.from_env(state_dir=tmp_path / ".virga")
    token_file = tmp_path / ".virga" / "admin-token"
    assert token_file.read_text().strip() == first.admin_token
    assert len(first.admin_token) >= 43
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / ".virga" / "token-secret").stat().st_mode) == 0o600
    assert str(token_file) in capsys.readouterr().err
    again = GatewayConfig.from_env(state_dir=tmp_path / ".virga")
    assert (again.admin_token, again.token_secret) == (first.admin_token, first.token_secret)
    assert capsys.readouterr().err == ""


def test_an_unreadable_secret_file_stops_the_gateway(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VIRGA_ADMIN_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(SystemExit, match="VIRGA_ADMIN_TOKEN_FILE"):
        GatewayConfig.from_env(state_dir=tmp_path)
