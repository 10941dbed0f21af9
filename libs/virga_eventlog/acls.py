"""Kafka ACLs derived from topic ownership: each service writes only its own topics.

One SCRAM user per service (its name: ``gateway``, ``scheduler``...) and one per agent host
(``compute-h1``, ``network-h1``). Each topic has one owning service, the only one that writes it
(docs/security.md); `service_acls` and `host_acls` turn that rule into ACL bindings for the
KRaft StandardAuthorizer:

- its event topic (an agent: its host's own `<ns>.<service>.<host>`), snapshot topic (an
  agent: its host's own) and dead-letter topic: WRITE, READ, DESCRIBE, CREATE,
  DESCRIBE_CONFIGS (to check their replication at start);
- every event topic it consumes (`CONSUMES`): READ, DESCRIBE, DESCRIBE_CONFIGS; for those of
  an agent service (and for its own if it is one) also every host's, by the prefix
  ``<ns>.<service>.`` (hosts added later included);
- its transactional id and consumer group (the runner's ``<ns>-<service>[-<host>]``):
  WRITE/DESCRIBE and READ/DESCRIBE, prefixed for a service without agents, literal for the
  network controller and for each agent.

`AUDITOR` may READ every topic of the namespace and write nothing. Anything not granted is
denied (``allow.everyone.if.no.acl.found=false``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import DescribeAclsRequest_v1
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from virga_eventlog.settings import KafkaSettings
from virga_eventlog.topics import AGENT_SERVICES as AGENT_SERVICES  # where it was defined
from virga_eventlog.topics import (
    SERVICES,
    dead_letter_topic,
    event_topic,
    host_topic,
    snapshot_topic,
)

CONSUMES: dict[str, tuple[str, ...]] = {
    "gateway": ("scheduler", "compute", "storage", "network", "billing"),
    "scheduler": ("gateway", "compute", "network", "storage"),
    "compute": ("scheduler", "gateway", "storage", "network"),
    "storage": ("gateway", "scheduler", "compute"),
    "network": ("gateway", "scheduler", "compute"),
    "billing": ("gateway", "scheduler", "compute", "storage", "network"),
}
"""Whose event topics each service reads: its `ServiceDefinition.input_topics`, by owner
(tests/unit/security checks the two agree)."""

AUDITOR = "auditor"
"""The read-only user of `virga audit`: every topic of the namespace, no writes."""


class ResourceType(IntEnum):
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5


class PatternType(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8
    DESCRIBE_CONFIGS = 10
    IDEMPOTENT_WRITE = 12


_ALLOW = 3


@dataclass(frozen=True, slots=True, order=True)
class AclBinding:
    """One ALLOW rule: `principal` may do `operation` on the resource from any host."""

    principal: str
    """``User:<name>``."""
    resource_type: ResourceType
    resource_name: str
    pattern: PatternType
    """LITERAL: exactly `resource_name`; PREFIXED: every name starting with it."""
    operation: Operation

    def __str__(self) -> str:
        star = "*" if self.pattern is PatternType.PREFIXED else ""
        return (
            f"{self.principal} {self.operation.name} "
            f"{self.resource_type.name}:{self.resource_name}{star}"
        )


def _grant(
    user: str,
    kind: ResourceType,
    name: str,
    operations: Iterable[Operation],
    pattern: PatternType = PatternType.LITERAL,
) -> list[AclBinding]:
    return [AclBinding(f"User:{user}", kind, name, pattern, op) for op in operations]


# AGENT_SERVICES (from `virga_eventlog.topics`): each host's agent has its own user
# (`host_user`), made when the operator adds the host (`virga_eventlog.hosts`); `compute` has no
# other process, so no user of its own, and the `network` user is the controller's alone.

CONTROLLERS = tuple(service for service in SERVICES if service != "compute")
"""Services with a single (non-agent) process, each its own user named after the service."""


def host_user(service: str, host: str) -> str:
    """The user of `service`'s agent on `host`: ``compute-h1``, ``network-h1``."""
    return f"{service}-{host}"


def _principal_acls(
    user: str,
    service: str,
    namespace: str,
    snapshots: str,
    runner_id: tuple[str, PatternType],
    consumes: dict[str, tuple[str, ...]],
    events: str = "",
) -> list[AclBinding]:
    """`events`: the event topic `user` writes, by default its service's."""
    events = events or event_topic(service, namespace)
    owned = (events, snapshots, dead_letter_topic(service, namespace))
    reader = (Operation.READ, Operation.DESCRIBE)
    # DESCRIBE_CONFIGS: a service checks at start that its topics are replicated enough.
    topic_writer = (Operation.WRITE, *reader, Operation.CREATE, Operation.DESCRIBE_CONFIGS)
    topic_reader = (*reader, Operation.DESCRIBE_CONFIGS)
    acls: list[AclBinding] = []
    for topic in owned:
        acls += _grant(user, ResourceType.TOPIC, topic, topic_writer)
    read = [owner for owner in consumes[service] if owner != service]
    for owner in (*read, service) if events != event_topic(service, namespace) else read:
        acls += _grant(user, ResourceType.TOPIC, event_topic(owner, namespace), topic_reader)
    for owner in (*read, service):
        if owner in AGENT_SERVICES:  # every host's topic, hosts added later included
            prefix = f"{event_topic(owner, namespace)}."
            acls += _grant(user, ResourceType.TOPIC, prefix, topic_reader, PatternType.PREFIXED)
    # The runner's transactional id and consumer group are both `<ns>-<service>[-<instance>]`.
    name, pattern = runner_id
    acls += _grant(
        user, ResourceType.TRANSACTIONAL_ID, name, (Operation.WRITE, Operation.DESCRIBE), pattern
    )
    acls += _grant(user, ResourceType.GROUP, name, reader, pattern)
    return sorted(acls)


def service_acls(
    service: str, namespace: str = "virga", consumes: dict[str, tuple[str, ...]] = CONSUMES
) -> list[AclBinding]:
    """What user `service` may do in `namespace`, and nothing else.

    A service without agents owns every transactional id and group prefixed ``<ns>-<service>``;
    the network controller only the literal ``<ns>-network``, as ``<ns>-network-<host>`` are
    its agents' (`host_acls`).
    """
    if service not in CONTROLLERS:
        raise ValueError(f"unknown service {service!r}; services with a user are {CONTROLLERS}")
    prefix = f"{namespace}-{service}"
    pattern = PatternType.LITERAL if service in AGENT_SERVICES else PatternType.PREFIXED
    return _principal_acls(
        service,
        service,
        namespace,
        snapshot_topic(service, namespace),
        (prefix, pattern),
        consumes,
    )


def host_acls(
    host: str, namespace: str = "virga", consumes: dict[str, tuple[str, ...]] = CONSUMES
) -> list[AclBinding]:
    """What the agents of `host` may do: write exactly their own event topic
    ``<ns>.<service>.<host>`` and snapshot topic (and their service's dead letters), read their
    service's shared topic and peers' topics, open exactly their transactional id and group
    ``<ns>-<service>-<host>`` (literal, so h1's user can neither open h2's id nor the network
    controller's)."""
    acls: list[AclBinding] = []
    for service in AGENT_SERVICES:
        runner_id = (f"{namespace}-{service}-{host}", PatternType.LITERAL)
        snapshots = snapshot_topic(service, namespace, host)
        user = host_user(service, host)
        events = host_topic(event_topic(service, namespace), host)
        acls += _principal_acls(user, service, namespace, snapshots, runner_id, consumes, events)
    return sorted(acls)


def auditor_acls(namespace: str = "virga") -> list[AclBinding]:
    return _grant(
        AUDITOR,
        ResourceType.TOPIC,
        f"{namespace}.",
        (Operation.READ, Operation.DESCRIBE),
        PatternType.PREFIXED,
    )


def virga_acls(namespace: str = "virga") -> list[AclBinding]:
    """Every binding a secure Virga deployment needs in `namespace` before its hosts are added
    (each host's are `host_acls`)."""
    acls = [acl for service in CONTROLLERS for acl in service_acls(service, namespace)]
    return acls + auditor_acls(namespace)


# -- creating them: CreateAcls v2 (flexible), as Kafka 4 removed v0-v1 that aiokafka has --


class _CreateAclsResponseV2(Response):  # type: ignore[misc]
    API_KEY = 30
    API_VERSION = 2
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _CreateAclsRequestV2(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 30
    API_VERSION = 2
    RESPONSE_TYPE = _CreateAclsResponseV2
    SCHEMA = Schema(
        (
            "creations",
            CompactArray(
                ("resource_type", Int8),
                ("resource_name", CompactString("utf-8")),
                ("resource_pattern_type", Int8),
                ("principal", CompactString("utf-8")),
                ("host", CompactString("utf-8")),
                ("operation", Int8),
                ("permission_type", Int8),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _CreateAcls(Request[_CreateAclsRequestV2]):  # type: ignore[misc]
    API_KEY = 30

    def __init__(self, acls: list[AclBinding]) -> None:
        self._acls = acls

    def build(self, request_struct_class: type[_CreateAclsRequestV2]) -> Any:
        creations: list[tuple[Any, ...]] = [
            (a.resource_type, a.resource_name, a.pattern, a.principal, "*", a.operation, _ALLOW, {})
            for a in self._acls
        ]
        return request_struct_class(creations, {})


class _DescribeAcls(Request[DescribeAclsRequest_v1]):  # type: ignore[misc]
    """Every binding on the broker (filter: any); v1, as aiokafka's v2 is not flexible."""

    API_KEY = 29

    def build(self, request_struct_class: type[DescribeAclsRequest_v1]) -> Any:
        return request_struct_class(1, None, 1, None, None, 1, 1)


async def create_acls(
    settings: KafkaSettings, acls: Iterable[AclBinding], wait_seconds: float = 30.0
) -> None:
    """Add `acls` (as a super user) and wait until every broker enforces them.

    Existing identical bindings are left as they are. The controller answers once the
    bindings are in the metadata log; brokers apply them a moment later, and a client that
    connects in between would be refused.
    """
    wanted = list(acls)
    admin = AIOKafkaAdminClient(**settings.client_kwargs(), client_id=f"{settings.client_id}-acl")
    await admin.start()
    try:
        response = await admin._send_to_controller(_CreateAcls(wanted))
        for acl, (code, message, _tags) in zip(wanted, response.results, strict=True):
            if code:
                raise for_code(code)(f"cannot create ACL {acl}: {message}")
        async with asyncio.timeout(wait_seconds):
            for broker in admin._client.cluster.brokers():
                while missing := set(wanted) - await _bindings(admin, broker.nodeId):
                    del missing
                    await asyncio.sleep(0.05)
    finally:
        await admin.close()


async def existing_acls(settings: KafkaSettings) -> set[AclBinding]:
    """Every ALLOW binding the cluster holds, as one broker enforces them (as a super user)."""
    admin = AIOKafkaAdminClient(**settings.client_kwargs(), client_id=f"{settings.client_id}-acl")
    await admin.start()
    try:
        broker = min(admin._client.cluster.brokers(), key=lambda node: node.nodeId)
        return await _bindings(admin, broker.nodeId)
    finally:
        await admin.close()


async def _bindings(admin: AIOKafkaAdminClient, node_id: int) -> set[AclBinding]:
    response = await admin._send_request_to_node(node_id, _DescribeAcls())
    if response.error_code:
        raise for_code(response.error_code)(f"cannot list ACLs: {response.error_message}")
    return {
        AclBinding(principal, ResourceType(kind), name, PatternType(pattern), Operation(operation))
        for kind, name, pattern, entries in response.resources
        for principal, _host, operation, permission in entries
        if permission == _ALLOW
        and kind in ResourceType._value2member_map_
        and pattern in PatternType._value2member_map_
        and operation in Operation._value2member_map_
    }
