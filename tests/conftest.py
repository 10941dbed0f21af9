"""Session-wide fixtures, among them the Kafka broker that tests marked ``kafka`` talk to."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import hang_report
from virga_devstack import libvirt as libvirt_daemon
from virga_devstack.ceph import CephCluster, CephError
from virga_devstack.kafka import KafkaBroker
from virga_devstack.kafka_jars import KafkaBrokerError
from virga_storage.drivers.rbd import RbdDriver


@pytest.fixture(scope="session")
def libvirtd() -> Iterator[None]:
    """The system libvirtd (qemu:///system) for tests of real guests: started if it is not
    running, and then stopped at session end (never per module, so one module's end cannot
    take the daemon from under another's guests)."""
    started = libvirt_daemon.start()
    try:
        yield
    finally:
        if started:
            libvirt_daemon.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a broker on ``$VIRGA_TEST_KAFKA_PORT`` (19192), stopped at session end.

    Its data is wiped first. With ``VIRGA_TEST_KAFKA_REUSE=1`` a broker already running on that
    port is used as it is, data included, and left running. Never skipped: when the broker
    cannot start, every test that needs it fails with the broker's log.
    """
    broker = KafkaBroker(int(os.environ.get("VIRGA_TEST_KAFKA_PORT", "19192")))
    reuse = os.environ.get("VIRGA_TEST_KAFKA_REUSE") == "1"
    failure = ""
    try:
        started = broker.start(fresh=not reuse)
    except KafkaBrokerError as error:
        failure = str(error)  # reported outside the handler, without a chained traceback
    if failure:
        pytest.fail(f"the test Kafka broker did not start: {failure}", pytrace=False)
    try:
        yield broker.bootstrap_servers
    finally:
        if started:
            broker.stop()


@pytest.fixture(scope="session")
def ceph_cluster() -> Iterator[CephCluster]:
    """A one-OSD Ceph cluster with monitor port ``$VIRGA_TEST_CEPH_PORT`` (16789).

    A cluster already running on that port is used as it is and left running; one this
    session starts is new and empty, and stopped at session end. Never skipped: when Ceph is
    missing or cannot start, every test that needs it fails saying why.
    """
    cluster = CephCluster(int(os.environ.get("VIRGA_TEST_CEPH_PORT", "16789")))
    failure = ""
    try:
        started = cluster.start()
    except CephError as error:
        failure = str(error)  # reported outside the handler, without a chained traceback
    if failure:
        pytest.fail(f"the test Ceph cluster did not start: {failure}", pytrace=False)
    try:
        yield cluster
    finally:
        if started:
            cluster.stop()


@pytest.fixture
async def ceph_pool(ceph_cluster: CephCluster) -> AsyncIterator[RbdDriver]:
    """The test's own connection to the test cluster's pool, to look at what a stack left."""
    driver = RbdDriver(ceph_cluster.conf_file, ceph_cluster.keyring, ceph_cluster.pool)
    await driver.connect()
    try:
        yield driver
    finally:
        await driver.close()


REAL_COMPONENTS = ("integration", "e2e")
"""The directories under tests/ whose tests drive real Kafka, Ceph, libvirt, netlink or a
browser; each of their tests gets one rerun after a failure (README, "Tests")."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One rerun for a test against real components, never for a unit test: timing on two
    noisy cores can fail such a test once; a regression fails it twice. A rerun is listed in
    the summary's "reruns" section, as a flake to fix."""
    tests = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(tests).parts
        if parts[0] in REAL_COMPONENTS and item.get_closest_marker("flaky") is None:
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))


@pytest.hookimpl
def pytest_timeout_set_timer(item: pytest.Item, settings: object) -> None:
    """Print every thread's and task's stack shortly before a test times out
    (tests/support/hang_report.py); pytest-timeout still sets its own timer."""
    hang_report.arm(item, settings)


@pytest.hookimpl
def pytest_timeout_cancel_timer(item: pytest.Item) -> None:
    hang_report.disarm(item)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Tests that passed only on their rerun, and hangs that tests survived
    (`hang_report.note`), with their stacks."""
    failed = {report.nodeid for report in terminalreporter.stats.get("failed", [])}
    flakes = [r for r in terminalreporter.stats.get("rerun", []) if r.nodeid not in failed]
    if flakes:
        terminalreporter.section("passed on their rerun: flakes to fix")
        for report in flakes:
            crash = getattr(report.longrepr, "reprcrash", None)
            terminalreporter.write_line(
                f"{report.nodeid} ({report.when}): {crash or report.longrepr}"
            )
    if hang_report.noted:
        terminalreporter.section("hangs survived")
        for text in hang_report.noted:
            terminalreporter.write(text)
