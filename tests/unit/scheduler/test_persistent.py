"""The immutable collections behave like a dict and a sorted set, and old versions never change."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from virga_scheduler.core.placement.persistent import Key, PMap, SortedKeys

names = st.text("abcdefgh", min_size=1, max_size=3)


@settings(deadline=None, database=None)
@given(st.lists(st.tuples(st.booleans(), names, st.integers())))
def test_pmap_matches_a_dict_and_keeps_every_version(ops: list[tuple[bool, str, int]]) -> None:
    pmap: PMap[str, int] = PMap()
    model: dict[str, int] = {}
    versions = [(pmap, dict(model))]
    for is_set, key, value in ops:
        if is_set:
            pmap, model[key] = pmap.set(key, value), value
        else:
            pmap = pmap.delete(key)
            model.pop(key, None)
        versions.append((pmap, dict(model)))
    for version, expected in versions:
        assert len(version) == len(expected)
        assert sorted(version) == sorted(expected)
        assert {k: version.get(k) for k in expected} == expected


keys = st.tuples(st.integers(-50, 50).map(float), names)


@settings(deadline=None, database=None)
@given(st.lists(st.tuples(st.booleans(), keys), max_size=700), keys)
def test_sorted_keys_match_a_sorted_set_and_keep_every_version(
    ops: list[tuple[bool, Key]], low: Key
) -> None:
    # Up to 700 adds go past the chunk size, so chunks split and empty ones disappear.
    seq, model = SortedKeys(), set[Key]()
    versions = [(seq, set(model))]
    for is_add, key in ops:
        if is_add:
            seq = seq.add(key)
            model.add(key)
        elif key in model:
            seq = seq.remove(key)
            model.discard(key)
        versions.append((seq, set(model)))
    for version, expected in versions:
        assert list(version) == sorted(expected)
        assert len(version) == len(expected)
        assert list(version.iter_from(low)) == sorted(k for k in expected if k >= low)


def test_removing_an_absent_key_is_an_error_not_a_silent_no_op() -> None:
    with pytest.raises(KeyError):
        SortedKeys([(1.0, "a")]).remove((2.0, "a"))
    with pytest.raises(KeyError):
        SortedKeys().remove((1.0, "a"))


def test_sorted_keys_stay_sorted_through_chunk_splits_and_drains() -> None:
    seq, added = SortedKeys(), []
    for n in range(1000):
        key = (float((n * 7919) % 1000), f"h{n}")
        seq = seq.add(key)
        added.append(key)
    assert list(seq) == sorted(added)
    for key in added[::2]:
        seq = seq.remove(key)
    assert list(seq) == sorted(added[1::2])
    assert len(seq) == 500
