"""The local broker with security on: TLS, SASL/SCRAM-SHA-512 users (one per service and per
agent host), and ACLs.

Clients connect over SASL_SSL, as a real deployment does: TLS with a private CA made for the
broker directory (`kafka_tls`), then SCRAM. The users exist before the broker first starts:
``kafka-storage format --add-scram`` writes their SCRAM credentials into the KRaft metadata.
The broker authorizes with KRaft's StandardAuthorizer and denies whatever no ACL allows.
``admin`` is the only super user: the broker itself (inter-broker and controller listeners)
and whoever creates topics and ACLs. Passwords are generated once per broker directory into
``credentials/<user>.password`` (mode 0600) and survive ``--fresh``.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any, Final

from virga_devstack.kafka import KafkaBroker, answers_metadata
from virga_devstack.kafka_jars import KafkaBrokerError
from virga_devstack.kafka_tls import BrokerTls, TlsError
from virga_eventlog import KafkaSettings
from virga_eventlog.acls import AUDITOR, CONTROLLERS
from virga_eventlog.hosts import AddedHost, add_host, host_users
from virga_eventlog.provision import provision

ADMIN: Final = "admin"
MECHANISM: Final = "SCRAM-SHA-512"
USERS: Final = (ADMIN, *CONTROLLERS, AUDITOR)
"""Made when the broker's storage is formatted; each agent host's users come with `add_host`."""


def _jaas(module: str, username: str, password: str, *extra: str) -> str:
    options = " ".join((f'username="{username}"', f'password="{password}"', *extra))
    return f"org.apache.kafka.common.security.{module} required {options};"


class SecureKafkaBroker(KafkaBroker):
    """A `KafkaBroker` whose client listener requires SCRAM and whose authorizer needs ACLs."""

    @property
    def credentials_dir(self) -> Path:
        return self.directory / "credentials"

    @property
    def tls(self) -> BrokerTls:
        """The broker's CA and keystore (made when the broker is first configured)."""
        return BrokerTls(self.directory / "tls")

    @staticmethod
    def is_secure(broker: KafkaBroker) -> bool:
        """Whether `broker`'s directory was set up by a secure broker (for stop/status)."""
        return (broker.directory / "credentials").is_dir()

    def password(self, user: str) -> str:
        """`user`'s password, generated on first use and kept in the broker's directory."""
        path = self.credentials_dir / f"{user}.password"
        if not path.exists():
            self.credentials_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24))
        return path.read_text().strip()

    def password_file(self, user: str) -> Path:
        """Where `user`'s password is kept (for ``VIRGA_KAFKA_PASSWORD_FILE``)."""
        self.password(user)
        return self.credentials_dir / f"{user}.password"

    def settings(self, user: str, namespace: str = "virga") -> KafkaSettings:
        """Client settings authenticating as `user`."""
        tls = {"security_protocol": "SSL", "ssl_context": self.tls.ensure().client_context()}
        encrypted = KafkaSettings(
            bootstrap_servers=self.bootstrap_servers, namespace=namespace, security=tls
        )
        return encrypted.as_user(user, self.password(user), MECHANISM)

    def environment(self, user: str) -> dict[str, str]:
        """The ``VIRGA_KAFKA_*`` variables a service process runs with as `user`."""
        return {
            "VIRGA_KAFKA_BOOTSTRAP": self.bootstrap_servers,
            "VIRGA_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "VIRGA_KAFKA_SSL_CAFILE": str(self.tls.ensure().ca_file),
            "VIRGA_KAFKA_SASL_MECHANISM": MECHANISM,
            "VIRGA_KAFKA_USERNAME": user,
            "VIRGA_KAFKA_PASSWORD_FILE": str(self.password_file(user)),
        }

    async def provision(self, namespace: str = "virga") -> None:
        """Create `namespace`'s topics and every service's ACLs, as the super user."""
        await provision(self.settings(ADMIN, namespace), partitions=6)

    async def add_host(self, host: str, namespace: str = "virga") -> AddedHost:
        """Add agent host `host` as an operator would (`virga_eventlog.hosts.add_host`): its
        users ``compute-<host>`` and ``network-<host>``, with passwords kept beside the
        others, their snapshot topics and ACLs."""
        passwords = {user: self.password(user) for user in host_users(host)}
        return await add_host(self.settings(ADMIN, namespace), host, passwords, MECHANISM)

    def _answers(self, timeout: float = 5.0) -> bool:
        return answers_metadata(self.bootstrap_servers, timeout, self._admin_security())

    def _admin_security(self) -> dict[str, Any]:
        return self.settings(ADMIN).security

    def _configure(self, libs: Path) -> None:
        marker = self.credentials_dir / "formatted"
        if (self.data_dir / "meta.properties").exists() and not marker.exists():
            # Its metadata holds no SCRAM users: not even the broker could log in.
            raise KafkaBrokerError(
                f"{self.data_dir} was formatted without security: start with --fresh"
            )
        try:
            self.tls.ensure()
        except TlsError as error:
            raise KafkaBrokerError(str(error)) from error
        super()._configure(libs)
        marker.touch()

    def _format_arguments(self) -> list[str]:
        arguments: list[str] = []
        for user in USERS:
            arguments += [
                "--add-scram",
                f"{MECHANISM}=[name={user},password={self.password(user)}]",
            ]
        return arguments

    def _server_properties(self) -> str:
        admin = self.password(ADMIN)
        plain = super()._server_properties().replace("PLAINTEXT://", "CLIENT://")
        tls = self.tls
        settings = {
            # Clients (and the broker to itself) over TLS; the controller listener stays on
            # loopback in clear, between the broker and its own controller.
            "listener.security.protocol.map": "CLIENT:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(tls.keystore),
            "ssl.keystore.password": tls.keystore_password,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tls.ca_file),
            "inter.broker.listener.name": "CLIENT",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            "listener.name.client.scram-sha-512.sasl.jaas.config": _jaas(
                "scram.ScramLoginModule", ADMIN, admin
            ),
            # SCRAM credentials live in the metadata the controller serves, so the controller
            # listener cannot use SCRAM itself: PLAIN with one static user, the broker.
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": _jaas(
                "plain.PlainLoginModule", ADMIN, admin, f'user_{ADMIN}="{admin}"'
            ),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN}",
            "allow.everyone.if.no.acl.found": "false",
        }
        kept = [line for line in plain.splitlines() if line.split("=", 1)[0] not in settings]
        return "".join(f"{line}\n" for line in kept) + "".join(
            f"{key}={value}\n" for key, value in settings.items()
        )


def provision_blocking(
    broker: SecureKafkaBroker, namespace: str, hosts: tuple[str, ...] = ()
) -> None:
    """`SecureKafkaBroker.provision`, then `add_host` for each of `hosts`, for the command
    line."""

    async def provision_all() -> None:
        await broker.provision(namespace)
        for host in hosts:
            await broker.add_host(host, namespace)

    asyncio.run(provision_all())
