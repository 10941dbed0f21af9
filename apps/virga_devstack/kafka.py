"""A single-node Apache Kafka broker (KRaft) for development and tests, run from Maven jars.

Its jars come from Maven Central (`kafka_jars`). Each broker is identified by its client port
and keeps its data, logs, configuration and pid file in ``<state root>/kafka-<port>``.

The functions and methods here block; from async code, call them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
import shutil
import signal
import subprocess
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Final

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

from virga_devstack.kafka_jars import KafkaBrokerError, ensure_jars
from virga_devstack.localproc import (
    default_state_root,
    exclusive,
    port_open,
    process_exists,
    tail,
)

DEFAULT_PORT: Final = 9092
START_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 30.0
JAVA_OPTIONS: Final = ("-Xmx512m", "-Xms128m")

_LOG4J2_PROPERTIES: Final = """\
status = warn
appender.file.type = RollingFile
appender.file.name = server
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = server
"""


def answers_metadata(
    bootstrap_servers: str, timeout: float = 5.0, security: dict[str, Any] | None = None
) -> bool:
    """Whether a Kafka broker at ``host:port`` answers a metadata request naming a broker
    (authenticating with aiokafka's `security` arguments, if given)."""
    host, _, port = bootstrap_servers.rpartition(":")
    # A cheap TCP check first: aiokafka logs an error for every refused connection.
    if not port_open(host, int(port)):
        return False

    async def probe() -> bool:
        client = AIOKafkaClient(
            bootstrap_servers=bootstrap_servers,
            request_timeout_ms=int(timeout * 1000),
            **(security or {}),
        )
        try:
            async with asyncio.timeout(timeout):
                await client.bootstrap()
            return bool(client.cluster.brokers())
        except (KafkaError, OSError, TimeoutError):
            return False
        finally:
            await client.close()

    with warnings.catch_warnings():
        # A probe the broker cuts (a TLS listener still starting) leaves aiokafka's transport
        # unclosed; collected here, quietly, rather than in whatever runs next.
        warnings.simplefilter("ignore", ResourceWarning)
        answered = asyncio.run(probe())
        gc.collect()
    return answered


def kafka_uuid() -> str:
    """A cluster id as ``kafka-storage random-uuid`` makes it, without starting a JVM."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka's own rule: the id must not look like an option
            return text


def _java() -> str:
    if java_home := os.environ.get("JAVA_HOME"):
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaBrokerError("java not found on PATH: install openjdk-17-jre-headless")
    return java


class KafkaBroker:
    """A local broker+controller on 127.0.0.1, found again by its port across processes."""

    java_options: tuple[str, ...] = JAVA_OPTIONS

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        *,
        controller_port: int | None = None,
        state_root: Path | None = None,
        cache_root: Path | None = None,
    ) -> None:
        self.host: Final = "127.0.0.1"
        self.port: Final = port
        if controller_port is None:
            # $VIRGA_KAFKA_CONTROLLER_PORT: where port+1 is another broker's (shared machines).
            configured = os.environ.get("VIRGA_KAFKA_CONTROLLER_PORT")
            controller_port = int(configured) if configured else port + 1
        self.controller_port: Final = controller_port
        self.directory: Final = (state_root or default_state_root()) / f"kafka-{port}"
        self._cache_root = cache_root
        # Set only in the process that spawned the broker, so that it can reap its child.
        self._process: subprocess.Popen[bytes] | None = None
        # Where server.log stood when this object last spawned the broker: error reports
        # show only what that start wrote, not earlier runs.
        self._log_offset = 0

    def __repr__(self) -> str:
        return f"KafkaBroker({self.bootstrap_servers}, directory={str(self.directory)!r})"

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def logs_dir(self) -> Path:
        return self.directory / "logs"

    @property
    def properties_file(self) -> Path:
        return self.directory / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.directory / "kafka.pid"

    def pid(self) -> int | None:
        """The pid of this broker's live process, or None.

        The pid file alone is not trusted: pids are reused, so the process must also be a
        Kafka broker started with this directory's configuration.
        """
        if self._process is not None and self._process.poll() is not None:
            self._process = None  # exited, perhaps stopped by another process: now reaped
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not self._alive(pid):
            return None
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            return None
        if b"kafka.Kafka" in arguments and str(self.properties_file).encode() in arguments:
            return pid
        return None

    def is_running(self) -> bool:
        """Whether this broker's process is alive and answers metadata requests."""
        return self.pid() is not None and self._answers()

    def _answers(self, timeout: float = 5.0) -> bool:
        return answers_metadata(self.bootstrap_servers, timeout)

    def _format_arguments(self) -> list[str]:
        """Extra ``kafka-storage format`` arguments (the secure broker's SCRAM users)."""
        return []

    def start(self, *, fresh: bool = False, timeout: float = START_TIMEOUT) -> bool:
        """Start the broker and wait until it answers; return False if it was already running.

        With `fresh`, a running broker is stopped and its data wiped first. If the broker
        exits or does not answer within `timeout` seconds, it is stopped and
        KafkaBrokerError carries the end of its log.
        """
        with exclusive(self.directory / ".lock"):
            pid = self.pid()
            if pid is not None and not fresh:
                # Possibly still starting (another session's `start`): give it the same time.
                self._wait_until_answering(pid, timeout)
                return False
            if pid is not None:
                self._stop(pid, STOP_TIMEOUT)
            for port in (self.port, self.controller_port):
                if port_open(self.host, port):
                    raise KafkaBrokerError(
                        f"port {port} is already in use by a process that is not the broker "
                        f"of {self.directory}"
                    )
            libs = ensure_jars(self._cache_root)
            if fresh:
                shutil.rmtree(self.data_dir, ignore_errors=True)
            self._configure(libs)
            self._wait_until_answering(self._spawn(libs), timeout)
            return True

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after `timeout` s); False if not running."""
        with exclusive(self.directory / ".lock"):
            pid = self.pid()
            if pid is not None:
                self._stop(pid, timeout)
            self.pid_file.unlink(missing_ok=True)
            return pid is not None

    def _configure(self, libs: Path) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        (self.directory / "log4j2.properties").write_text(_LOG4J2_PROPERTIES)
        self.properties_file.write_text(self._server_properties())
        if (self.data_dir / "meta.properties").exists():
            return
        # Without meta.properties nothing in the directory is usable; format needs it empty.
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        command = [
            *self._java_command(libs),
            "kafka.tools.StorageTool",
            "format",
            *self._quorum_format_arguments(),
            "--config",
            str(self.properties_file),
            *self._format_arguments(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise KafkaBrokerError(f"formatting {self.data_dir} failed:\n{tail(output)}")

    def _quorum_format_arguments(self) -> list[str]:
        """How ``kafka-storage format`` learns the cluster: here a new one of this node alone."""
        return ["--standalone", "--cluster-id", kafka_uuid()]

    def _server_properties(self) -> str:
        controller = f"{self.host}:{self.controller_port}"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": controller,
            "listeners": f"PLAINTEXT://{self.bootstrap_servers},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap_servers}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            # One node: the internal topics cannot have more replicas than that.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Tests start consumer groups right away; the default 3 s delay only slows them.
            "group.initial.rebalance.delay.ms": "0",
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _java_command(self, libs: Path) -> list[str]:
        return [
            _java(),
            *self.java_options,
            f"-Dkafka.logs.dir={self.logs_dir}",
            f"-Dlog4j2.configurationFile={self.directory / 'log4j2.properties'}",
            "-cp",
            str(libs / "*"),  # expanded by java itself, not by a shell
        ]

    def _spawn(self, libs: Path) -> int:
        if self._process is not None:
            # A broker we spawned earlier and another process stopped: reap it before it is
            # forgotten, as it may take a moment to finish exiting.
            self._process.wait(STOP_TIMEOUT)
        command = [*self._java_command(libs), "kafka.Kafka", str(self.properties_file)]
        with contextlib.suppress(FileNotFoundError):
            self._log_offset = (self.logs_dir / "server.log").stat().st_size
        with (self.logs_dir / "broker.out").open("wb") as output:
            # Its own session: the broker outlives this process and ignores the terminal's ^C.
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{self._process.pid}\n")
        return self._process.pid

    def _alive(self, pid: int) -> bool:
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None
        return process_exists(pid)

    def _wait_until_answering(self, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._answers(timeout=2.0):
            if not self._alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise KafkaBrokerError(
                    f"the broker (pid {pid}) exited while starting; "
                    f"end of {self.logs_dir}:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                self._stop(pid, STOP_TIMEOUT)
                self.pid_file.unlink(missing_ok=True)
                raise KafkaBrokerError(
                    f"the broker (pid {pid}) did not answer on {self.bootstrap_servers} "
                    f"within {timeout:.0f} s and was stopped; end of {self.logs_dir}:\n"
                    f"{self._log_tail()}"
                )
            time.sleep(0.2)

    def _stop(self, pid: int, timeout: float) -> None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if self._wait_exit(pid, wait):
                self._process = None
                return
        raise KafkaBrokerError(f"the broker (pid {pid}) survived SIGKILL")

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._process is not None and self._process.pid == pid:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while process_exists(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _log_tail(self) -> str:
        parts = []
        for name, offset in (("broker.out", 0), ("server.log", self._log_offset)):
            with contextlib.suppress(FileNotFoundError), (self.logs_dir / name).open("rb") as log:
                if log.seek(0, os.SEEK_END) < offset:  # rolled over since: show the new file
                    offset = 0
                log.seek(offset)
                if text := log.read().decode(errors="replace").strip():
                    parts.append(f"--- {name}\n{tail(text)}")
        return "\n".join(parts) or "(no log output)"
