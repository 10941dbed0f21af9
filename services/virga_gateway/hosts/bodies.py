"""Request bodies of host actions and allocation ratios, with their constraints."""

from __future__ import annotations

from typing import Literal

from virga_gateway.validation import Body, Ratio, Reference, Text


class HostAction(Body):
    action: Literal["disable", "enable", "drain"]
    """``drain`` disables the host and live-migrates its running instances away."""
    reason: Text = ""


class SetAllocationRatios(Body):
    cpu: Ratio
    ram: Ratio
    disk: Ratio
    host: Reference | None = None
    """A host's own ratios; none: the default of every host without its own."""
