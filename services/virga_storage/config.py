"""How the storage service is set up: its Ceph pool, clone depth bound and topics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from virga_runtime.env import DEFAULT_NAMESPACE, Env
from virga_storage.qemu_img import QemuImgLimits

MEMORY_CONF = "memory://"
"""`VIRGA_CEPH_CONF` value that selects the in-process driver (tests, demos)."""


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Settings of the storage service (one per cloud)."""

    ceph_conf: str = "/etc/ceph/ceph.conf"
    """Cluster conf file; `memory://` keeps volumes in process."""
    ceph_keyring: str = "/etc/ceph/ceph.client.virga-storage.keyring"
    ceph_user: str = "virga-storage"
    """Its cephx user (`client.<user>`): `mon 'profile rbd'`, `osd 'profile rbd pool=<pool>'`;
    never `admin`."""
    ceph_pool: str = "rbd"
    """The one pool holding images and volumes."""
    ceph_op_timeout_seconds: int = 30
    """How long one Ceph operation may wait for a monitor or OSD before it fails as
    `StorageUnavailable` (librados would wait for ever on a stopped OSD)."""
    max_clone_depth: int = 5
    """A clone deeper than this is flattened in the background (reads stay fast)."""
    http_port: int | None = None
    """Port for /healthz, /metrics and the internal image upload endpoint; None serves
    nothing (and images cannot be uploaded)."""
    image_max_bytes: int = 20 << 30
    """Largest image accepted, uploaded bytes and size once converted to raw alike."""
    image_max_virtual_bytes: int | None = None
    """Largest virtual size a qcow2 upload may declare (judged from its header, before qemu
    runs); None: `image_max_bytes`."""
    max_imports: int = 2
    """Image imports this host runs at once; a further one waits `import_wait_seconds`."""
    import_wait_seconds: float = 30.0
    """How long an upload waits for an import slot before it is refused (503)."""
    spool_max_bytes: int = 64 << 30
    """Spool disk all imports in flight may hold together (uploads and their raw copies)."""
    qemu_img_timeout_seconds: float = 600.0
    """Wall-clock and CPU-seconds limit of one qemu-img run."""
    qemu_img_memory_bytes: int = 2 << 30
    """Address-space limit of one qemu-img run."""
    image_sandbox: bool = True
    """Run qemu-img under bwrap, seeing only /usr and the upload's directory."""
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
        if self.max_virtual_bytes < 1 or self.max_imports < 1 or self.spool_max_bytes < 1:
            raise ValueError(
                "image_max_virtual_bytes, max_imports and spool_max_bytes must be positive"
            )
        if self.qemu_img_timeout_seconds <= 0 or self.qemu_img_memory_bytes < 1 << 26:
            raise ValueError("qemu_img_timeout_seconds must be positive, its memory >= 64 MiB")
        if self.ceph_op_timeout_seconds <= 0:
            raise ValueError("ceph_op_timeout_seconds must be positive")
        if not self.ceph_pool:
            raise ValueError("ceph_pool must not be empty")

    @property
    def max_virtual_bytes(self) -> int:
        """The virtual-size limit in force."""
        return self.image_max_virtual_bytes or self.image_max_bytes

    @property
    def qemu_img_limits(self) -> QemuImgLimits:
        return QemuImgLimits(
            timeout_seconds=self.qemu_img_timeout_seconds,
            memory_bytes=self.qemu_img_memory_bytes,
            sandbox=self.image_sandbox,
        )

    @property
    def in_memory(self) -> bool:
        return self.ceph_conf.startswith(MEMORY_CONF)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageConfig:
        """Read VIRGA_CEPH_CONF, VIRGA_CEPH_KEYRING, VIRGA_CEPH_USER, VIRGA_CEPH_POOL,
        VIRGA_CEPH_OP_TIMEOUT, VIRGA_MAX_CLONE_DEPTH,
        VIRGA_IMAGE_MAX_BYTES, VIRGA_IMAGE_MAX_VIRTUAL_SIZE, VIRGA_IMAGE_MAX_IMPORTS,
        VIRGA_IMAGE_IMPORT_WAIT, VIRGA_IMAGE_SPOOL_MAX_BYTES, VIRGA_QEMU_IMG_TIMEOUT,
        VIRGA_QEMU_IMG_MEMORY, VIRGA_IMAGE_SANDBOX (`bwrap` or `none`),
        VIRGA_IMAGE_UPLOAD_TIMEOUT, VIRGA_IMAGE_SPOOL_DIR, VIRGA_HTTP_PORT and
        VIRGA_NAMESPACE; raise SystemExit naming a bad one."""
        env = Env(environ)
        defaults = cls()
        try:
            return cls(
                ceph_conf=env.text("VIRGA_CEPH_CONF") or defaults.ceph_conf,
                ceph_keyring=env.text("VIRGA_CEPH_KEYRING") or defaults.ceph_keyring,
                ceph_user=env.text("VIRGA_CEPH_USER") or defaults.ceph_user,
                ceph_pool=env.text("VIRGA_CEPH_POOL") or defaults.ceph_pool,
                ceph_op_timeout_seconds=env.whole(
                    "VIRGA_CEPH_OP_TIMEOUT", defaults.ceph_op_timeout_seconds
                ),
                max_clone_depth=env.whole("VIRGA_MAX_CLONE_DEPTH", defaults.max_clone_depth),
                image_max_bytes=env.whole("VIRGA_IMAGE_MAX_BYTES", defaults.image_max_bytes),
                upload_timeout_seconds=env.whole(
                    "VIRGA_IMAGE_UPLOAD_TIMEOUT", defaults.upload_timeout_seconds
                ),
                image_max_virtual_bytes=env.whole("VIRGA_IMAGE_MAX_VIRTUAL_SIZE", 0) or None,
                max_imports=env.whole("VIRGA_IMAGE_MAX_IMPORTS", defaults.max_imports),
                import_wait_seconds=env.number(
                    "VIRGA_IMAGE_IMPORT_WAIT", defaults.import_wait_seconds
                ),
                spool_max_bytes=env.whole("VIRGA_IMAGE_SPOOL_MAX_BYTES", defaults.spool_max_bytes),
                qemu_img_timeout_seconds=env.number(
                    "VIRGA_QEMU_IMG_TIMEOUT", defaults.qemu_img_timeout_seconds
                ),
                qemu_img_memory_bytes=env.whole(
                    "VIRGA_QEMU_IMG_MEMORY", defaults.qemu_img_memory_bytes
                ),
                image_sandbox=_sandbox(env.text("VIRGA_IMAGE_SANDBOX") or "bwrap"),
                spool_dir=env.text("VIRGA_IMAGE_SPOOL_DIR") or None,
                http_port=env.port("VIRGA_HTTP_PORT"),
                namespace=env.namespace(),
            )
        except ValueError as exc:
            raise SystemExit(f"bad storage setting: {exc}") from None


def _sandbox(value: str) -> bool:
    if value not in ("bwrap", "none"):
        raise ValueError(f"VIRGA_IMAGE_SANDBOX must be bwrap or none, not {value!r}")
    return value == "bwrap"
