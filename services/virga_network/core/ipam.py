"""The address allocator: the next free offset of a network's pools, without enumerating them.

Addresses are handed out upwards from the highest offset ever handed out (the high-water
mark), so a freed address is not given to the next port at once; only once the pools are
used up to their end does the search wrap and take the lowest freed address. The mark is a
maximum over every allocation the log holds, so a rebuild finds the same one whatever order
it folds them in, and decides the same.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

from virga_ipam import Pool


def next_free(
    pools: Sequence[Pool], used: Container[int], high_water: int, in_use_below: int = 0
) -> int | None:
    """The offset to hand out next, or None if every address of `pools` is in `used`.

    Above the mark nothing was ever handed out, so the first pool address there is free:
    O(number of pools). Below it the search walks the pools upwards from `in_use_below`, a
    bound under which every pool address is known to be in use (a shortcut: the answer is
    the lowest free address whatever the bound), O(addresses in use) at worst.
    """
    for low, high in pools:
        candidate = max(low, high_water + 1)
        if candidate <= high:
            return candidate
    for low, high in pools:
        for offset in range(max(low, in_use_below), min(high, high_water) + 1):
            if offset not in used:
                return offset
    return None
