"""The whole local stack behind `make up`/`make down`: Kafka, Ceph, libvirt, every service.

`up` starts what is not running yet (a second `up` only checks), waits for each service's
/healthz, seeds Virga's guest image and the stock images (`seed_images`: `debian-12`, unless
`VIRGA_DEVSTACK_IMAGES=none`) as public images through the API, and prints the admin
token and a quick start. It stays detached unless `--foreground`, where Ctrl-C (or SIGTERM)
stops what that run started; Ctrl-C while it works stops what it started so far. `down`
stops, by pid, what `up` started and nothing else; Ceph stays up unless `--all`, since the
running guests' disks live there (its memstore OSD loses them when it stops). `up` also makes
the external network `public` on a bridge of the host (`external`: devstack's br-ex), which
`down --all` deletes.

State (pids, logs, what `up` started) lives outside the repository in `$VIRGA_STACK_DIR`
(default `$VIRGA_STATE_DIR/stack`); the admin token and the token secret live in `.virga/` of
the checkout (git-ignored), so the CLI finds them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from virga_devstack import (
    ceph,
    ceph_users,
    external,
    guest_image,
    kafka,
    libvirt,
    seed,
    seed_images,
)
from virga_devstack.kafka_jars import KafkaBrokerError
from virga_devstack.processes import ServiceProcess, ServiceProcessError
from virga_devstack.stack_services import SECRETS, STATE, host_name, services
from virga_eventlog.hosts import add_host_topics
from virga_eventlog.settings import KafkaSettings

STARTED = STATE / "started.json"
"""Which Kafka and Ceph (by port), and whether libvirtd, `up` started: `down` stops those only."""
HEALTH_TIMEOUT = 120.0
NEEDS_ROOT = """\
make up needs root: it installs Debian packages (apt-get), starts virtlogd and libvirtd for
qemu:///system guests, and its network agent makes bridges, VXLAN and taps over netlink.
Run it as root (e.g. `sudo make up`)."""


def _started() -> dict[str, list[int]]:
    try:
        loaded: dict[str, list[int]] = json.loads(STARTED.read_text())
        return loaded
    except (FileNotFoundError, ValueError):
        return {}


def _remember(component: str, port: int, started: bool) -> None:
    record = _started()
    ports = set(record.get(component, []))
    ports = ports | {port} if started else ports - {port}
    record[component] = sorted(ports)
    STATE.mkdir(parents=True, exist_ok=True)
    STARTED.write_text(json.dumps(record) + "\n")


def _then_forget(stop: Callable[[], object], component: str, port: int) -> Callable[[], None]:
    def undo() -> None:
        stop()
        _remember(component, port, False)

    return undo


@dataclass
class Run:
    """One `up`: its progress lines, what it started (to undo on Ctrl-C), what failed."""

    total: int
    step: int = 0
    undo: list[tuple[str, Callable[[], object]]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    image_id: str = "<image id>"
    """The seeded guest image, for the quick start."""

    @contextmanager
    def stage(self, title: str) -> Iterator[list[str]]:
        """Prints `[n/N] title ...` and, after the block, its outcome and duration."""
        self.step += 1
        print(f"[{self.step}/{self.total}] {title} ...", end="", flush=True)
        began = time.monotonic()
        outcome = ["ok"]
        try:
            yield outcome
        except KeyboardInterrupt:
            print(" interrupted", flush=True)
            raise
        except BaseException:
            print(" failed", flush=True)
            raise
        print(f" {outcome[0]} ({time.monotonic() - began:.1f} s)", flush=True)

    def stop_started(self) -> None:
        for name, stop in reversed(self.undo):
            print(f"    stopping {name}", flush=True)
            stop()
        self.undo.clear()


def _in_pool(cluster: ceph.CephCluster) -> Callable[[str], bool]:
    """Whether an image's RBD image exists (named as the storage service names it)."""

    def exists(image_id: str) -> bool:
        command = ["rbd", "-c", str(cluster.conf_file), "info", f"{cluster.pool}/image-{image_id}"]
        return subprocess.run(command, capture_output=True, timeout=60, check=False).returncode == 0

    return exists


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def up(kafka_port: int, gateway_port: int, *, foreground: bool = False) -> int:
    if os.geteuid() != 0:
        print(NEEDS_ROOT, file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C must stop what was started even where the shell made this process ignore it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    began = time.monotonic()
    run = Run(total=11)
    try:
        processes = _start(run, kafka_port, gateway_port)
        if foreground and not run.failures:
            _summary(run, gateway_port, time.monotonic() - began, processes)
            print("Running in the foreground: Ctrl-C stops what this `make up` started.")
            while True:
                signal.pause()
    except KeyboardInterrupt:
        print("\ninterrupted: stopping what this `make up` started", flush=True)
        run.stop_started()
        return 130
    except KafkaBrokerError as error:
        # Nothing runs without the log: stop here, and leave nothing half-started behind.
        print(f"\nKafka did not start: {error}", file=sys.stderr)
        run.stop_started()
        return 1
    return _summary(run, gateway_port, time.monotonic() - began, processes)


def _start(run: Run, kafka_port: int, gateway_port: int) -> list[ServiceProcess]:
    with run.stage(f"Kafka on 127.0.0.1:{kafka_port}") as outcome:
        broker = kafka.KafkaBroker(kafka_port)
        if broker.start():
            _remember("kafka", kafka_port, True)
            run.undo.append(("Kafka", _then_forget(broker.stop, "kafka", kafka_port)))
        else:
            outcome[0] = "already running"
    with run.stage("libvirtd and virtlogd (qemu:///system, TCG guests)") as outcome:
        uri = os.environ.get("VIRGA_LIBVIRT_URI", "qemu:///system")
        try:
            if libvirt.start():
                _remember("libvirt", 0, True)
                run.undo.append(("libvirtd and virtlogd", _then_forget(libvirt.stop, "libvirt", 0)))
            else:
                outcome[0] = "already running"
        except libvirt.LibvirtError as error:
            outcome[0] = "FAILED (compute uses libvirt's test driver)"
            run.failures.append(f"libvirtd: {error}")
            uri = "test:///default"
    port = int(os.environ.get("VIRGA_CEPH_PORT", ceph.DEFAULT_PORT))
    cluster: ceph.CephCluster | None = ceph.CephCluster(port)
    with run.stage(f"Ceph on 127.0.0.1:{port} (one monitor, one memstore OSD)") as outcome:
        assert cluster is not None
        try:
            if cluster.start():
                _remember("ceph", port, True)
                run.undo.append(("Ceph", _then_forget(cluster.stop, "ceph", port)))
                outcome[0] = f"started, empty (data in {cluster.directory})"
            else:
                outcome[0] = "already running"
            # Each service its own cephx user and keyring; none gets client.admin's.
            ceph_users.make_service_users(cluster, host_name())
        except ceph.CephError as error:
            outcome[0] = "FAILED (volumes stay in the storage service's memory)"
            run.failures.append(f"Ceph: {error}")
            cluster = None
    image: guest_image.GuestImage | None
    with run.stage("guest image (Debian cloud kernel + busybox)") as outcome:
        try:
            image = guest_image.cached(guest_image.resolve_inputs())
            if image is None:
                image = guest_image.build()
                outcome[0] = f"built into {image.directory}"
            else:
                outcome[0] = "cached"
        except Exception as error:  # reported at the end; the cloud runs without it
            image = None
            outcome[0] = "FAILED"
            run.failures.append(f"guest image: {error}")
    processes = services(kafka_port, gateway_port, uri, cluster)
    with run.stage(f"topics of host {host_name()!r}") as outcome:
        # As `virga host add` would: services then read the host's events from their start.
        settings = KafkaSettings.from_env(environ=processes[0].env)
        try:
            made = asyncio.run(add_host_topics(settings, host_name()))
            outcome[0] = f"{len(made)} made" if made else "already there"
        except Exception as error:  # the agents make them at start all the same
            outcome[0] = "FAILED"
            run.failures.append(f"host topics: {error!r}")
    segment = external.local()  # made before the agent starts: routers plug into it
    with run.stage(f"bridge {segment.bridge} with {segment.address} (the internet)") as outcome:
        try:
            if external.ensure_bridge(segment):
                run.undo.append((segment.bridge, lambda: external.remove_bridge(segment)))
            else:
                outcome[0] = "already there"
        except external.ExternalError as error:
            outcome[0] = "FAILED"
            run.failures.append(f"external network's bridge: {error}")
    absent: set[str] = set()
    with run.stage(f"starting {len(processes)} services") as outcome:
        fresh = 0
        (STATE / "spool").mkdir(parents=True, exist_ok=True)
        for process in processes:
            if not _importable(process.module):
                run.failures.append(f"{process.name}: module {process.module} not found")
                absent.add(process.name)
                continue
            if process.pid() is None:
                process.start()
                run.undo.append((process.name, process.stop))
                fresh += 1
        outcome[0] = f"{fresh} started, {len(processes) - fresh - len(absent)} already running"
    healthy: set[str] = set()
    with run.stage("waiting for every service to catch up with the log") as outcome:
        for process in processes:
            if process.name in absent:
                continue
            try:
                process.wait_healthy(timeout=HEALTH_TIMEOUT)
                healthy.add(process.name)
            except ServiceProcessError as error:
                run.failures.append(str(error))
        outcome[0] = f"{len(healthy)} of {len(processes)} ready"
    with run.stage(f"external network {segment.name!r} on {segment.bridge}") as outcome:
        if "gateway" not in healthy or not external.bridge_exists(segment):
            outcome[0] = "skipped (no gateway or no bridge)"
        else:
            token = (SECRETS / "admin-token").read_text().strip()
            try:
                api = f"http://127.0.0.1:{gateway_port}"
                _, outcome[0] = external.register(api, token, segment)
            except seed.SeedError as error:
                outcome[0] = "FAILED"
                run.failures.append(f"external network: {error}")
    with run.stage(f"seeding the public image {seed.IMAGE_NAME!r}") as outcome:
        if image is None or not {"gateway", "storage"} <= healthy:
            outcome[0] = "skipped (no image, gateway or storage)"
        else:
            token = (SECRETS / "admin-token").read_text().strip()
            api = f"http://127.0.0.1:{gateway_port}"
            try:
                run.image_id, outcome[0] = seed.seed_and_retire(
                    api, token, image, in_pool=None if cluster is None else _in_pool(cluster)
                )
            except seed.SeedError as error:
                outcome[0] = "FAILED"
                run.failures.append(f"seeding the guest image: {error}")
    with run.stage(f"stock images ({seed_images.SETTING}): Debian's own cloud image") as outcome:
        if not {"gateway", "storage"} <= healthy:
            outcome[0] = "skipped (no gateway or storage)"
        else:
            token = (SECRETS / "admin-token").read_text().strip()
            try:
                done = seed_images.seed_stock(
                    f"http://127.0.0.1:{gateway_port}",
                    token,
                    in_pool=None if cluster is None else _in_pool(cluster),
                )
                outcome[0] = f"skipped ({seed_images.SETTING}=none)" if done is None else done
            except Exception as error:  # reported at the end; the cloud runs without it
                outcome[0] = "FAILED"
                run.failures.append(f"stock image: {error}")
    return processes


def _summary(run: Run, gateway_port: int, seconds: float, processes: list[ServiceProcess]) -> int:
    token = (SECRETS / "admin-token").read_text().strip()
    api = f"http://127.0.0.1:{gateway_port}"
    segment = external.local()
    print(f"""
Virga is up in {seconds:.0f} s: API on {api}  (logs: {STATE})
Admin token (also in .virga/admin-token): {token}

  ADMIN="Authorization: Bearer $(cat .virga/admin-token)"; J='Content-Type: application/json'
  curl -s -H "$ADMIN" -H "$J" -d '{{"name": "acme"}}' {api}/v1/tenants             # → id
  curl -s -X POST -H "$ADMIN" {api}/v1/tenants/<id>/tokens                       # → token
  T="Authorization: Bearer <token>"
  curl -s -H "$T" -H "$J" -d '{{"name": "net1", "cidr": "10.0.0.0/24"}}' {api}/v1/networks
  curl -s -H "$T" -H "$J" -d '{{"name": "vm1", "flavor": "m1.tiny", "image": "{run.image_id}",
       "network_id": "<network id>"}}' {api}/v1/instances
  curl -s -H "$T" {api}/v1/instances                                 # RUNNING, its address

The image is Virga's own tiny guest: it configures its NIC from its port's address and
answers ping (and HTTP on port 80); its domain is virga-<instance id> in
`virsh -c qemu:///system list`. `make down` stops what `make up` started; guests keep running.

This host plays the internet: {segment.address} on the bridge {segment.bridge}, registered
as the external network {segment.name!r}. A router on it and a floating IP make a guest answer
`ping <floating ip>` from here (README, "Quick start").""")
    if run.failures:
        print("\nNot everything came up:", file=sys.stderr)
        for failure in run.failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    return 0


def down(kafka_port: int, gateway_port: int, *, everything: bool = False) -> int:
    if everything and (SECRETS / "admin-token").exists():  # while the gateway runs
        token = (SECRETS / "admin-token").read_text().strip()
        done = external.unregister_quietly(f"http://127.0.0.1:{gateway_port}", token)
        print(f"==> external network: {done}", flush=True)
    for process in reversed(services(kafka_port, gateway_port, "")):
        if process.pid() is not None:
            print(f"==> stopping {process.name}", flush=True)
            process.stop()
    started = _started()
    if started.get("libvirt"):
        # Only when `up` started them: a libvirtd that was already running (another user's,
        # the system's) is left alone even if its pid files sit in the same state directory.
        print("==> stopping libvirtd and virtlogd", flush=True)
        libvirt.stop()
        _remember("libvirt", 0, False)
    for port in started.get("kafka", []):
        print(f"==> stopping Kafka on 127.0.0.1:{port}", flush=True)
        kafka.KafkaBroker(port).stop()
        _remember("kafka", port, False)
    print("Guests keep running: stopping the control plane never stops tenants' instances.")
    for port in started.get("ceph", []):
        if everything:
            print(f"==> stopping Ceph on 127.0.0.1:{port} (its memstore data is gone)")
            ceph.CephCluster(port).stop()
            _remember("ceph", port, False)
        else:
            print(
                f"Ceph on 127.0.0.1:{port} keeps running, since the guests' disks live there "
                "(`make down ALL=1` stops it too, and its data is lost)."
            )
    return external.take_down_bridge(everything)


def main(argv: Sequence[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument(
        "--kafka-port", type=int, default=int(os.environ.get("VIRGA_KAFKA_PORT", "9092"))
    )
    parser.add_argument(
        "--gateway-port", type=int, default=int(os.environ.get("VIRGA_GATEWAY_PORT", "8080"))
    )
    parser.add_argument(
        "--foreground", action="store_true", help="up: stay, and stop all it started on Ctrl-C"
    )
    parser.add_argument("--all", action="store_true", help="down: stop the Ceph cluster too")
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(args.kafka_port, args.gateway_port, foreground=args.foreground)
    return down(args.kafka_port, args.gateway_port, everything=args.all)
