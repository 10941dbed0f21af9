"""How QEMU on this host reaches Ceph: monitors, pool and cephx identity, read from the environment.

Volumes are opened by QEMU's librbd, not by the agent, so the agent needs no Ceph bindings: it
only names the monitors and the pool in each disk's XML and, when the cluster uses cephx,
gives libvirt the user's key once as a secret the disks refer to by UUID (as Nova does with
`rbd_secret_uuid`).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from virga_compute.core.spec import CephMonitor, RbdSource
from virga_events.catalog.storage import rbd_volume_name

DEFAULT_CONF = "/etc/ceph/ceph.conf"
# Fixed forever: changing it would give the same cluster and user a new libvirt secret UUID.
_SECRET_NAMESPACE = uuid.UUID("0d6f3d2e-2b47-4c5e-8a0e-5b7e9f1c2a64")


@dataclass(frozen=True, slots=True)
class CephSecret:
    """A cephx key for libvirt to hand QEMU; never written to a log or an event."""

    uuid: str
    """UUID of the libvirt secret (`RbdSource.secret_uuid`)."""
    user: str
    """cephx user without 'client.'."""
    key: bytes
    """The raw key (the keyring holds it base64-encoded)."""

    def __repr__(self) -> str:
        return f"CephSecret(uuid={self.uuid!r}, user={self.user!r}, key=<hidden>)"


@dataclass(frozen=True, slots=True)
class CephSettings:
    """Where this host's guests find their volumes."""

    monitors: tuple[CephMonitor, ...]
    pool: str = "rbd"
    user: str | None = "admin"
    """cephx user; None when the cluster runs without authentication."""
    secret_uuid: str | None = None
    """UUID of the libvirt secret holding the user's key; set exactly when `user` is."""
    keyring: str | None = None
    """File the user's key is read from when the secret is defined."""

    def __post_init__(self) -> None:
        # Validates monitors, pool and the user/secret pairing once, at start.
        self.source("probe")

    def source(self, volume_id: str) -> RbdSource:
        """The RBD source of a volume."""
        return RbdSource(
            pool=self.pool,
            image=rbd_volume_name(volume_id),
            monitors=self.monitors,
            auth_user=self.user,
            secret_uuid=self.secret_uuid,
        )

    def secret(self) -> CephSecret | None:
        """The user's key from the keyring, for libvirt; None without cephx.

        Raises ValueError naming the keyring when the key cannot be read.
        """
        if self.user is None or self.secret_uuid is None:
            return None
        if self.keyring is None:
            raise ValueError(f"no keyring for client.{self.user}")
        try:
            text = Path(self.keyring).read_text()
        except OSError as exc:
            raise ValueError(f"cannot read keyring {self.keyring}: {exc}") from None
        key = keyring_key(text, f"client.{self.user}")
        if key is None:
            raise ValueError(f"keyring {self.keyring} has no key for client.{self.user}")
        return CephSecret(self.secret_uuid, self.user, key)


def parse_conf(text: str) -> dict[str, str]:
    """The [global] and [client] options of a ceph.conf, names normalised ('mon_host')."""
    options: dict[str, str] = {}
    section = "global"
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        name, sep, value = line.partition("=")
        if sep and section in ("global", "client"):
            options["_".join(name.strip().replace("_", " ").split())] = value.strip()
    return options


def _split_top(text: str) -> list[str]:
    """Split on commas and blanks outside brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "[") - (char == "]")
        if depth == 0 and (char == "," or char.isspace()):
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part]


def _address(text: str) -> tuple[str, str, int]:
    """(protocol, host, port) of `v1:h:p`, `h:p`, `h`, `[::1]:p`; a '/nonce' is dropped."""
    protocol = ""
    if text[:3] in ("v1:", "v2:"):
        protocol, text = text[:2], text[3:]
    text = text.split("/", 1)[0]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if port and not port.isdigit():
        raise ValueError(f"bad monitor address {text!r}")
    return protocol, host, int(port) if port else 6789


def parse_mon_host(value: str) -> tuple[CephMonitor, ...]:
    """Monitors of a `mon host` value, one msgr v1 address each (what librbd in QEMU uses)."""
    monitors: list[CephMonitor] = []
    for group in _split_top(value):
        vector = group.startswith("[") and group[1:3] in ("v1", "v2")
        addresses = [_address(a) for a in _split_top(group[1:-1] if vector else group)]
        v1 = [a for a in addresses if a[0] != "v2"] or addresses
        _, host, port = v1[0]
        monitors.append(CephMonitor(host, port))
    return tuple(monitors)


def keyring_key(text: str, entity: str) -> bytes | None:
    """The decoded `key` of `entity` (e.g. 'client.admin') in a keyring file, or None."""
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == entity and line.partition("=")[0].strip() == "key":
            try:
                return base64.b64decode(line.partition("=")[2].strip(), validate=True)
            except binascii.Error:
                return None
    return None


def default_user(host: str) -> str:
    """The cephx user of `host`'s compute agent, as the operator's `virga host add` makes it:
    one per host with `profile rbd` on the pool, so no agent holds `client.admin`'s key."""
    if not host:
        raise ValueError("VIRGA_CEPH_USER: name the cephx user, or VIRGA_HOST for its default")
    return f"virga-compute-{host}"


def default_secret_uuid(cluster: str, user: str) -> str:
    """A stable secret UUID for one cluster (fsid or monitors) and user."""
    return str(uuid.uuid5(_SECRET_NAMESPACE, f"{cluster}/{user}"))


def settings_from_env(env: Mapping[str, str]) -> CephSettings | None:
    """Read VIRGA_CEPH_CONF (default /etc/ceph/ceph.conf), VIRGA_CEPH_MONITORS (host:port
    list; default the conf's `mon host`), VIRGA_CEPH_POOL (rbd), VIRGA_CEPH_USER (default
    `virga-compute-<VIRGA_HOST>`, never `admin` unless named; `none` without cephx, also
    when the conf says `auth client required = none`),
    VIRGA_CEPH_KEYRING (default the conf's keyring) and VIRGA_CEPH_SECRET_UUID.

    None when no monitor is known: the host then runs only instances without volumes.
    Raises ValueError naming a bad setting.
    """
    conf_path = env.get("VIRGA_CEPH_CONF") or DEFAULT_CONF
    try:
        conf = parse_conf(Path(conf_path).read_text())
    except FileNotFoundError:
        if env.get("VIRGA_CEPH_CONF"):
            raise ValueError(f"VIRGA_CEPH_CONF {conf_path} does not exist") from None
        conf = {}
    except OSError as exc:
        raise ValueError(f"cannot read {conf_path}: {exc}") from None
    monitors = parse_mon_host(env.get("VIRGA_CEPH_MONITORS") or conf.get("mon_host", ""))
    if not monitors:
        return None
    user: str | None = env.get("VIRGA_CEPH_USER") or None
    if user == "none" or conf.get("auth_client_required") == "none":
        user = None
    elif user is None:
        user = default_user(env.get("VIRGA_HOST", ""))
    secret_uuid = None
    if user is not None:
        cluster = conf.get("fsid") or ",".join(f"{m.host}:{m.port}" for m in monitors)
        secret_uuid = env.get("VIRGA_CEPH_SECRET_UUID") or default_secret_uuid(cluster, user)
    keyring = env.get("VIRGA_CEPH_KEYRING") or conf.get("keyring")
    if user is not None:
        keyring = keyring or "/etc/ceph/$cluster.$name.keyring"
        # Ceph's own metavariables, as a client of the default cluster expands them.
        keyring = keyring.split(",")[0].strip()
        keyring = keyring.replace("$cluster", "ceph").replace("$name", f"client.{user}")
    return CephSettings(
        monitors=monitors,
        pool=env.get("VIRGA_CEPH_POOL") or "rbd",
        user=user,
        secret_uuid=secret_uuid,
        keyring=keyring,
    )
