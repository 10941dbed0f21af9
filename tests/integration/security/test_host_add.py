"""`virga host add`, as an operator adds a hypervisor: on the secure broker and the real Ceph
cluster, the host's Kafka users open only their own transactional ids, its cephx user reaches
its pool's images and nothing of the cluster's administration, and the settings printed are
the ones its agents need (issue #13, part 3)."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import rados
import rbd
from aiokafka.errors import TransactionalIdAuthorizationFailed
from click.testing import CliRunner, Result

from virga_cli.main import cli
from virga_devstack.ceph import CephCluster
from virga_devstack.kafka_security import ADMIN, SecureKafkaBroker
from virga_eventlog import EventWriter, KafkaSettings

pytestmark = pytest.mark.kafka


def virga(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


async def opens(settings: KafkaSettings, transactional_id: str) -> None:
    writer = EventWriter(settings, transactional_id=transactional_id)
    try:
        await writer.start()
        async with writer.transaction():
            pass
    finally:
        await writer.stop()


@pytest.fixture
def host(ceph_cluster: CephCluster) -> Iterator[str]:
    """A new host name; its cephx user is removed afterwards."""
    name = f"hv-{uuid.uuid4().hex[:6]}"
    yield name
    subprocess.run(
        ["ceph", "-c", str(ceph_cluster.conf_file), "auth", "rm", f"client.virga-compute-{name}"],
        capture_output=True, check=False, timeout=120,
    )  # fmt: skip


def test_an_operator_adds_a_hypervisor_with_virga_host_add(
    secure_broker: SecureKafkaBroker, ceph_cluster: CephCluster, host: str, tmp_path: Path
) -> None:
    namespace = f"hostadd{uuid.uuid4().hex[:8]}"
    asyncio.run(secure_broker.provision(namespace))
    env = {**secure_broker.environment(ADMIN), "VIRGA_NAMESPACE": namespace}
    credentials = tmp_path / "credentials"
    add = ("host", "add", host, "--credentials-dir", str(credentials))
    ceph = ("--ceph-conf", str(ceph_cluster.conf_file), "--ceph-pool", ceph_cluster.pool)

    done = virga(env, "--json", *add, *ceph)
    assert done.exit_code == 0, done.output
    answer: dict[str, Any] = orjson.loads(done.stdout)
    compute_user, network_user = f"compute-{host}", f"network-{host}"
    assert answer["kafka_users"] == [compute_user, network_user]
    assert answer["cephx_user"] == f"virga-compute-{host}"
    compute = answer["environment"]["compute"]
    assert compute["VIRGA_HOST"] == host
    assert compute["VIRGA_KAFKA_USERNAME"] == compute_user
    assert compute["VIRGA_KAFKA_PASSWORD_FILE"] == f"/etc/virga/{compute_user}.password"
    assert compute["VIRGA_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert compute["VIRGA_CEPH_USER"] == f"virga-compute-{host}"
    assert answer["environment"]["network"]["VIRGA_KAFKA_USERNAME"] == network_user
    assert "VIRGA_CEPH_USER" not in answer["environment"]["network"]
    files = {Path(there): Path(here) for there, here in answer["files"].items()}
    keyring = files[Path(compute["VIRGA_CEPH_KEYRING"])]
    for there, here in files.items():
        if there.name != "kafka-ca.pem":  # the CA is public
            assert here.stat().st_mode & 0o077 == 0, here

    # Kafka: the host's users open their own transactional ids only.
    password = files[Path(compute["VIRGA_KAFKA_PASSWORD_FILE"])].read_text().strip()
    as_compute = secure_broker.settings(ADMIN, namespace).as_user(compute_user, password)
    asyncio.run(opens(as_compute, f"{namespace}-compute-{host}"))
    with pytest.raises(TransactionalIdAuthorizationFailed):
        asyncio.run(opens(as_compute, f"{namespace}-network"))

    # Ceph: the keyring is the host's own user, with RBD on the pool and no admin powers.
    caps = subprocess.run(
        ["ceph", "-c", str(ceph_cluster.conf_file), "auth", "get", f"client.virga-compute-{host}"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    assert f'caps osd = "profile rbd pool={ceph_cluster.pool}"' in caps
    assert "allow *" not in caps
    image = f"hostadd-{uuid.uuid4().hex[:8]}"
    with rados.Rados(
        conffile=str(ceph_cluster.conf_file),
        rados_id=f"virga-compute-{host}",
        conf={"keyring": str(keyring)},
    ) as client:
        with client.open_ioctx(ceph_cluster.pool) as pool:
            rbd.RBD().create(pool, image, 4 << 20)
            rbd.RBD().remove(pool, image)
        ret, _, _ = client.mon_command('{"prefix": "auth ls", "format": "json"}', b"")
        assert ret == -13  # EACCES: it cannot read the other users' keys

    # The host is listed; adding it again keeps its passwords.
    listed = virga(env, "--json", "host", "list")
    assert listed.exit_code == 0, listed.output
    assert host in orjson.loads(listed.stdout)["items"]
    again = virga(env, *add, *ceph)
    assert again.exit_code == 0, again.output
    assert f"users {compute_user}, {network_user}, 0 topics created" in again.stdout
    assert f"VIRGA_CEPH_USER=virga-compute-{host}" in again.stdout
    assert files[Path(compute["VIRGA_KAFKA_PASSWORD_FILE"])].read_text().strip() == password
    asyncio.run(opens(as_compute, f"{namespace}-compute-{host}"))


def test_virga_host_add_refuses_a_bad_name_and_a_user_who_is_not_the_super_user(
    secure_broker: SecureKafkaBroker, tmp_path: Path
) -> None:
    namespace = f"hostadd{uuid.uuid4().hex[:8]}"
    asyncio.run(secure_broker.provision(namespace))
    admin = {**secure_broker.environment(ADMIN), "VIRGA_NAMESPACE": namespace}
    credentials = ("--credentials-dir", str(tmp_path))
    bad = virga(admin, "host", "add", "bad/name", *credentials)
    assert bad.exit_code == 2
    assert "host name 'bad/name'" in bad.output
    scheduler = {**secure_broker.environment("scheduler"), "VIRGA_NAMESPACE": namespace}
    refused = virga(scheduler, "host", "add", "hv-x", *credentials)
    assert refused.exit_code == 4, refused.output
    assert "super user" in refused.output
    assert orjson.loads(virga(admin, "--json", "host", "list").stdout) == {"items": []}
