"""Billing's settings from the environment, and every module importing on its own."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import virga_billing
import virga_rating
from virga_billing.config import BillingConfig

MODULES = sorted(
    m.name
    for package in (virga_billing, virga_rating)
    for m in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
)


def test_settings_come_from_the_environment() -> None:
    config = BillingConfig.from_env(
        {"VIRGA_BILLING_GRACE_SECONDS": "7200", "VIRGA_NAMESPACE": "n1", "VIRGA_HTTP_PORT": "9"}
    )
    assert (config.grace_seconds, config.tick_seconds) == (7200, 60)
    assert (config.namespace, config.http_port) == ("n1", 9)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("VIRGA_BILLING_GRACE_SECONDS", "-1", "grace_seconds"),
        ("VIRGA_BILLING_TICK_SECONDS", "soon", "VIRGA_BILLING_TICK_SECONDS"),
    ],
)
def test_a_bad_setting_stops_the_service_naming_it(variable: str, value: str, named: str) -> None:
    with pytest.raises(SystemExit, match=named):
        BillingConfig.from_env({variable: value})


def test_every_module_is_found() -> None:
    assert {"virga_billing.service", "virga_rating.rating"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(module: str) -> None:
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=60)
