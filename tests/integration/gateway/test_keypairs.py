"""Keypairs through a real gateway on the real broker: imported, listed, shown and deleted per
tenant; an instance request carries the key (a copy), its user data, host name and config
drive into `InstanceRequested` on the log; the instance lists its boot volume."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.integration.gateway.harness import ADMIN_TOKEN, Gateway, wait_until
from tests.support.kafka import read_events

from virga_eventlog import event_topic
from virga_events import REGISTRY
from virga_events.catalog import api, storage

pytestmark = pytest.mark.kafka


def _keygen(folder: Path, kind: str, *args: str) -> tuple[str, str]:
    """A new public key line made by ssh-keygen, and its fingerprint as ssh-keygen lists it."""
    path = folder / kind
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *args, "-N", "", "-C", f"me@{kind}", "-f", str(path)],
        check=True,
    )
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", f"{path}.pub"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(f"{path}.pub").read_text(), listed.stdout.split()[1]


async def _logged(gateway: Gateway) -> list[Any]:
    topic = event_topic("gateway", gateway.namespace)
    return await read_events(gateway.settings.bootstrap_servers, topic, REGISTRY)


async def test_keypairs_are_imported_listed_shown_and_deleted_per_tenant(
    gateway: Gateway, tmp_path: Path
) -> None:
    alice_id, alice = await gateway.tenant()
    bob_id, bob = await gateway.tenant()
    ed25519, ed_fingerprint = _keygen(tmp_path, "ed25519")
    rsa, rsa_fingerprint = _keygen(tmp_path, "rsa", "-b", "3072")

    body = {"name": "laptop", "public_key": ed25519}
    created = await gateway.call("POST", "/v1/keypairs", token=alice, json=body)
    assert created.status == 201, created.body
    assert created.body["fingerprint"] == ed_fingerprint
    assert created.body["type"] == "ssh-ed25519"
    assert created.body["public_key"] == ed25519.strip()
    assert created.body["tenant_id"] == alice_id
    again = await gateway.call("POST", "/v1/keypairs", token=alice, json=body)
    assert again.status == 409, again.body
    assert again.problem_fields == ["name"]
    bad = {"name": "bad", "public_key": ed25519.strip()[:-20]}
    malformed = await gateway.call("POST", "/v1/keypairs", token=alice, json=bad)
    assert malformed.status == 422, malformed.body
    assert malformed.problem_fields == ["public_key"]
    # Bob may take the same name for his own key; neither sees the other's.
    rsa_body = {"name": "laptop", "public_key": rsa}
    bobs = await gateway.call("POST", "/v1/keypairs", token=bob, json=rsa_body)
    assert (bobs.status, bobs.body["fingerprint"]) == (201, rsa_fingerprint)
    mine = await gateway.call("GET", "/v1/keypairs/laptop", token=alice)
    assert mine.body == created.body
    listed = await gateway.call("GET", "/v1/keypairs", token=bob)
    assert [k["fingerprint"] for k in listed.body["items"]] == [rsa_fingerprint]
    assert listed.body["next"] is None
    # Admins name the tenant whose keypair a name is.
    unnamed = await gateway.call("GET", "/v1/keypairs/laptop", token=ADMIN_TOKEN)
    assert (unnamed.status, unnamed.problem_fields) == (400, ["tenant_id"])
    shown = await gateway.call("GET", f"/v1/keypairs/laptop?tenant_id={bob_id}")
    assert shown.body["fingerprint"] == rsa_fingerprint
    everyone = await gateway.call("GET", "/v1/keypairs", token=ADMIN_TOKEN)
    assert {k["tenant_id"] for k in everyone.body["items"]} == {alice_id, bob_id}

    deleted = await gateway.call("DELETE", "/v1/keypairs/laptop", token=bob)
    assert deleted.status == 204, deleted.body
    assert (await gateway.call("GET", "/v1/keypairs/laptop", token=bob)).status == 404
    assert (await gateway.call("DELETE", "/v1/keypairs/laptop", token=bob)).status == 404
    assert (await gateway.call("GET", "/v1/keypairs/laptop", token=alice)).status == 200

    logged = await _logged(gateway)
    kinds = [(type(e.payload).__name__, e.aggregate_id) for e in logged if "Keypair" in e.type]
    # Each tenant's events in their order; the two tenants' may lie on different partitions of
    # the api topic, which are read in no set order.
    assert sorted(kinds) == sorted(
        [
            ("KeypairImported", f"{alice_id}/laptop"),
            ("KeypairImported", f"{bob_id}/laptop"),
            ("KeypairDeleted", f"{bob_id}/laptop"),
        ]
    )
    assert [kind for kind, key in kinds if key == f"{bob_id}/laptop"] == [
        "KeypairImported",
        "KeypairDeleted",
    ]
    # Rebuilt from the log alone, the projection is the same.
    await gateway.restart(snapshot=False)
    rebuilt = await gateway.call("GET", "/v1/keypairs", token=alice)
    assert rebuilt.body["items"] == [created.body]
    assert (await gateway.call("GET", "/v1/keypairs", token=bob)).body["items"] == []


async def test_keypairs_count_against_their_quota(gateway: Gateway, tmp_path: Path) -> None:
    _, token = await gateway.tenant(quotas={"keypairs": 1})
    first, _ = _keygen(tmp_path, "ecdsa", "-b", "256")
    second, _ = _keygen(tmp_path, "ed25519")
    ok = await gateway.call(
        "POST", "/v1/keypairs", token=token, json={"name": "a", "public_key": first}
    )
    assert ok.status == 201, ok.body
    over = await gateway.call(
        "POST", "/v1/keypairs", token=token, json={"name": "b", "public_key": second}
    )
    assert (over.status, over.problem_fields) == (403, ["keypairs"])
    quota = await gateway.call("GET", "/v1/quotas", token=token)
    assert quota.body["usage"]["keypairs"] == 1


async def test_an_instance_request_carries_the_key_user_data_and_hostname(
    gateway: Gateway, tmp_path: Path
) -> None:
    tenant_id, token = await gateway.tenant()
    key, _ = _keygen(tmp_path, "ecdsa", "-b", "384")
    imported = await gateway.call(
        "POST", "/v1/keypairs", token=token, json={"name": "ops", "public_key": key}
    )
    assert imported.status == 201, imported.body
    script = base64.b64encode(b"#!/bin/sh\ntouch /var/tmp/marker\n").decode()
    instance = await gateway.instance(
        token, "Web_Front.1", key_name="ops", user_data=script, config_drive=True
    )
    assert instance["hostname"] == "web-front-1"
    assert (instance["key_name"], instance["config_drive"]) == ("ops", True)
    assert "user_data" not in instance

    for fields, field in [
        ({"key_name": "nope"}, "key_name"),
        ({"user_data": "#!/bin/sh"}, "user_data"),
        ({"user_data": base64.b64encode(bytes(64 * 1024 + 1)).decode()}, "user_data"),
    ]:
        refused = await gateway.call(
            "POST", "/v1/instances", token=token, json={"name": "x", "flavor": "m1.small", **fields}
        )
        assert (refused.status, refused.problem_fields) == (422, [field]), refused.body

    # The key was copied: deleting the keypair changes nothing for the instance.
    assert (await gateway.call("DELETE", "/v1/keypairs/ops", token=token)).status == 204
    logged = await _logged(gateway)
    [request] = [e for e in logged if isinstance(e.payload, api.InstanceRequested)]
    assert (request.aggregate_id, request.tenant_id) == (instance["id"], tenant_id)
    assert request.payload.public_keys == (imported.body["public_key"],)
    assert request.payload.key_name == "ops"
    assert request.payload.user_data == script
    assert request.payload.hostname == "web-front-1"
    assert request.payload.config_drive is True
    shown = await gateway.call("GET", f"/v1/instances/{instance['id']}", token=token)
    assert shown.body["key_name"] == "ops"


async def test_an_instance_lists_its_boot_volume(gateway: Gateway) -> None:
    _, token = await gateway.tenant()
    instance = await gateway.instance(token, "web")
    assert instance["volumes"] == []
    boot = storage.VolumeCreated(name="web-boot", size_gb=1, instance_id=instance["id"])
    await gateway.feed("storage", [("vol-boot-1", boot)])
    path = f"/v1/instances/{instance['id']}"

    def listed() -> bool:
        assert gateway.runner is not None
        return gateway.runner.state.instances[instance["id"]].boot_volume is not None

    await wait_until(listed)
    shown = await gateway.call("GET", path, token=token)
    assert shown.body["volumes"] == [{"volume_id": "vol-boot-1", "device": "vda"}]
    await gateway.feed("storage", [("vol-boot-1", storage.VolumeDeleted())])
    await wait_until(lambda: not listed())
    assert (await gateway.call("GET", path, token=token)).body["volumes"] == []
