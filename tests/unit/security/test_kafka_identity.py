"""Kafka identities from the environment, and the ACLs derived from topic ownership."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from virga_billing.config import BillingConfig
from virga_billing.service import definition as billing
from virga_compute.config import ComputeConfig
from virga_compute.drivers.memory import MemoryComputeDriver as MemoryCompute
from virga_compute.service import definition as compute
from virga_eventlog import SERVICES, KafkaSettings, event_topic
from virga_eventlog.acls import (
    CONSUMES,
    CONTROLLERS,
    AclBinding,
    Operation,
    PatternType,
    ResourceType,
    auditor_acls,
    host_acls,
    service_acls,
    virga_acls,
)
from virga_eventlog.settings import KafkaSettingsError
from virga_gateway.config import GatewayConfig
from virga_gateway.service import definition as gateway
from virga_network.agent.config import NetworkAgentConfig
from virga_network.agent.drivers.memory import MemoryNetworkDriver as MemoryNetwork
from virga_network.agent.service import definition as network_agent
from virga_network.config import NetworkConfig
from virga_network.service import definition as network
from virga_runtime import ServiceDefinition
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.service import definition as scheduler
from virga_storage.config import StorageConfig
from virga_storage.drivers.memory import MemoryStorageDriver as MemoryStorage
from virga_storage.service import definition as storage

SASL = {
    "VIRGA_KAFKA_BOOTSTRAP": "kafka-1:9093,kafka-2:9093",
    "VIRGA_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "VIRGA_KAFKA_USERNAME": "scheduler",
}


def test_nothing_set_means_plaintext_as_the_dev_stack_runs() -> None:
    settings = KafkaSettings.from_env("virga-scheduler", environ={})
    assert settings.client_kwargs() == {"bootstrap_servers": "127.0.0.1:9092"}


def test_sasl_identity_from_a_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "scheduler.password"
    secret.write_text("s3cret\n")
    env = {**SASL, "VIRGA_KAFKA_PASSWORD_FILE": str(secret), "VIRGA_KAFKA_PASSWORD": "ignored"}
    assert KafkaSettings.from_env(environ=env).client_kwargs() == {
        "bootstrap_servers": "kafka-1:9093,kafka-2:9093",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",  # the default mechanism
        "sasl_plain_username": "scheduler",
        "sasl_plain_password": "s3cret",
    }


def test_sasl_ssl_verifies_the_broker_with_a_context() -> None:
    env = {**SASL, "VIRGA_KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "VIRGA_KAFKA_PASSWORD": "pw"}
    security = KafkaSettings.from_env(environ=env).security
    assert security["security_protocol"] == "SASL_SSL"
    assert security["ssl_context"].check_hostname  # not a context that trusts anyone


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({**SASL, "VIRGA_KAFKA_SECURITY_PROTOCOL": "SASL"}, "VIRGA_KAFKA_SECURITY_PROTOCOL"),
        ({**SASL, "VIRGA_KAFKA_PASSWORD": "pw", "VIRGA_KAFKA_SASL_MECHANISM": "MD5"}, "MECHANISM"),
        ({**SASL, "VIRGA_KAFKA_USERNAME": "", "VIRGA_KAFKA_PASSWORD": "x"}, "USERNAME"),
        (SASL, "VIRGA_KAFKA_PASSWORD"),
        ({**SASL, "VIRGA_KAFKA_PASSWORD_FILE": "/nonexistent/pw"}, "PASSWORD_FILE"),
        ({**SASL, "VIRGA_KAFKA_SECURITY_PROTOCOL": "SSL", "VIRGA_KAFKA_SSL_CAFILE": "/no"}, "TLS"),
    ],
)
def test_half_configured_security_fails_at_start_naming_the_variable(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(KafkaSettingsError, match=named):
        KafkaSettings.from_env(environ=env)


def definitions(namespace: str) -> dict[str, ServiceDefinition[object]]:
    built: dict[str, ServiceDefinition[object]] = {
        "gateway": gateway(GatewayConfig(admin_token="t", token_secret=b"k"), namespace),  # type: ignore[dict-item]
        "scheduler": scheduler(SchedulerConfig(namespace=namespace)),  # type: ignore[dict-item]
        "compute": compute(ComputeConfig(host="h1", namespace=namespace), MemoryCompute()),  # type: ignore[dict-item]
        "storage": storage(StorageConfig(namespace=namespace), MemoryStorage()),  # type: ignore[dict-item]
        "network": network(NetworkConfig(namespace=namespace)),  # type: ignore[dict-item]
        "billing": billing(BillingConfig(namespace=namespace)),  # type: ignore[dict-item]
    }
    return built


def test_the_acl_table_matches_what_every_service_reads_and_writes() -> None:
    """A service that starts reading a new topic must be granted it (CONSUMES), or it would
    be refused on a secure cluster only."""
    assert set(CONSUMES) == set(SERVICES)
    built = definitions("ns")
    assert {s: d.output_topic for s, d in built.items()} == {
        s: event_topic(s, "ns") for s in SERVICES
    }
    reads = {s: sorted(d.input_topics) for s, d in built.items()}
    granted = {s: sorted(event_topic(o, "ns") for o in CONSUMES[s]) for s in SERVICES}
    assert reads == granted


def test_the_network_agents_read_nothing_their_service_is_not_granted() -> None:
    """Agents run as their service's user (`network`), beside its controller."""
    agent = network_agent(
        NetworkAgentConfig(host="h1", vtep_ip="192.0.2.1", namespace="ns"), MemoryNetwork()
    )
    assert agent.output_topic == event_topic("network", "ns")
    assert set(agent.input_topics) <= {event_topic(o, "ns") for o in CONSUMES["network"]}


def test_each_service_may_write_only_its_own_three_topics() -> None:
    for service in CONTROLLERS:
        writes = {
            acl.resource_name
            for acl in service_acls(service, "ns")
            if acl.operation is Operation.WRITE and acl.resource_type is ResourceType.TOPIC
        }
        own = "ns.api" if service == "gateway" else f"ns.{service}"
        assert writes == {own, f"ns.snapshots.{service}", f"ns.deadletter.{service}"}
        assert all(acl.principal == f"User:{service}" for acl in service_acls(service, "ns"))


def test_transactional_ids_and_groups_are_the_services_own_prefix() -> None:
    acls = service_acls("scheduler", "ns")
    prefixed = {
        (a.resource_type, a.resource_name, a.operation)
        for a in acls
        if a.pattern is PatternType.PREFIXED
    }
    assert prefixed == {
        (ResourceType.TRANSACTIONAL_ID, "ns-scheduler", Operation.WRITE),
        (ResourceType.TRANSACTIONAL_ID, "ns-scheduler", Operation.DESCRIBE),
        (ResourceType.GROUP, "ns-scheduler", Operation.READ),
        (ResourceType.GROUP, "ns-scheduler", Operation.DESCRIBE),
        # every compute and network host's event topic, to read only (the network agents
        # answer a live migration's steps)
        (ResourceType.TOPIC, "ns.compute.", Operation.READ),
        (ResourceType.TOPIC, "ns.compute.", Operation.DESCRIBE),
        (ResourceType.TOPIC, "ns.compute.", Operation.DESCRIBE_CONFIGS),
        (ResourceType.TOPIC, "ns.network.", Operation.READ),
        (ResourceType.TOPIC, "ns.network.", Operation.DESCRIBE),
        (ResourceType.TOPIC, "ns.network.", Operation.DESCRIBE_CONFIGS),
    }
    # Nothing on the cluster resource: no service may create ACLs, users or alter configs.
    assert not [a for a in virga_acls("ns") if a.resource_type is ResourceType.CLUSTER]


def test_the_auditor_only_reads() -> None:
    assert Counter(a.operation for a in auditor_acls("ns")) == {
        Operation.READ: 1,
        Operation.DESCRIBE: 1,
    }
    assert str(auditor_acls("ns")[0]) == "User:auditor READ TOPIC:ns.*"


def test_an_unknown_service_gets_no_acls() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        service_acls("mallory")


def test_each_agent_host_has_its_own_users_with_exactly_its_own_transactional_ids() -> None:
    """h1's users may open `ns-compute-h1` and `ns-network-h1` only (literal): not h2's, not
    the network controller's `ns-network`, which the controller alone may open."""
    acls = host_acls("h1", "ns")
    assert {a.principal for a in acls} == {"User:compute-h1", "User:network-h1"}
    ids = {
        (a.principal, a.resource_name, a.pattern)
        for a in acls
        if a.resource_type in (ResourceType.TRANSACTIONAL_ID, ResourceType.GROUP)
    }
    assert ids == {
        ("User:compute-h1", "ns-compute-h1", PatternType.LITERAL),
        ("User:network-h1", "ns-network-h1", PatternType.LITERAL),
    }
    controller = service_acls("network", "ns")
    assert {
        (a.resource_name, a.pattern)
        for a in controller
        if a.resource_type is ResourceType.TRANSACTIONAL_ID
    } == {("ns-network", PatternType.LITERAL)}
    assert "compute" not in CONTROLLERS  # no user may open every compute host's id
    assert not [a for a in virga_acls("ns") if "compute" in a.principal]


def test_a_hosts_snapshots_are_a_topic_only_its_agent_writes() -> None:
    writes = {
        (a.principal, a.resource_name)
        for a in host_acls("h1", "ns") + host_acls("h2", "ns") + virga_acls("ns")
        if a.operation is Operation.WRITE and "snapshots" in a.resource_name
    }
    assert ("User:compute-h1", "ns.snapshots.compute.h1") in writes
    assert [w for w in writes if w[1] == "ns.snapshots.compute.h1"] == [
        ("User:compute-h1", "ns.snapshots.compute.h1")
    ]
    assert not [w for w in writes if w[1] == "ns.snapshots.compute"]


def test_a_hosts_events_are_a_topic_only_its_agent_writes_and_everyone_reads() -> None:
    """h1's agents write `ns.compute.h1` / `ns.network.h1` only: not h2's, not the shared
    `ns.compute`, not the network controller's `ns.network`; every consumer of compute or
    network events reads every host's topic by prefix."""
    everything = host_acls("h1", "ns") + host_acls("h2", "ns") + virga_acls("ns")
    writes = {
        (a.principal, a.resource_name, a.pattern)
        for a in everything
        if a.operation is Operation.WRITE and a.resource_type is ResourceType.TOPIC
    }
    h1 = {(name, pattern) for principal, name, pattern in writes if principal.endswith("-h1")}
    assert h1 == {
        ("ns.compute.h1", PatternType.LITERAL),
        ("ns.network.h1", PatternType.LITERAL),
        ("ns.snapshots.compute.h1", PatternType.LITERAL),
        ("ns.snapshots.network.h1", PatternType.LITERAL),
        ("ns.deadletter.compute", PatternType.LITERAL),
        ("ns.deadletter.network", PatternType.LITERAL),
    }
    assert [w for w in writes if w[1] == "ns.compute.h1"] == [
        ("User:compute-h1", "ns.compute.h1", PatternType.LITERAL)
    ]
    assert not [w for w in writes if w[1] == "ns.compute"]
    assert [w[0] for w in writes if w[1] == "ns.network"] == ["User:network"]
    for service, owners in CONSUMES.items():
        readers = [f"User:{service}"] if service in CONTROLLERS else []
        readers += [f"User:{service}-h1"] if service in ("compute", "network") else []
        for owner in {*owners, service} & {"compute", "network"}:
            for reader in readers:
                assert (
                    AclBinding(
                        reader,
                        ResourceType.TOPIC,
                        f"ns.{owner}.",
                        PatternType.PREFIXED,
                        Operation.READ,
                    )
                    in everything
                ), (reader, owner)
