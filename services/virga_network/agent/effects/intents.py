"""The agent's effects as data: what `decide` asks the handlers (`effects.converge`) to do."""

from __future__ import annotations

from dataclasses import dataclass

from virga_network.agent.core.plan import HostPlan


@dataclass(frozen=True, slots=True)
class Converge:
    """Make the host match `plan` (PortBound, PortBindingFailed, PortUnbound)."""

    plan: HostPlan

    @property
    def key(self) -> str:
        return f"converge:{self.plan.host}"


@dataclass(frozen=True, slots=True)
class Register:
    """Check the host can plumb ports, then say so (NetworkAgentRegistered)."""

    host: str
    vtep_ip: str
    announce: bool = True
    """False when the log already holds this host's registration with this VTEP."""

    @property
    def key(self) -> str:
        return f"converge:{self.host}"  # before the first convergence
