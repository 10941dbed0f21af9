"""A snapshot is only a shortcut: one the release cannot read is ignored, never fatal."""

from __future__ import annotations

from typing import Any

from virga_runtime.snapshots import Snapshot, restore_state


def snapshot(state: Any, version: int = 1) -> Snapshot:
    return Snapshot(
        state=state,
        inputs={},
        own={},
        recent_ids=[],
        chain=(3, "abc"),
        events_applied=3,
        state_version=version,
    )


def test_a_snapshot_of_this_version_is_restored() -> None:
    assert restore_state(snapshot({"n": 1}), dict, 1, "svc") == {"n": 1}


def test_a_snapshot_of_another_version_is_ignored() -> None:
    assert restore_state(snapshot({"n": 1}, version=1), dict, 2, "svc") is None


def test_a_snapshot_restore_cannot_read_is_ignored() -> None:
    def restore(data: Any) -> dict[str, int]:
        return {"n": data["count"]}  # a release that renamed the field

    assert restore_state(snapshot({"n": 1}), restore, 1, "svc") is None


def test_snapshots_written_before_versions_read_as_version_1() -> None:
    old = snapshot({"n": 1}).to_bytes().replace(b',"state_version":1', b"")
    assert b"state_version" not in old
    assert Snapshot.from_bytes(old).state_version == 1
    assert Snapshot.from_bytes(snapshot({"n": 1}, version=4).to_bytes()).state_version == 4
