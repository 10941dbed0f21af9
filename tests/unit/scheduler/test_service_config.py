"""The scheduler's settings from the environment, and the service's wiring."""

from __future__ import annotations

import subprocess
import sys

import pytest

from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core.placement import AllocationRatios, Weigher
from virga_scheduler.service import definition


def test_defaults_spread_three_attempts_and_a_thirty_second_heartbeat_timeout() -> None:
    config = SchedulerConfig.from_env({})
    assert config.weigher is Weigher.SPREAD
    assert config.max_attempts == 3
    assert config.heartbeat_timeout_seconds == 30.0
    assert config.tick_seconds == 5.0
    assert config.ratios == AllocationRatios()


def test_settings_are_read_from_the_environment() -> None:
    config = SchedulerConfig.from_env(
        {
            "VIRGA_SCHEDULER_WEIGHER": "pack",
            "VIRGA_SCHEDULER_MAX_ATTEMPTS": "5",
            "VIRGA_HEARTBEAT_TIMEOUT": "9",
            "VIRGA_SERVER_GROUP_WAIT": "12",
            "VIRGA_CPU_ALLOCATION_RATIO": "16",
            "VIRGA_NAMESPACE": "ns1",
            "VIRGA_HTTP_PORT": "8081",
        }
    )
    assert config.weigher is Weigher.PACK
    assert (config.max_attempts, config.heartbeat_timeout_seconds) == (5, 9.0)
    assert config.tick_seconds == 3.0  # a third of a short timeout
    assert config.server_group_wait_seconds == 12.0
    assert config.ratios == AllocationRatios(cpu=16.0)
    assert (config.namespace, config.http_port) == ("ns1", 8081)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("VIRGA_SCHEDULER_WEIGHER", "random", "must be spread or pack"),
        ("VIRGA_HEARTBEAT_TIMEOUT", "soon", "must be a number"),
        ("VIRGA_HEARTBEAT_TIMEOUT", "0", "heartbeat_timeout_seconds must be positive"),
        ("VIRGA_SCHEDULER_MAX_ATTEMPTS", "0", "max_attempts must be at least 1"),
        ("VIRGA_RAM_ALLOCATION_RATIO", "-1", "ram must not be negative"),
    ],
)
def test_a_bad_setting_stops_the_process_naming_it(name: str, value: str, message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        SchedulerConfig.from_env({name: value})


def test_the_service_reads_api_compute_network_and_storage_and_writes_its_own_topic() -> None:
    service = definition(SchedulerConfig(namespace="ns1"))
    assert service.name == "scheduler"
    # network: the agents' answers to the steps of a live migration; storage: the fence of
    # an evacuation, a resize's grow
    assert service.input_topics == ("ns1.api", "ns1.compute", "ns1.network", "ns1.storage")
    assert service.output_topic == "ns1.scheduler"
    assert service.tick is not None


@pytest.mark.parametrize(
    "module",
    [
        "config",
        "core.model",
        "core.fold",
        "core.decide",
        "core.snapshot",
        "service",
        "main",
        "__main__",
    ],
)
def test_each_service_module_imports_alone(module: str) -> None:
    name = f"virga_scheduler.{module}"
    subprocess.run([sys.executable, "-c", f"import {name}"], check=True, timeout=60)
