"""Capacity filter: the request's vCPU, RAM and disk must fit in what the host has left to sell.

"Left to sell" is the host's physical amount times its allocation ratio (an administrator's
per-host override, else the global ratio) minus what its claims already hold. Limits and usage
are precomputed in the view, so a check is three subtractions.
"""

from ..model import Host, PlacementRequest, Rejection
from ..view import PlacementView

NAME = "capacity"


def capacity(host: Host, request: PlacementRequest, view: PlacementView) -> Rejection | None:
    limits = view.limits_of(host.name)
    used = view.usage_of(host.name)
    free_cpu = limits.vcpus - used.vcpus
    free_ram = limits.ram_mb - used.ram_mb
    free_disk = limits.disk_gb - used.disk_gb
    if request.vcpus <= free_cpu and request.ram_mb <= free_ram and request.disk_gb <= free_disk:
        return None
    # Reported one resource at a time, in the order users size flavors by: the first shortfall
    # is enough to explain the refusal.
    resources = (
        ("vCPU", request.vcpus, free_cpu, limits.vcpus, host.vcpus, limits.ratios.cpu),
        ("MB RAM", request.ram_mb, free_ram, limits.ram_mb, host.ram_mb, limits.ratios.ram),
        ("GB disk", request.disk_gb, free_disk, limits.disk_gb, host.disk_gb, limits.ratios.disk),
    )
    unit, needed, free, limit, physical, ratio = next(r for r in resources if r[1] > r[2])
    return Rejection(
        NAME,
        host.name,
        f"without {needed} {unit} free",
        f"host {host.name} needs {needed} {unit}, {_amount(free)} free of {_amount(limit)}"
        f" ({physical} physical at ratio {ratio:g})",
    )


def _amount(value: float) -> str:
    # Limits are floats only because ratios are: print 65536, not 65536.0 or 6.5536e+04.
    return f"{value:.0f}" if value.is_integer() else f"{value:.1f}"
