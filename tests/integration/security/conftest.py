"""A local broker with SASL/SCRAM and ACLs on, for the tests of this folder."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from virga_devstack.kafka_jars import KafkaBrokerError
from virga_devstack.kafka_security import SecureKafkaBroker


@pytest.fixture(scope="session")
def secure_broker() -> Iterator[SecureKafkaBroker]:
    """A fresh secure broker on ``$VIRGA_TEST_KAFKA_SECURE_PORT`` (default: the test broker's
    port + 10), stopped at session end. Never skipped: a broker that cannot start fails."""
    default = int(os.environ.get("VIRGA_TEST_KAFKA_PORT", "19192")) + 10
    broker = SecureKafkaBroker(int(os.environ.get("VIRGA_TEST_KAFKA_SECURE_PORT", default)))
    failure = ""
    try:
        broker.start(fresh=True)
    except KafkaBrokerError as error:
        failure = str(error)
    if failure:
        pytest.fail(f"the secure test Kafka broker did not start: {failure}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()
