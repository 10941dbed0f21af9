"""Keypairs in the projection and the requests that use them: per tenant, a name once, the
key copied into an instance's request; user data and host names checked and made."""

from __future__ import annotations

import base64
from functools import partial

import pytest
from tests.unit.gateway.events import at, envelope, fold
from tests.unit.gateway.test_commands import ALICE, BOB, problem_of

from virga_audit import quotas as audit
from virga_events import Envelope
from virga_events.catalog import Flavor, api, storage
from virga_events.catalog.quotas import TenantQuotaSet
from virga_gateway.auth import Principal
from virga_gateway.instances.bodies import CreateInstance
from virga_gateway.instances.commands import create_instance
from virga_gateway.instances.guest import hostname_for
from virga_gateway.instances.views import instance_view
from virga_gateway.keypairs.bodies import ImportKeypair
from virga_gateway.keypairs.commands import delete_keypair, import_keypair
from virga_gateway.keypairs.queries import find_keypair, list_keypairs
from virga_gateway.preview import preview
from virga_gateway.quotas.model import usage
from virga_gateway.state import GatewayState, restore, snapshot
from virga_gateway.tenants.commands import delete_tenant, owned
from virga_runtime.service import Emit

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICce7z0PRcNBmeiMXHfW8a0FAZR5AkREjPZlkZSs6Scd a@b"


def _with_keypair(
    state: GatewayState, principal: Principal = ALICE, name: str = "laptop"
) -> GatewayState:
    outcome = import_keypair(state, principal, ImportKeypair(name=name, public_key=KEY))
    (emit,) = outcome.emits
    return fold(envelope(emit.payload, emit.aggregate_id, tenant=emit.tenant_id), state=state)


def _tenants() -> GatewayState:
    return fold(
        envelope(api.TenantCreated(name="alice"), "t1", tenant="t1"),
        envelope(api.TenantCreated(name="bob"), "t2", tenant="t2"),
    )


def test_an_imported_keypair_is_the_tenants_own_and_its_name_is_taken_once() -> None:
    state = _tenants()
    outcome = import_keypair(state, ALICE, ImportKeypair(name="laptop", public_key=KEY + "\n"))
    (emit,) = outcome.emits
    assert isinstance(emit.payload, api.KeypairImported)
    assert (outcome.status, emit.tenant_id, emit.payload.type) == (201, "t1", "ssh-ed25519")
    assert emit.payload.public_key == KEY  # the trailing newline of the file is gone
    assert emit.payload.fingerprint.startswith("SHA256:")
    state = _with_keypair(state)
    assert find_keypair(state, "t1", "laptop").fingerprint == emit.payload.fingerprint
    taken = problem_of(
        lambda: import_keypair(state, ALICE, ImportKeypair(name="laptop", public_key=KEY))
    )
    assert (taken.status, [e.field for e in taken.errors]) == (409, ["name"])
    # Another tenant may use the same name; neither sees the other's.
    state = _with_keypair(state, BOB)
    assert [k.tenant_id for k in list_keypairs(state, ALICE, limit=10).items] == ["t1"]
    assert [k.tenant_id for k in list_keypairs(state, BOB, limit=10).items] == ["t2"]
    assert usage(state, "t1")["keypairs"] == 1


def test_a_malformed_key_is_a_422_naming_public_key() -> None:
    body = ImportKeypair(name="k", public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==")
    problem = problem_of(lambda: import_keypair(_tenants(), ALICE, body))
    assert (problem.status, [e.field for e in problem.errors]) == (422, ["public_key"])


def test_deleting_a_keypair_frees_its_name_and_leaves_instances_their_copy() -> None:
    state = _with_keypair(_tenants())
    created = create_instance(
        state, ALICE, CreateInstance(name="web", flavor="m1.tiny", key_name="laptop"), "i1"
    )
    (request,) = created.emits
    assert isinstance(request.payload, api.InstanceRequested)
    assert request.payload.public_keys == (KEY,)
    state = fold(envelope(request.payload, "i1", tenant="t1"), state=state)
    assert problem_of(lambda: delete_keypair(state, "t2", "laptop")).status == 404
    (deleted,) = delete_keypair(state, "t1", "laptop").emits
    state = fold(
        envelope(deleted.payload, deleted.aggregate_id, tenant="t1", seconds=5), state=state
    )
    assert problem_of(lambda: find_keypair(state, "t1", "laptop")).status == 404
    assert usage(state, "t1")["keypairs"] == 0
    assert instance_view(state.instances["i1"]).key_name == "laptop"
    assert _with_keypair(state).keypairs["t1/laptop"].name == "laptop"


def test_an_instance_names_only_its_tenants_keypairs_and_valid_user_data() -> None:
    state = _with_keypair(_tenants(), BOB)
    big = base64.b64encode(b"x" * (64 * 1024 + 1)).decode()
    for fields, field in [
        ({"key_name": "laptop"}, "key_name"),  # Bob's, not Alice's
        ({"user_data": "not base64!"}, "user_data"),
        ({"user_data": "QUJD\nREVG"}, "user_data"),
        ({"user_data": "QUJDRA"}, "user_data"),  # padding missing
        ({"user_data": big}, "user_data"),
    ]:
        body = CreateInstance(name="web", flavor="m1.tiny", **fields)  # type: ignore[arg-type]
        problem = problem_of(partial(create_instance, state, ALICE, body, "i1"))
        assert (problem.status, [e.field for e in problem.errors]) == (422, [field]), fields
    fits = base64.b64encode(b"#!/bin/sh\n" + b"x" * (64 * 1024 - 10)).decode()
    body = CreateInstance(name="Web_Server.1", flavor="m1.tiny", user_data=fits, config_drive=True)
    (emit,) = create_instance(state, ALICE, body, "i1").emits
    assert isinstance(emit.payload, api.InstanceRequested)
    assert (emit.payload.user_data, emit.payload.config_drive) == (fits, True)
    assert emit.payload.hostname == "web-server-1"
    assert (emit.payload.key_name, emit.payload.public_keys) == (None, ())


@pytest.mark.parametrize(
    ("name", "hostname"),
    [
        ("web", "web"),
        ("Web_Server.example", "web-server-example"),
        ("--a__b..c--", "a-b-c"),
        ("a" * 62 + "-b", "a" * 62),  # cut at 63, then no trailing '-'
        ("___", "instance-0f1e2d3c"),
        ("...", "instance-0f1e2d3c"),
    ],
)
def test_the_hostname_is_the_name_as_an_rfc_1123_label(name: str, hostname: str) -> None:
    assert hostname_for(name, "0F1E2D3C-aaaa-bbbb-cccc-000000000000") == hostname


def test_the_view_lists_the_boot_volume_at_vda_until_it_is_deleted() -> None:
    state = fold(
        envelope(api.InstanceRequested(name="web", flavor=_tiny()), "i1", tenant="t1"),
        envelope(
            storage.VolumeCreated(name="web-boot", size_gb=1, instance_id="i1"),
            "v-boot",
            tenant="t1",
            producer="storage",
            seconds=1,
        ),
    )
    volumes = instance_view(state.instances["i1"]).volumes
    assert [(v.volume_id, v.device) for v in volumes] == [("v-boot", "vda")]
    # A preview of a write (its answer) shows it too.
    stop = Emit(api.InstanceActionRequested(action="stop"), "i1", "t1")
    after = preview(state, [stop], at(3), "c1")
    assert [v.volume_id for v in instance_view(after.instances["i1"]).volumes] == ["v-boot"]
    state = fold(
        envelope(storage.VolumeDeleted(), "v-boot", tenant="t1", producer="storage", seconds=2),
        state=state,
    )
    assert instance_view(state.instances["i1"]).volumes == []


def _tiny() -> Flavor:
    return _tenants().flavors["m1.tiny"]


def test_the_audit_counts_keypairs_as_the_gateway_does_and_finds_one_over_quota() -> None:
    def imported(name: str, seconds: float) -> Envelope:
        event = api.KeypairImported(
            name=name, public_key=KEY, fingerprint="SHA256:x", type="ssh-ed25519"
        )
        return envelope(event, f"t1/{name}", tenant="t1", seconds=seconds)

    facts = [
        envelope(TenantQuotaSet(limits={"keypairs": 1}), "t1"),
        imported("a", 1),
        envelope(api.KeypairDeleted(), "t1/a", tenant="t1", seconds=2),
        imported("b", 3),
    ]
    model = audit.fold_all(facts)
    assert model.violations == []
    assert model.usage("t1") == usage(fold(*facts), "t1")
    assert model.usage("t1")["keypairs"] == 1
    over = audit.fold_all([*facts, imported("c", 4)]).violations
    assert [(v.resource, v.limit, v.usage) for v in over] == [("keypairs", 1, 2)]


def test_a_tenant_with_a_keypair_is_not_deleted_and_snapshots_keep_keypairs() -> None:
    state = _with_keypair(_tenants())
    assert owned(state, "t1") == {"keypairs": 1}
    refused = problem_of(lambda: delete_tenant(state, "t1"))
    assert (refused.status, [e.field for e in refused.errors]) == (409, ["keypairs"])
    restored = restore(snapshot(state))
    assert restored.keypairs == state.keypairs
    assert [k.name for k in list_keypairs(restored, ALICE, limit=5).items] == ["laptop"]
    assert usage(restored, "t1")["keypairs"] == 1
