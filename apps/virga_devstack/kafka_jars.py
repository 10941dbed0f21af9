"""The Kafka release the devstack runs, and its jars, fetched once from Maven Central.

No Debian or PyPI package ships the broker, so its jars are fetched with Maven into a cache
outside the repository (``<cache root>/kafka-<version>/libs``). The error every broker command
raises lives here too, with the first thing that can fail: fetching.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Final

from virga_devstack.localproc import default_cache_root, exclusive, tail

KAFKA_VERSION: Final = "4.1.2"
SCALA_VERSION: Final = "2.13"
LOG4J_VERSION: Final = "2.25.3"
MAVEN_ARTIFACTS: Final = (
    f"org.apache.kafka:kafka_{SCALA_VERSION}:{KAFKA_VERSION}",
    # kafka.tools.StorageTool's dependencies (argparse4j, the tools API) live here.
    f"org.apache.kafka:kafka-tools:{KAFKA_VERSION}",
    # The broker logs through the SLF4J API only; without a binding it logs nothing at all.
    f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}",
)

_log = logging.getLogger(__name__)


class KafkaBrokerError(RuntimeError):
    """The broker could not be fetched, started or stopped; the message says why."""


def _pom() -> str:
    dependencies = "".join(
        f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version></dependency>\n"
        for group, artifact, version in (coordinate.split(":") for coordinate in MAVEN_ARTIFACTS)
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>org.virga.devstack</groupId>\n"
        f"  <artifactId>kafka-broker</artifactId><version>{KAFKA_VERSION}</version>\n"
        f"  <dependencies>\n{dependencies}  </dependencies>\n"
        "</project>\n"
    )


def ensure_jars(cache_root: Path | None = None) -> Path:
    """Return the directory holding the broker's jars, fetching them with Maven if needed.

    The jars land in a scratch directory that is renamed into place, and a marker naming the
    exact artifacts is written last, so an interrupted download is redone on the next call.
    """
    home = (cache_root or default_cache_root()) / f"kafka-{KAFKA_VERSION}"
    libs = home / "libs"
    marker = libs / ".complete"
    pom = _pom()
    digest = hashlib.sha256(pom.encode()).hexdigest()
    if marker.is_file() and marker.read_text() == digest:
        return libs
    with exclusive(home / ".lock"):
        if marker.is_file() and marker.read_text() == digest:
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaBrokerError("mvn not found on PATH: install Maven (apt-get install maven)")
        partial = home / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        (home / "pom.xml").write_text(pom)
        command = [
            mvn,
            "--batch-mode",
            "--quiet",
            "--file",
            str(home / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={partial}",
            "-DincludeScope=runtime",
        ]
        _log.info("fetching Kafka %s jars into %s", KAFKA_VERSION, libs)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise KafkaBrokerError(f"mvn failed (exit {result.returncode}):\n{tail(output)}")
        shutil.rmtree(libs, ignore_errors=True)
        partial.rename(libs)
        marker.write_text(digest)
    return libs
