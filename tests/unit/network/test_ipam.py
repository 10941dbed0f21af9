"""Subnet rules and the address allocator: never an address twice, never a reserved one."""

from __future__ import annotations

import ipaddress
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from virga_ipam import SubnetError, parse_subnet, pool_size
from virga_network.core.ipam import next_free


@pytest.mark.parametrize(
    ("cidr", "why"),
    [
        ("10.0.0.1/24", "host bits set"),
        ("10.0.0.0/30", "prefix length"),
        ("10.0.0.0/32", "prefix length"),
        ("10.0.0.0/7", "prefix length"),
        ("fd00::/48", "prefix length"),
        ("fd00::/126", "prefix length"),
        ("fd00::1/64", "host bits set"),
        ("10.0.0.0", "not a CIDR"),
        ("10.0.0.300/24", "not a CIDR"),
        ("web", "not a CIDR"),
    ],
)
def test_a_bad_cidr_is_refused_naming_the_field(cidr: str, why: str) -> None:
    with pytest.raises(SubnetError) as caught:
        parse_subnet(cidr)
    assert caught.value.field == "cidr"
    assert why in caught.value.message


def test_reserved_addresses_stay_out_of_the_default_pools() -> None:
    v4 = parse_subnet("192.168.7.0/24")
    assert v4.gateway_ip == "192.168.7.1"
    [(low, high)] = v4.default_pools()
    assert (v4.address(low), v4.address(high)) == ("192.168.7.2", "192.168.7.254")
    v6 = parse_subnet("fd00:1::/64")
    [(low, high)] = v6.default_pools()
    assert (v6.address(low), v6.address(high)) == ("fd00:1::2", "fd00:1::ffff:ffff:ffff:ffff")
    assert pool_size(v6.default_pools()) == 2**64 - 2


@pytest.mark.parametrize(
    ("pools", "field"),
    [
        ([("10.0.0.1", "10.0.0.9")], "allocation_pools[0]"),  # the gateway
        ([("10.0.0.200", "10.0.0.255")], "allocation_pools[0]"),  # the broadcast address
        ([("10.0.0.9", "10.0.0.5")], "allocation_pools[0].end"),
        ([("10.0.1.9", "10.0.1.20")], "allocation_pools[0].start"),
        ([("10.0.0.10", "10.0.0.20"), ("10.0.0.20", "10.0.0.30")], "allocation_pools[1]"),
        ([("10.0.0.10", "fd00::1")], "allocation_pools[0].end"),
    ],
)
def test_a_bad_pool_is_refused_naming_it(pools: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(SubnetError) as caught:
        parse_subnet("10.0.0.0/24").pools(pools)
    assert caught.value.field == field


def test_pools_are_sorted_offsets() -> None:
    pools = parse_subnet("10.0.0.0/24").pools(
        [("10.0.0.100", "10.0.0.110"), ("10.0.0.5", "10.0.0.6")]
    )
    assert pools == ((5, 6), (100, 110))


@st.composite
def subnets_and_ops(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]], list[int]]:
    version = draw(st.sampled_from([4, 6]))
    prefix = draw(st.integers(26, 29)) if version == 4 else draw(st.integers(120, 124))
    cidr = "10.9.8.0/" + str(prefix) if version == 4 else f"fd00:9::/{prefix}"
    subnet = parse_subnet(cidr)
    pools: list[tuple[str, str]] = []
    if draw(st.booleans()):
        last = subnet.size - (2 if version == 4 else 1)
        cuts = sorted(draw(st.sets(st.integers(2, last), min_size=2, max_size=6)))
        for low, high in zip(cuts[::2], cuts[1::2], strict=False):
            pools.append((subnet.address(low), subnet.address(high)))
    # Positive: allocate; negative: free the n-th address in use.
    ops = draw(st.lists(st.integers(-8, 8), max_size=120))
    return cidr, pools, ops


@settings(max_examples=300, deadline=None)
@given(subnets_and_ops())
def test_the_allocator_never_hands_out_an_address_twice(
    case: tuple[str, list[tuple[str, str]], list[int]],
) -> None:
    cidr, given_pools, ops = case
    subnet = parse_subnet(cidr)
    pools = subnet.pools(given_pools)
    in_pools = {o for low, high in pools for o in range(low, high + 1)}
    used: set[int] = set()
    high_water = -1
    in_use_below = pools[0][0]  # kept as the controller's state keeps it
    for op in ops:
        if op < 0 and used:
            freed = sorted(used)[-op % len(used)]
            used.remove(freed)
            in_use_below = min(in_use_below, freed)
            continue
        offset = next_free(pools, used, high_water)
        assert next_free(pools, used, high_water, in_use_below) == offset  # only a shortcut
        if offset is None:
            assert used == in_pools  # refused only when every pool address is taken
            continue
        assert offset not in used
        assert offset in in_pools
        assert not subnet.reserved(offset)
        used.add(offset)
        high_water = max(high_water, offset)
        while in_use_below in used:
            in_use_below += 1
    network = ipaddress.ip_network(cidr)
    assert all(ipaddress.ip_address(subnet.address(o)) in network for o in used)


def test_a_freed_address_waits_until_the_pool_wraps() -> None:
    pools = parse_subnet("10.0.0.0/29").default_pools()  # .2 to .6
    used = {2, 3, 4}
    assert next_free(pools, used - {3}, high_water=4) == 5
    assert next_free(pools, {2, 4, 5, 6}, high_water=6) == 3


def test_an_ipv6_slash_64_is_never_enumerated() -> None:
    subnet = parse_subnet("fd00:2::/64")
    pools = subnet.default_pools()
    used: set[int] = set()
    high_water = -1
    started = time.perf_counter()
    for _ in range(10_000):
        offset = next_free(pools, used, high_water)
        assert offset is not None
        used.add(offset)
        high_water = offset
    assert time.perf_counter() - started < 1.0
    assert len(used) == 10_000
    assert min(used) == 2
