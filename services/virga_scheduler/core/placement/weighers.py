"""Weighers rank the hosts that passed every filter: spread load out (default) or pack it in.

Both rank by one score, the host's free capacity in its scarcer resource::

    score = min(free vCPU / fleet's largest vCPU limit, free RAM / fleet's largest RAM limit)

Dividing by the fleet's largest host puts vCPUs (tens) and MB (hundreds of thousands) on one
0..1 scale. Taking the minimum rather than a sum (Nova adds its RAM and CPU weighers) is because
a host is only as free as its scarcest resource: one with idle vCPUs and no RAM left can take
nothing and must not rank as half empty. With a sum, such hosts crowd the top of the pack order
and each request stepped over ~230 of them in the 10,000-host bench; with the minimum, under 1.

Nova also normalizes over each request's candidates; normalizing over the fleet gives every host
a score of its own, so the view keeps hosts ranked as claims come and go instead of re-weighing
10,000 hosts per request. Limits and free amounts include allocation ratios, exactly as the
capacity filter counts them, so any host that fits a request scores at least ``score(request)``:
the scheduler never looks below that line.
"""

from __future__ import annotations

from enum import StrEnum

from .persistent import Key


class Weigher(StrEnum):
    """How hosts that fit are ranked."""

    SPREAD = "spread"
    """Most free capacity first: fewer instances share a failure, and noisy neighbours."""
    PACK = "pack"
    """Least free capacity (that still fits) first: keeps whole hosts empty for big flavors
    or for powering down."""


def score(vcpus: float, ram_mb: float, vcpu_scale: float, ram_scale: float) -> float:
    """Score of ``vcpus`` and ``ram_mb`` free, on a fleet whose largest limits are the scales.

    Monotone in both amounts, which is what makes ``score(request)`` a floor for hosts that fit.
    """
    return min(vcpus / vcpu_scale, ram_mb / ram_scale)


def rank_key(weigher: Weigher, host_score: float, host: str) -> Key:
    """Sort key under ``weigher``: the preferred host sorts first; equal scores go by name so
    equal input always gives the same host."""
    if weigher is Weigher.SPREAD:
        return (-host_score, host)
    return (host_score, host)
