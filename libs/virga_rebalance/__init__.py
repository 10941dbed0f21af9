"""The rebalancer: live-migrations that lower a cluster's imbalance without breaking a
placement rule (Ganeti hbal's idea). Pure, no I/O.

The gateway answers ``GET /v1/rebalance`` with it from the hosts, instances and server groups
it folds (it is where the admin asks, and it already holds every input), and writes the plan
it computed as ``RebalanceRequested`` for the scheduler to execute: a library, so that no
service imports another. The scheduler re-checks every move against its own placement filters
when the move's migration claims its destination, so a move the cluster no longer allows is
skipped, never forced.

``model``: the inputs (hosts, instances, server groups, options) and the ``Plan``.
``planner``: ``plan(...)``, the greedy search, and ``score(...)``, the imbalance it lowers.
"""

from .model import Group, HostInput, InstanceInput, Move, Options, Plan
from .planner import plan, score

__all__ = ["Group", "HostInput", "InstanceInput", "Move", "Options", "Plan", "plan", "score"]
