"""The command line of the local broker: ``python -m virga_devstack kafka start|stop|status``.

It chooses the plain or the secure broker (`kafka_security`), or a cluster of several
(`kafka_cluster`, ``start --brokers N``; ``stop`` and ``status`` find it by its port), so it
sits above all three.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence

from virga_devstack import kafka_security
from virga_devstack.kafka import DEFAULT_PORT, START_TIMEOUT, KafkaBroker
from virga_devstack.kafka_cluster import KafkaCluster
from virga_devstack.kafka_jars import KAFKA_VERSION, KafkaBrokerError, ensure_jars


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``start``, ``stop``, ``status`` and ``ensure-jars``; returns the process exit code."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("VIRGA_KAFKA_PORT", DEFAULT_PORT)),
        help="client port (default: $VIRGA_KAFKA_PORT or %(default)s)",
    )
    common.add_argument(
        "--controller-port", type=int, default=None, help="KRaft controller port (default: port+1)"
    )
    parser = argparse.ArgumentParser(prog=prog, description="A local single-node Kafka broker.")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", parents=[common], help="start and wait until ready")
    start.add_argument("--fresh", action="store_true", help="wipe the broker's data first")
    start.add_argument("--timeout", type=float, default=START_TIMEOUT, help="seconds to wait")
    start.add_argument(
        "--secure",
        action="store_true",
        help="SASL/SCRAM users per service and ACLs (docs/security.md); off by default",
    )
    start.add_argument(
        "--namespace",
        default=os.environ.get("VIRGA_NAMESPACE", "virga"),
        help="with --secure: the namespace whose topics and ACLs are created",
    )
    start.add_argument(
        "--host",
        action="append",
        default=[],
        help="with --secure: add this agent host's users and ACLs (repeatable)",
    )
    start.add_argument(
        "--brokers",
        type=int,
        default=None,
        help="a KRaft cluster of this many nodes on ports PORT.. (controllers PORT+100..); "
        "default: the cluster last started on PORT, else one broker",
    )
    start.add_argument(
        "--dedicated-controller",
        action="store_true",
        help="with --brokers: one more node as the only controller, brokers only brokers",
    )
    commands.add_parser("stop", parents=[common], help="stop the broker started by `start`")
    commands.add_parser("status", parents=[common], help="exit 0 if running and answering")
    commands.add_parser("ensure-jars", help="fetch the broker's jars into the cache")
    args = parser.parse_args(argv)

    # The CLI reports failures itself; aiokafka's connection warnings while polling are noise.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        if args.command == "ensure-jars":
            print(f"kafka {KAFKA_VERSION} jars: {ensure_jars()}")
            return 0
        cluster = KafkaCluster.found(args.port, controller_port=args.controller_port)
        if args.command == "start" and args.brokers is not None:
            if cluster is not None and args.brokers == 1:
                cluster.forget()
            cluster = None
            if args.brokers > 1:
                cluster = KafkaCluster(
                    args.brokers,
                    args.port,
                    controller_port=args.controller_port,
                    dedicated_controller=args.dedicated_controller,
                )
        if cluster is not None:
            if getattr(args, "secure", False):
                raise KafkaBrokerError("--secure is for the single broker; not with --brokers")
            if args.command == "start":
                return _start_cluster(cluster, args.fresh, args.timeout)
            return _stop_cluster(cluster) if args.command == "stop" else _cluster_status(cluster)
        broker = KafkaBroker(args.port, controller_port=args.controller_port)
        if getattr(args, "secure", False) or kafka_security.SecureKafkaBroker.is_secure(broker):
            broker = kafka_security.SecureKafkaBroker(
                args.port, controller_port=args.controller_port
            )
        if args.command == "start":
            began = time.monotonic()
            if broker.start(fresh=args.fresh, timeout=args.timeout):
                elapsed = time.monotonic() - began
                print(f"kafka: started {broker.bootstrap_servers} in {elapsed:.1f} s", end="")
            else:
                print(f"kafka: already running on {broker.bootstrap_servers}", end="")
            print(f" (pid {broker.pid()}; state in {broker.directory})")
            if isinstance(broker, kafka_security.SecureKafkaBroker):
                kafka_security.provision_blocking(broker, args.namespace, tuple(args.host))
                print(f"kafka: TLS and SASL/SCRAM on, ACLs for namespace {args.namespace!r};")
                print(f"  passwords in {broker.credentials_dir}, CA {broker.tls.ca_file}")
            return 0
        if args.command == "stop":
            stopped = broker.stop()
            print(f"kafka: {'stopped' if stopped else 'not running on'} {broker.bootstrap_servers}")
            return 0
        pid = broker.pid()
        if pid is None:
            print(f"kafka: not running on {broker.bootstrap_servers}")
            return 1
        if not broker._answers():
            print(f"kafka: pid {pid} does not answer on {broker.bootstrap_servers}")
            return 1
        print(f"kafka: running on {broker.bootstrap_servers} (pid {pid})")
        return 0
    except KafkaBrokerError as error:
        print(f"kafka: error: {error}", file=sys.stderr)
        return 1


def _start_cluster(cluster: KafkaCluster, fresh: bool, timeout: float) -> int:
    began = time.monotonic()
    if cluster.start(fresh=fresh, timeout=timeout):
        elapsed = time.monotonic() - began
        print(f"kafka: started {len(cluster.brokers)} brokers in {elapsed:.1f} s")
    else:
        print(f"kafka: {len(cluster.brokers)} brokers already running")
    _cluster_status(cluster)
    print(f"  bootstrap {cluster.bootstrap_servers}; state in {cluster.directory}")
    return 0


def _stop_cluster(cluster: KafkaCluster) -> int:
    stopped = cluster.stop()
    print(f"kafka: {'stopped' if stopped else 'not running on'} {cluster.bootstrap_servers}")
    return 0


def _cluster_status(cluster: KafkaCluster) -> int:
    """One line per node; 0 if every node runs and answers."""
    healthy = True
    for node in cluster.nodes:
        pid = node.pid()
        if pid is None:
            state = "not running"
        elif node._answers():
            state = f"running (pid {pid})"
        else:
            state = f"pid {pid} does not answer"
        healthy = healthy and state.startswith("running")
        where = (
            node.bootstrap_servers if node.is_broker else f"controller port {node.controller_port}"
        )
        print(f"kafka: node {node.node_id} ({node.roles}) on {where}: {state}")
    return 0 if healthy else 1
