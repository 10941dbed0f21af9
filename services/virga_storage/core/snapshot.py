"""The storage state as plain values and back, for the runner's state snapshots."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from virga_storage.core.model import ImageRecord, StorageState, VolumeRecord


def snapshot(state: StorageState) -> dict[str, Any]:
    """The state as orjson-able values; `restore` is its inverse."""
    return {
        "volumes": [asdict(r) for r in state.volumes.values()],
        "images": [asdict(r) for r in state.images.values()],
        "snapshots": [[k, v] for k, v in state.snapshots.items()],
        "deleted": list(state.deleted),
    }


def restore(data: dict[str, Any]) -> StorageState:
    return StorageState(
        volumes={raw["volume_id"]: VolumeRecord(**raw) for raw in data["volumes"]},
        images={raw["image_id"]: ImageRecord(**raw) for raw in data.get("images", [])},
        snapshots={k: v for k, v in data["snapshots"]},
        deleted=dict.fromkeys(data["deleted"]),
    )
