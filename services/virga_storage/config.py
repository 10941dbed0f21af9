"""How the storage service is set up: its Ceph pool, clone depth bound and topics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from virga_runtime.env import DEFAULT_NAMESPACE, Env

MEMORY_CONF = "memory://"
"""`VIRGA_CEPH_CONF` value that selects the in-process driver (tests, demos)."""


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Settings of the storage service (one per cloud)."""

    ceph_conf: str = "/etc/ceph/ceph.conf"
    """Cluster conf file; `memory://` keeps volumes in process."""
    ceph_keyring: str = "/etc/ceph/ceph.client.admin.keyring"
    ceph_pool: str = "rbd"
    """The one pool holding images and volumes."""
    max_clone_depth: int = 5
    """A clone deeper than this is flattened in the background (reads stay fast)."""
    http_port: int | None = None
    """Port for /healthz, /metrics and the internal image upload endpoint; None serves
    nothing (and images cannot be uploaded)."""
    image_max_bytes: int = 20 << 30
    """Largest image accepted, uploaded bytes and size once converted to raw alike."""
    upload_timeout_seconds: int = 3600
    """An image request without its bytes after this long is failed (the upload never came)."""
    spool_dir: str | None = None
    """Where uploads are staged before they go to the pool; None: the system's temp dir."""
    namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        if self.max_clone_depth < 1:
            raise ValueError("max_clone_depth must be at least 1")
        if self.image_max_bytes < 1 or self.upload_timeout_seconds < 1:
            raise ValueError("image_max_bytes and upload_timeout_seconds must be positive")
        if not self.ceph_pool:
            raise ValueError("ceph_pool must not be empty")

    @property
    def in_memory(self) -> bool:
        return self.ceph_conf.startswith(MEMORY_CONF)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageConfig:
        """Read VIRGA_CEPH_CONF, VIRGA_CEPH_KEYRING, VIRGA_CEPH_POOL, VIRGA_MAX_CLONE_DEPTH,
        VIRGA_IMAGE_MAX_BYTES, VIRGA_IMAGE_UPLOAD_TIMEOUT, VIRGA_IMAGE_SPOOL_DIR,
        VIRGA_HTTP_PORT and VIRGA_NAMESPACE; raise SystemExit naming a bad one."""
        env = Env(environ)
        defaults = cls()
        try:
            return cls(
                ceph_conf=env.text("VIRGA_CEPH_CONF") or defaults.ceph_conf,
                ceph_keyring=env.text("VIRGA_CEPH_KEYRING") or defaults.ceph_keyring,
                ceph_pool=env.text("VIRGA_CEPH_POOL") or defaults.ceph_pool,
                max_clone_depth=env.whole("VIRGA_MAX_CLONE_DEPTH", defaults.max_clone_depth),
                image_max_bytes=env.whole("VIRGA_IMAGE_MAX_BYTES", defaults.image_max_bytes),
                upload_timeout_seconds=env.whole(
                    "VIRGA_IMAGE_UPLOAD_TIMEOUT", defaults.upload_timeout_seconds
                ),
                spool_dir=env.text("VIRGA_IMAGE_SPOOL_DIR") or None,
                http_port=env.port("VIRGA_HTTP_PORT"),
                namespace=env.namespace(),
            )
        except ValueError as exc:
            raise SystemExit(f"bad storage setting: {exc}") from None
