"""Idempotency keys: their syntax, request fingerprints, and per-key serialization."""

from __future__ import annotations

import asyncio

import pytest

from virga_gateway.idempotency import KeyedLocks, fingerprint, parse_key, record_id
from virga_gateway.problems import Problem


def test_the_fingerprint_is_of_the_json_meaning_not_its_spelling() -> None:
    a = fingerprint({"name": "web", "flavor": "m1.small", "traits": ["A", "B"]})
    b = fingerprint({"traits": ["A", "B"], "flavor": "m1.small", "name": "web"})
    assert a == b
    assert len(a) == 64
    assert fingerprint({"name": "web", "flavor": "m1.large", "traits": ["A", "B"]}) != a
    assert fingerprint({"name": "web", "flavor": "m1.small", "traits": ["B", "A"]}) != a


@pytest.mark.parametrize("key", ["a", "x" * 255, "order 66: retry #2 ~"])
def test_printable_keys_up_to_255_characters_are_accepted(key: str) -> None:
    assert parse_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 256, "new\nline", "tab\t", "é"])
def test_other_keys_are_a_400_naming_the_header(key: str) -> None:
    with pytest.raises(Problem) as caught:
        parse_key(key)
    assert caught.value.status == 400
    assert [e.field for e in caught.value.errors] == ["Idempotency-Key"]


def test_no_header_means_no_key() -> None:
    assert parse_key(None) is None


def test_keys_belong_to_their_principal() -> None:
    assert record_id("tenant:a", "k") != record_id("tenant:b", "k")
    assert record_id("tenant:a", "k") == record_id("tenant:a", "k")


async def test_holders_of_one_key_run_one_at_a_time_and_others_do_not_wait() -> None:
    locks = KeyedLocks()
    inside: list[str] = []
    overlaps: list[int] = []

    async def hold(key: str, name: str) -> None:
        async with locks.hold(key):
            inside.append(name)
            overlaps.append(sum(1 for n in inside if n.startswith(key)))
            await asyncio.sleep(0.01)
            inside.remove(name)

    await asyncio.gather(*(hold("a", f"a{i}") for i in range(5)), hold("b", "b0"))
    assert max(overlaps) == 1
    assert len(locks) == 0  # nothing is kept once nobody holds or waits
