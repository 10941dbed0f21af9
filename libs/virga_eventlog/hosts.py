"""Adding an agent host to a secure cluster: its users, its snapshot topics, its ACLs.

Each host's compute and network agents authenticate as their own SCRAM users
(``compute-<host>``, ``network-<host>``, `host_user`), which may open exactly their own
transactional ids and write their own event and snapshot topics (`host_acls`). The operator
adds a host as the super user, before its agents first start: `add_host` creates the users in
the KRaft metadata (AlterUserScramCredentials, so no broker restart), the host's event and
snapshot topics and its ACLs, and waits until the broker enforces them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from virga_eventlog.acls import (
    AGENT_SERVICES,
    PatternType,
    ResourceType,
    create_acls,
    existing_acls,
    host_acls,
    host_user,
)
from virga_eventlog.settings import KafkaSettings
from virga_eventlog.topics import (
    ensure_topics,
    event_topic,
    host_topic_spec,
    instance_snapshot_spec,
)

HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
"""What a host may be called: its name is part of user, topic and transactional-id names."""

SCRAM_ITERATIONS = 8192
"""PBKDF2 rounds of a stored SCRAM credential (Kafka's minimum is 4096)."""

_MECHANISMS = {"SCRAM-SHA-256": (1, "sha256"), "SCRAM-SHA-512": (2, "sha512")}


def check_host_name(host: str) -> str:
    if not HOST_NAME.fullmatch(host):
        raise ValueError(
            f"host name {host!r}: letters, digits, '.', '_' and '-', starting with a letter or "
            "digit, at most 63 characters"
        )
    return host


def host_users(host: str) -> tuple[str, ...]:
    """The users of `host`'s agents, one per agent service."""
    check_host_name(host)
    return tuple(host_user(service, host) for service in AGENT_SERVICES)


@dataclass(frozen=True, slots=True)
class AddedHost:
    """What `add_host` did."""

    host: str
    users: tuple[str, ...]
    topics_created: list[str]
    acls: int


async def add_host(
    settings: KafkaSettings,
    host: str,
    passwords: Mapping[str, str],
    mechanism: str = "SCRAM-SHA-512",
) -> AddedHost:
    """Create (or reset the passwords of) `host`'s users, its event and snapshot topics and its
    ACLs, as the super user of `settings`; `passwords` maps each of `host_users(host)` to its
    password.
    Running it again for the same host changes nothing but the passwords given."""
    users = host_users(host)
    missing = set(users) - set(passwords)
    if missing:
        raise ValueError(f"no password for {sorted(missing)}")
    await upsert_scram_users(settings, {user: passwords[user] for user in users}, mechanism)
    created = await add_host_topics(settings, host)
    acls = host_acls(host, settings.namespace)
    # The users were written to the metadata log before the ACLs: once a broker enforces the
    # ACLs, it knows the users too.
    await create_acls(settings, acls)
    return AddedHost(host, users, created, len(acls))


async def add_host_topics(settings: KafkaSettings, host: str) -> list[str]:
    """Create `host`'s event and snapshot topics that do not exist yet; return those created.
    Services started after this read the host's events from their start; those already running
    find its topics on their next look (`virga_runtime.runner.HOST_TOPICS_SECONDS`)."""
    check_host_name(host)
    namespace = settings.namespace
    specs = [instance_snapshot_spec(service, namespace, host) for service in AGENT_SERVICES]
    specs += [host_topic_spec(event_topic(service, namespace), host) for service in AGENT_SERVICES]
    return await ensure_topics(settings, specs)


async def provisioned_hosts(settings: KafkaSettings) -> list[str]:
    """The hosts added to `settings`' namespace: those whose compute user may open its own
    transactional id (as a super user, who may list the ACLs)."""
    prefix = f"{settings.namespace}-compute-"
    hosts = set()
    for acl in await existing_acls(settings):
        host = acl.resource_name.removeprefix(prefix)
        if (
            acl.resource_type is ResourceType.TRANSACTIONAL_ID
            and acl.pattern is PatternType.LITERAL
            and acl.resource_name.startswith(prefix)
            and acl.principal == f"User:{host_user('compute', host)}"
        ):
            hosts.add(host)
    return sorted(hosts)


def new_password() -> str:
    return secrets.token_urlsafe(24)


# -- AlterUserScramCredentials v0 (flexible): aiokafka has no client for it --


class _AlterScramResponseV0(Response):  # type: ignore[misc]
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _AlterScramRequestV0(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _AlterScramResponseV0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("tags", TaggedFields),
            ),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _AlterScram(Request[_AlterScramRequestV0]):  # type: ignore[misc]
    API_KEY = 51

    def __init__(self, upsertions: list[tuple[Any, ...]]) -> None:
        self._upsertions = upsertions

    def build(self, request_struct_class: type[_AlterScramRequestV0]) -> Any:
        return request_struct_class([], self._upsertions, {})


def _upsertion(user: str, password: str, mechanism: str) -> tuple[Any, ...]:
    """SCRAM's SaltedPassword = Hi(password, salt, i) (RFC 5802): the broker keeps only the
    keys derived from it, and the password itself never leaves this process."""
    code, digest = _MECHANISMS[mechanism]
    salt = secrets.token_bytes(32)
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, SCRAM_ITERATIONS)
    return (user, code, SCRAM_ITERATIONS, salt, salted, {})


async def upsert_scram_users(
    settings: KafkaSettings, passwords: Mapping[str, str], mechanism: str = "SCRAM-SHA-512"
) -> None:
    """Create the SCRAM users of `passwords`, or set their passwords (as a super user)."""
    if mechanism not in _MECHANISMS:
        raise ValueError(f"SCRAM mechanism {mechanism!r}: expected one of {sorted(_MECHANISMS)}")
    upsertions = [_upsertion(user, pw, mechanism) for user, pw in sorted(passwords.items())]
    admin = AIOKafkaAdminClient(**settings.client_kwargs(), client_id=f"{settings.client_id}-scram")
    await admin.start()
    try:
        response = await admin._send_to_controller(_AlterScram(upsertions))
        for user, code, message, _tags in response.results:
            if code:
                raise for_code(code)(f"cannot set the SCRAM credential of {user}: {message}")
    finally:
        await admin.close()
