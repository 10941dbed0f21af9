"""Effects (frozen dataclasses) to JSON and back, for the operation journal.

Generic over the field types services use: nested dataclasses (tagged with their class name,
so a union of several dataclasses decodes to the right one), tuples, frozensets, dicts,
datetimes, enums, literals and optionals. Decoding follows the dataclass's type hints.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from datetime import datetime
from typing import Any

import orjson

_TAG = "$type"


def encode_effect(effect: Any) -> bytes:
    return orjson.dumps(_plain(effect))


def decode_effect(cls: type[Any], data: bytes) -> Any:
    return _build(cls, orjson.loads(data))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {_TAG: type(value).__name__, **out}
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list | frozenset | set):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot journal a {type(value).__name__}")


@functools.cache
def _hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(hint: Any, data: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or origin is typing.Literal:
        return data
    if origin in (typing.Union, types.UnionType):
        return _build_union(args, data)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], item) for item in data)
        return tuple(_build(arg, item) for arg, item in zip(args, data, strict=True))
    if origin in (list, frozenset, set):
        return origin(_build(args[0], item) for item in data)
    if origin is dict:
        return {_build(args[0], k): _build(args[1], v) for k, v in data.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(data, dict) or data.get(_TAG) != hint.__name__:
            raise TypeError(f"not a {hint.__name__}: {data!r:.80}")
        hints = _hints(hint)
        kwargs = {
            f.name: _build(hints[f.name], data[f.name])
            for f in dataclasses.fields(hint)
            if f.init and f.name in data
        }
        return hint(**kwargs)
    if hint is datetime:
        return datetime.fromisoformat(data)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(data)
    if hint is float and isinstance(data, int):
        return float(data)
    return data


def _build_union(args: tuple[Any, ...], data: Any) -> Any:
    if data is None and type(None) in args:
        return None
    options = [arg for arg in args if arg is not type(None)]
    if isinstance(data, dict) and _TAG in data:
        options = [a for a in options if getattr(a, "__name__", None) == data[_TAG]] or options
    for option in options:
        try:
            return _build(option, data)
        except (TypeError, ValueError, KeyError):
            continue
    raise TypeError(f"no type of {args} fits {data!r:.80}")
