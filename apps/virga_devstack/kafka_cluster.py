"""A local KRaft cluster of several brokers on this machine, for replication tests and benches.

Every node is both broker and controller, a JVM with a small heap. Node ``i`` (from 1) takes
the client port ``port + i - 1`` and the controller port ``controller_port + i - 1`` (by default
``port + 100 + i - 1``); the controllers form a static quorum (``controller.quorum.voters``).
The cluster keeps its id and its node count in ``<state root>/kafka-cluster-<port>`` and each
node its own ``kafka-<node port>`` directory below it. Internal topics (offsets, transactions)
are replicated as Virga's own (`virga_eventlog.replication.for_cluster`: 3 copies, 2 in sync).

The functions and methods here block, except `KafkaCluster.leader`; from async code, call them
with ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError

from virga_devstack.kafka import START_TIMEOUT, STOP_TIMEOUT, KafkaBroker, kafka_uuid
from virga_devstack.kafka_jars import KafkaBrokerError, ensure_jars
from virga_devstack.localproc import default_state_root, exclusive, port_open
from virga_eventlog.replication import Replication, for_cluster

CONTROLLER_OFFSET: Final = 100
"""Controller ports sit this far above the client ports."""
NODE_JAVA_OPTIONS: Final = ("-Xmx320m", "-Xms64m")
"""Three of these fit beside a test stack on a small machine."""
SESSION_TIMEOUT_MS: Final = 4000
"""A broker that stops heartbeating is fenced, and its partitions led by others, after this
(Kafka's default, 9 s, would stall every write to its partitions that long)."""


QUORUM_FETCH_TIMEOUT_MS: Final = 6000
"""A follower calls an election after this long without fetching from the quorum's leader."""


def quorum_voters(host: str, controllers: Mapping[int, int]) -> str:
    """``controller.quorum.voters``: ``id@host:port`` of each controller (node id → port)."""
    return ",".join(f"{node}@{host}:{port}" for node, port in sorted(controllers.items()))


def node_settings(
    node_id: int, roles: str, listeners: str, voters: str, replication: Replication
) -> dict[str, str | None]:
    """What a cluster node changes in a single broker's properties (None: the key goes).
    `roles` is ``broker,controller``, ``broker`` or ``controller``; `listeners` its own."""
    factor, min_insync = str(replication.factor), str(replication.min_insync)
    settings: dict[str, str | None] = {
        "process.roles": roles,
        "node.id": str(node_id),
        "listeners": listeners,
        "controller.quorum.voters": voters,
        "controller.quorum.bootstrap.servers": None,  # that is the dynamic quorum's setting
        # Kafka's 2 s and 1 s: on a small shared machine a busy leader misses that often, and a
        # restarted controller then keeps calling elections instead of catching up.
        "controller.quorum.fetch.timeout.ms": str(QUORUM_FETCH_TIMEOUT_MS),
        "controller.quorum.election.timeout.ms": str(QUORUM_FETCH_TIMEOUT_MS // 3),
    }
    if roles == "controller":
        # No client listener: nothing to advertise, no replication to do.
        return settings | {"advertised.listeners": None, "inter.broker.listener.name": None}
    return settings | {
        "default.replication.factor": factor,
        "min.insync.replicas": min_insync,
        "unclean.leader.election.enable": "false",
        "offsets.topic.replication.factor": factor,
        "transaction.state.log.replication.factor": factor,
        "transaction.state.log.min.isr": min_insync,
        "share.coordinator.state.topic.replication.factor": factor,
        "share.coordinator.state.topic.min.isr": min_insync,
        "broker.session.timeout.ms": str(SESSION_TIMEOUT_MS),
        "broker.heartbeat.interval.ms": str(SESSION_TIMEOUT_MS // 4),
    }


def override_properties(text: str, overrides: Mapping[str, str | None]) -> str:
    """`text` (``key=value`` lines) with `overrides` applied: replaced, added, or removed."""
    kept = [line for line in text.splitlines() if line.split("=", 1)[0] not in overrides]
    added = [f"{key}={value}" for key, value in overrides.items() if value is not None]
    return "".join(f"{line}\n" for line in (*kept, *added))


class ClusterNode(KafkaBroker):
    """One broker+controller of a `KafkaCluster`."""

    java_options = NODE_JAVA_OPTIONS

    def __init__(
        self, node_id: int, roles: str, port: int, controller_port: int, cluster: KafkaCluster
    ) -> None:
        super().__init__(port, controller_port=controller_port, state_root=cluster.directory)
        self.node_id: Final = node_id
        self.roles: Final = roles
        """``broker,controller``, ``broker`` or ``controller``."""
        self._cluster = cluster

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles

    @property
    def listeners(self) -> str:
        client = f"PLAINTEXT://{self.bootstrap_servers}"
        controller = f"CONTROLLER://{self.host}:{self.controller_port}"
        if self.roles == "broker":
            return client
        return controller if self.roles == "controller" else f"{client},{controller}"

    def _answers(self, timeout: float = 5.0) -> bool:
        if not self.is_broker:  # no client listener to ask for metadata
            return port_open(self.host, self.controller_port)
        return super()._answers(timeout)

    def __repr__(self) -> str:
        return f"ClusterNode({self.node_id}, {self.bootstrap_servers})"

    def _quorum_format_arguments(self) -> list[str]:
        return ["--cluster-id", self._cluster.cluster_id()]

    def _server_properties(self) -> str:
        cluster = self._cluster
        settings = node_settings(
            self.node_id, self.roles, self.listeners, cluster.voters, cluster.replication
        )
        return override_properties(super()._server_properties(), settings)

    def launch(self, *, fresh: bool) -> int:
        """Configure and spawn the node without waiting: it answers only once a majority of
        the controllers runs. Returns its pid."""
        for port in (self.port, self.controller_port):
            if port_open(self.host, port):
                raise KafkaBrokerError(
                    f"port {port} is already in use by a process that is not node "
                    f"{self.node_id} of {self._cluster.directory}"
                )
        libs = ensure_jars(self._cache_root)
        if fresh:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self._configure(libs)
        return self._spawn(libs)

    def wait_answering(self, pid: int, timeout: float = START_TIMEOUT) -> None:
        self._wait_until_answering(pid, timeout)

    def kill(self) -> int | None:
        """SIGKILL the node, as a crash would (no controlled shutdown); its pid, or None if it
        was not running."""
        pid = self.pid()
        if pid is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not self._wait_exit(pid, STOP_TIMEOUT):
            raise KafkaBrokerError(f"node {self.node_id} (pid {pid}) survived SIGKILL")
        self._process = None
        return pid


class KafkaCluster:
    """`brokers` local nodes on consecutive ports from `port`, found again by that port.

    By default every node is also a controller. With `dedicated_controller`, the brokers are
    brokers only and one more node (id ``brokers + 1``, the next ports) is the whole quorum: any
    number of brokers may then be down while the cluster still elects leaders and shrinks
    in-sync sets (with every node a controller, two of three down is no quorum at all).
    """

    def __init__(
        self,
        brokers: int = 3,
        port: int = 9092,
        *,
        controller_port: int | None = None,
        dedicated_controller: bool = False,
        state_root: Path | None = None,
    ) -> None:
        if brokers < 1:
            raise KafkaBrokerError(f"a cluster needs at least one broker, not {brokers}")
        self.port: Final = port
        self.dedicated_controller: Final = dedicated_controller
        self.directory: Final = (state_root or default_state_root()) / f"kafka-cluster-{port}"
        first_controller = port + CONTROLLER_OFFSET if controller_port is None else controller_port
        roles = "broker" if dedicated_controller else "broker,controller"
        nodes = [
            ClusterNode(i + 1, roles, port + i, first_controller + i, self) for i in range(brokers)
        ]
        if dedicated_controller:
            nodes.append(
                ClusterNode(
                    brokers + 1, "controller", port + brokers, first_controller + brokers, self
                )
            )
        controllers = {n.node_id: n.controller_port for n in nodes if n.roles != "broker"}
        self.voters: Final = quorum_voters("127.0.0.1", controllers)
        self.replication: Final = for_cluster(brokers)
        self.nodes: Final = tuple(nodes)
        self.brokers: Final = tuple(n for n in nodes if n.is_broker)

    def __repr__(self) -> str:
        return f"KafkaCluster({self.bootstrap_servers}, directory={str(self.directory)!r})"

    @classmethod
    def found(
        cls, port: int, *, controller_port: int | None = None, state_root: Path | None = None
    ) -> KafkaCluster | None:
        """The cluster a `start` made from `port` (its node count recorded), or None."""
        directory = (state_root or default_state_root()) / f"kafka-cluster-{port}"
        try:
            shape = json.loads((directory / "cluster.json").read_text())
            brokers, dedicated = int(shape["brokers"]), bool(shape["dedicated_controller"])
        except (FileNotFoundError, ValueError, KeyError):
            return None
        return cls(
            brokers,
            port,
            controller_port=controller_port,
            dedicated_controller=dedicated,
            state_root=state_root,
        )

    def forget(self) -> None:
        """Drop the record of this cluster (its port now serves a single broker)."""
        (self.directory / "cluster.json").unlink(missing_ok=True)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.brokers)

    def node(self, node_id: int) -> ClusterNode:
        return self.nodes[node_id - 1]  # ids are positions from 1

    def cluster_id(self) -> str:
        """The id every node is formatted with; made on first use."""
        path = self.directory / "cluster.id"
        if not path.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            path.write_text(kafka_uuid())
        return path.read_text().strip()

    def start(self, *, fresh: bool = False, timeout: float = START_TIMEOUT) -> bool:
        """Start every node that is not running and wait until each answers and the cluster
        lists them all; False if all were running already. With `fresh`, the nodes are
        stopped and their data wiped first. On failure every node is stopped."""
        with exclusive(self.directory / ".lock"):
            pids = {node: node.pid() for node in self.nodes}
            if fresh:
                for node in self.nodes:
                    node.stop()
                (self.directory / "cluster.id").unlink(missing_ok=True)
                pids = dict.fromkeys(self.nodes)
            self.directory.mkdir(parents=True, exist_ok=True)
            shape = {
                "brokers": len(self.brokers),
                "dedicated_controller": self.dedicated_controller,
            }
            (self.directory / "cluster.json").write_text(json.dumps(shape))
            started = [node for node, pid in pids.items() if pid is None]
            try:
                for node in started:
                    pids[node] = node.launch(fresh=fresh)
                deadline = time.monotonic() + timeout
                for node, pid in pids.items():
                    assert pid is not None
                    node.wait_answering(pid, max(1.0, deadline - time.monotonic()))
                self.wait_brokers(len(self.brokers), max(1.0, deadline - time.monotonic()))
            except KafkaBrokerError:
                for node in self.nodes:
                    node.stop()
                raise
            return bool(started)

    def stop(self) -> bool:
        """Stop every node (SIGTERM, then SIGKILL); False if none was running."""
        # The brokers all at once, then a dedicated controller: stopped one after the other,
        # the last ones wait out their timeout for a quorum (or a controller) that has already
        # left, about 30 s instead of a few.
        controllers = [node for node in self.nodes if node not in self.brokers]
        with (
            exclusive(self.directory / ".lock"),
            concurrent.futures.ThreadPoolExecutor(len(self.nodes)) as pool,
        ):
            stopped = list(pool.map(lambda node: node.stop(), self.brokers))
            stopped += list(pool.map(lambda node: node.stop(), controllers))
            return any(stopped)

    def wait_brokers(self, count: int, timeout: float = START_TIMEOUT) -> None:
        """Until the cluster's metadata lists `count` live brokers."""
        deadline = time.monotonic() + timeout
        while (listed := asyncio.run(self._live_brokers())) != count:
            if time.monotonic() > deadline:
                raise KafkaBrokerError(
                    f"{listed} brokers listed after {timeout:.0f} s, not {count}"
                )
            time.sleep(0.2)

    async def _live_brokers(self) -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers, client_id="devstack")
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            return len(cluster["brokers"])
        except Exception:  # any failure to ask means "not yet"
            return 0
        finally:
            await admin.close()

    async def leader(self, topic: str, partition: int = 0) -> ClusterNode:
        """The node leading `partition` of `topic`, as the cluster's metadata says now."""
        leader, _ = await self.replicas(topic, partition)
        return leader

    async def replicas(self, topic: str, partition: int = 0) -> tuple[ClusterNode, list[int]]:
        """The leader of `partition` of `topic` and the ids of its in-sync replicas. Asked
        again for a while if the broker asked is down (listed until the controller fences it)
        or does not know the partition's leader yet (a topic just made, a leader just lost)."""
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers, client_id="devstack"
            )
            described: dict[str, Any] = {}
            try:
                await admin.start()
                (described,) = await admin.describe_topics([topic])
            except (NodeNotReadyError, KafkaConnectionError):
                if asyncio.get_running_loop().time() > deadline:
                    raise
            finally:
                await admin.close()
            for found in described.get("partitions", ()):
                if found["partition"] == partition and found["leader"] >= 0:
                    return self.node(found["leader"]), sorted(found["isr"])
            if described and asyncio.get_running_loop().time() > deadline:
                raise KafkaBrokerError(f"{topic}[{partition}] has no leader: {described}")
            await asyncio.sleep(0.2)
