"""The Ceph connection under `RbdDriver`: the cluster handle, the driver's one thread, the
mapping of Ceph's errors to Virga's, and fencing other clients of an image.

Threading: every librados/librbd call runs on one thread owned by the driver (a
single-worker executor), never on the event loop and not on `asyncio.to_thread`'s shared
pool. The bindings block for as long as the cluster takes (up to the op timeouts when an OSD
or the monitor is gone); one thread means a sick cluster ties up exactly one thread, never
the loop's default executor that other code needs, and gives the driver's calls a strict
order (a snapshot issued before a clone reaches Ceph first).

Connection: one `rados.Rados` handle and one I/O context for the driver's whole life, from
the ceph.conf, keyring and pool given to the constructor; librados reconnects by itself.
"""

from __future__ import annotations

import asyncio
import errno
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Self, TypeVar

import rados
import rbd

from virga_storage.drivers.base import PoolFull, StorageError, StorageUnavailable

T = TypeVar("T")

CONNECT_TIMEOUT = 15
"""Seconds to wait for the monitor when connecting."""
FENCE_SECONDS = 3600
"""How long a fenced client stays blocklisted (Ceph's own default)."""
OP_TIMEOUT = 30
"""Default of the seconds any monitor or OSD operation may take before it fails as
unavailable (librados' own default is to wait for ever: a stopped OSD would hang the driver)."""
_QUOTA_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
"""An OSD's answer to a write into a full pool: no space, or the pool's quota reached."""


class RbdConnection:
    """One pool of a Ceph cluster, reached from one thread; `await connect()` before use."""

    def __init__(
        self,
        conf_file: Path,
        keyring: Path,
        pool: str,
        *,
        user: str = "admin",
        connect_timeout: int = CONNECT_TIMEOUT,
        op_timeout: int = OP_TIMEOUT,
    ) -> None:
        if op_timeout <= 0:
            raise ValueError("op_timeout must be positive")
        self.pool = pool
        self._conf_file = conf_file
        self._keyring = keyring
        self._user = user
        self._connect_timeout = connect_timeout
        self._op_timeout = op_timeout
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"rbd-{pool}")
        self._cluster: Any = None
        self._ioctx: Any = None

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function(*args)` on the driver's thread, mapping Ceph errors to Virga's."""
        if self._closed:
            raise StorageUnavailable("the driver is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, partial(function, *args))
        except (rados.TimedOut, rados.ConnectionShutdown, rbd.ConnectionShutdown) as error:
            raise StorageUnavailable(f"Ceph did not answer: {error}") from error
        except (rados.Error, rbd.Error) as error:
            code = getattr(error, "errno", None)
            if code == errno.ETIMEDOUT:  # librbd's op timeouts
                raise StorageUnavailable(f"Ceph did not answer: {error}") from error
            if code in _QUOTA_ERRNOS:  # rados.NoSpace, rbd.NoSpace, rbd.DiskQuotaExceeded
                raise PoolFull(f"pool {self.pool!r} is full: {error}") from error
            raise StorageError(f"Ceph failed: {error}") from error

    def _io(self) -> Any:
        if self._ioctx is None:
            raise StorageUnavailable("the driver is not connected")
        return self._ioctx

    # -- blocking, run on the connection's thread -----------------------------------------

    def _connect(self) -> None:
        cluster = rados.Rados(
            conffile=str(self._conf_file),
            rados_id=self._user,
            conf={
                "keyring": str(self._keyring),
                "client_mount_timeout": str(self._connect_timeout),
                "rados_osd_op_timeout": str(self._op_timeout),
                "rados_mon_op_timeout": str(self._op_timeout),
            },
        )
        try:
            cluster.connect(timeout=self._connect_timeout)
            ioctx = cluster.open_ioctx(self.pool)
            # Writes into a full pool fail at once (ENOSPC/EDQUOT, mapped to `PoolFull`)
            # instead of waiting for room until the op timeout; removals still free space.
            ioctx.set_osdmap_full_try()
        except rados.Error as error:
            cluster.shutdown()
            if isinstance(error, rados.ObjectNotFound):
                raise StorageError(f"pool {self.pool!r} does not exist") from error
            raise StorageUnavailable(f"cannot connect to Ceph: {error}") from error
        self._cluster, self._ioctx = cluster, ioctx

    def _pool_full(self) -> bool:
        """Whether the monitor flags the pool full (its OSDs full, or its quota reached). Ceph
        takes a thin grow of an image even then; Virga refuses it, as the guest could not
        write to the new room."""
        result, output, _ = self._cluster.mon_command(
            json.dumps({"prefix": "osd dump", "format": "json"}), b""
        )
        if result != 0:
            return False  # not allowed to look: the OSDs will refuse writes themselves
        for pool in json.loads(output)["pools"]:
            if pool["pool_name"] == self.pool:
                return bool({"full", "full_quota"} & set(pool["flags_names"].split(",")))
        return False

    def _close(self) -> None:
        if self._ioctx is not None:
            self._ioctx.close()
        if self._cluster is not None:
            self._cluster.shutdown()
        self._ioctx = self._cluster = None

    def _fence(self, image: Any) -> None:
        """Cut off every other client of `image`: a writer that died keeps its lock and its
        watch until the watch times out (30 s), and a removal fails while a watch is left.
        Breaking the lock blocklists its owner; a client that opened the image but had not
        written yet holds no lock, only a watch, so it is blocklisted by address. Either way
        it cannot write again, even if it was only stalled."""
        for owner in list(image.lock_get_owners()):
            image.lock_break(owner["mode"], owner["owner"])
        me = self._cluster.get_instance_id()
        for watcher in list(image.watchers_list()):
            if int(watcher["id"]) != me:  # this client's own watch, from opening the image
                self._cluster.blocklist_add(str(watcher["addr"]), FENCE_SECONDS)

    # -- lifecycle ------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the cluster connection; raise `StorageUnavailable` if the cluster is down."""
        await self._call(self._connect)

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self._call(self._close)
        finally:
            self._closed = True
            self._executor.shutdown(wait=False)
