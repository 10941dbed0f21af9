"""Driver value types reject what would otherwise fail inside the hypervisor."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from virga_compute.core.spec import (
    CephMonitor,
    DirectKernelBoot,
    DiskSpec,
    FileSource,
    InstanceSpec,
    NicSpec,
    RbdSource,
)

MON = (CephMonitor("127.0.0.1"),)


def instance(**overrides: object) -> InstanceSpec:
    fields: dict[str, object] = {"instance_id": "i-1", "name": "n", "vcpus": 1, "ram_mb": 64}
    fields.update(overrides)
    return InstanceSpec(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: instance(instance_id="a/b"), id="slash-in-id"),
        pytest.param(lambda: instance(instance_id=""), id="empty-id"),
        pytest.param(lambda: instance(instance_id="x" * 65), id="long-id"),
        pytest.param(lambda: instance(vcpus=0), id="no-vcpu"),
        pytest.param(lambda: instance(ram_mb=-1), id="negative-ram"),
        pytest.param(
            lambda: instance(disks=(DiskSpec("vda", FileSource("/a")),) * 2), id="dup-target"
        ),
        pytest.param(
            lambda: instance(nics=(NicSpec("52:54:00:00:00:01", "t1"),) * 2), id="dup-nic"
        ),
        pytest.param(lambda: DiskSpec("sda", FileSource("/a")), id="non-virtio-target"),
        pytest.param(lambda: DiskSpec("vda", FileSource("relative.img")), id="relative-path"),
        pytest.param(lambda: DiskSpec("vda", FileSource("/a"), serial="x" * 21), id="long-serial"),
        pytest.param(lambda: RbdSource("rbd", "img@snap", MON), id="snapshot-in-image"),
        pytest.param(lambda: RbdSource("rb/d", "img", MON), id="slash-in-pool"),
        pytest.param(lambda: RbdSource("rbd", "img", ()), id="no-monitor"),
        pytest.param(lambda: RbdSource("rbd", "img", MON, auth_user="u"), id="user-no-secret"),
        pytest.param(
            lambda: RbdSource("rbd", "img", MON, auth_user="u", secret_uuid="nope"), id="bad-uuid"
        ),
        pytest.param(lambda: CephMonitor("127.0.0.1", 0), id="port-0"),
        pytest.param(lambda: CephMonitor("a b"), id="space-in-host"),
        pytest.param(lambda: NicSpec("52:54:00:00:00:0", "t"), id="short-mac"),
        pytest.param(lambda: NicSpec("01:00:5e:00:00:01", "t"), id="multicast-mac"),
        pytest.param(lambda: NicSpec("52:54:00:00:00:01", "t" * 16), id="long-tap"),
        pytest.param(lambda: NicSpec("52:54:00:00:00:01", "t", bridge="b r"), id="bad-bridge"),
        pytest.param(lambda: DirectKernelBoot("vmlinuz"), id="relative-kernel"),
    ],
)
def test_invalid_values_are_rejected(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        build()


def test_valid_values_are_accepted() -> None:
    disk = DiskSpec(
        "vdaa",
        RbdSource(
            "rbd",
            "vol-1",
            MON,
            auth_user="virga",
            secret_uuid="5c2e5e0e-6c5e-4a52-9a1f-0e7f1f6f2a10",
        ),
        serial="vol-1",
    )
    spec = instance(disks=(disk,), nics=(NicSpec("52:54:00:00:00:01", "tap-0123456789a"),))
    assert spec.disks[0].target_dev == "vdaa"
