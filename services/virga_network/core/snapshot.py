"""The network controller's snapshot: its whole state as one JSON string, and back."""

from __future__ import annotations

from typing import Any

import msgspec

from virga_network.core.model import NetworkState

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(NetworkState)


def snapshot(state: NetworkState) -> str:
    """The state as one JSON string; `restore` is its inverse."""
    return _ENCODER.encode(state).decode()


def restore(value: Any) -> NetworkState:
    return _DECODER.decode(value)
