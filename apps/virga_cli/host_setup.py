"""What an operator does to add a hypervisor, run on the operator's machine with the cluster's
admin credentials: the host's Kafka users, event and snapshot topics and ACLs
(`virga_eventlog.hosts`), its compute agent's cephx user with the least caps, and the settings
its agents start with.

The gateway has no part in it: no Virga service may create Kafka users, ACLs or cephx users,
so neither may any API route.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from virga_eventlog import KafkaSettings
from virga_eventlog.acls import AGENT_SERVICES, host_user
from virga_eventlog.hosts import add_host
from virga_eventlog.provision import host_passwords

DEFAULT_INSTALL_DIR = Path("/etc/virga")
"""Where the printed settings expect the host's files once copied there."""

_PASSED_ON = (
    "VIRGA_NAMESPACE",
    "VIRGA_KAFKA_BOOTSTRAP",
    "VIRGA_KAFKA_SECURITY_PROTOCOL",
)
"""The operator's Kafka settings an agent needs as they are (not the user, nor the password)."""


class CephxError(RuntimeError):
    """The `ceph` command failed or did not answer."""


def compute_cephx_user(host: str) -> str:
    """The cephx user of `host`'s compute agent (entity `client.virga-compute-<host>`): one per
    host, so one can be cut off alone."""
    return f"virga-compute-{host}"


def cephx_caps(pool: str, *, read_only: bool = False) -> tuple[str, ...]:
    """`mon 'profile rbd'` (read the maps, blocklist a dead client) and RBD on one pool only."""
    profile = "profile rbd-read-only" if read_only else "profile rbd"
    return ("mon", "profile rbd", "osd", f"{profile} pool={pool}")


def create_cephx_user(
    conf_file: Path,
    user: str,
    pool: str,
    keyring: Path,
    *,
    read_only: bool = False,
    admin_keyring: Path | None = None,
) -> Path:
    """Make `client.<user>` (if it is not there yet) with RBD caps on `pool` only, as the
    cluster's admin, and write its keyring to `keyring` (mode 0600); `keyring`."""
    command = ["ceph", "-c", str(conf_file), "--connect-timeout", "30"]
    if admin_keyring is not None:
        command += ["--keyring", str(admin_keyring)]
    command += ["auth", "get-or-create", f"client.{user}", *cephx_caps(pool, read_only=read_only)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired as error:
        raise CephxError(f"`ceph auth get-or-create client.{user}` timed out") from error
    except FileNotFoundError as error:
        raise CephxError("the `ceph` command is not installed") from error
    if result.returncode != 0:
        raise CephxError(
            f"`ceph auth get-or-create client.{user}` failed: {result.stderr.strip()[-500:]}"
        )
    keyring.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(keyring, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(result.stdout)
    return keyring


@dataclass(frozen=True, slots=True)
class CephTarget:
    """The cluster a host's compute agent will use, and how the operator reaches it."""

    conf_file: Path
    pool: str = "rbd"
    admin_keyring: Path | None = None


@dataclass(frozen=True, slots=True)
class HostSetup:
    """What `setup_host` made, and what to hand the host."""

    host: str
    namespace: str
    users: tuple[str, ...]
    topics_created: list[str]
    acls: int
    files: dict[Path, Path]
    """What to copy to the host: its path there, from the file here."""
    environment: dict[str, dict[str, str]] = field(default_factory=dict)
    """The settings of each agent of the host (`compute`, `network`)."""
    cephx_user: str | None = None


async def setup_host(
    settings: KafkaSettings,
    host: str,
    credentials: Path,
    ceph: CephTarget | None,
    install_dir: Path = DEFAULT_INSTALL_DIR,
) -> HostSetup:
    """Add `host` as `settings`' super user: its Kafka users (passwords in `credentials`,
    made where missing, kept where present), topics and ACLs, then its cephx user (unless
    `ceph` is None), its keyring written to `credentials` too. Running it again changes
    nothing but what is missing."""
    added = await add_host(settings, host, host_passwords(host, credentials))
    files = {
        install_dir / f"{user}.password": credentials / f"{user}.password" for user in added.users
    }
    agents = {}
    for service in AGENT_SERVICES:
        user = host_user(service, host)
        agents[service] = {
            **{name: os.environ[name] for name in _PASSED_ON if os.environ.get(name)},
            "VIRGA_NAMESPACE": settings.namespace,
            "VIRGA_HOST": host,
            "VIRGA_KAFKA_USERNAME": user,
            "VIRGA_KAFKA_PASSWORD_FILE": str(install_dir / f"{user}.password"),
        }
        if os.environ.get("VIRGA_KAFKA_USERNAME"):  # a secure cluster: its agents use SCRAM
            agents[service]["VIRGA_KAFKA_SASL_MECHANISM"] = "SCRAM-SHA-512"
        if cafile := os.environ.get("VIRGA_KAFKA_SSL_CAFILE"):
            agents[service]["VIRGA_KAFKA_SSL_CAFILE"] = str(install_dir / "kafka-ca.pem")
            files[install_dir / "kafka-ca.pem"] = Path(cafile)
    cephx = None
    if ceph is not None:
        cephx = compute_cephx_user(host)
        keyring = credentials / f"ceph.client.{cephx}.keyring"
        create_cephx_user(
            ceph.conf_file, cephx, ceph.pool, keyring, admin_keyring=ceph.admin_keyring
        )
        files[install_dir / keyring.name] = keyring
        agents["compute"] |= {
            "VIRGA_CEPH_POOL": ceph.pool,
            "VIRGA_CEPH_USER": cephx,
            "VIRGA_CEPH_KEYRING": str(install_dir / keyring.name),
        }
    return HostSetup(
        host=host,
        namespace=settings.namespace,
        users=added.users,
        topics_created=added.topics_created,
        acls=added.acls,
        files=files,
        environment=agents,
        cephx_user=cephx,
    )
