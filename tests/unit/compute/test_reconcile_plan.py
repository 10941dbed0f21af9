"""Start-up reconciliation decisions: the log's instances against the host's domains."""

from __future__ import annotations

import pytest

from virga_compute.config import RestartPolicy
from virga_compute.core.reconcile import Expected, Step, StepAction, plan
from virga_compute.core.spec import DomainInfo, DomainState, InstanceSpec


def expected(should_run: bool = True, lost: bool = False, instance_id: str = "i-1") -> Expected:
    spec = InstanceSpec(instance_id=instance_id, name="vm", vcpus=1, ram_mb=128)
    return Expected(spec, "t-1", should_run=should_run, lost=lost)


def actions(item: Expected, state: DomainState | None, policy: RestartPolicy) -> list[StepAction]:
    found = [] if state is None else [DomainInfo(item.spec.instance_id, state)]
    return [step.action for step in plan([item], found, policy)]


@pytest.mark.parametrize(
    ("item", "state", "restart", "report"),
    [
        # Gone while it should run: reported once, spawned again only under `restart`.
        (expected(), None, ["report_lost", "respawn"], ["report_lost"]),
        (expected(lost=True), None, ["respawn"], []),
        # Gone while stopped: reported; a later start request spawns it.
        (expected(should_run=False), None, ["report_lost"], ["report_lost"]),
        # Shut off (host reboot, guest poweroff, crash) while it should run.
        (expected(), DomainState.SHUTOFF, ["power_on"], ["record_stopped"]),
        (expected(), DomainState.CRASHED, ["power_on"], ["record_stopped"]),
        # Running while the log says stopped.
        (expected(should_run=False), DomainState.RUNNING, ["power_off"], ["record_running"]),
        (expected(), DomainState.PAUSED, ["power_on"], []),
        # Agreement: nothing to do.
        (expected(), DomainState.RUNNING, [], []),
        (expected(should_run=False), DomainState.SHUTOFF, [], []),
        # A lost domain that is back: recorded as it is.
        (expected(lost=True), DomainState.RUNNING, ["record_running"], ["record_running"]),
        (expected(False, lost=True), DomainState.SHUTOFF, ["record_stopped"], ["record_stopped"]),
    ],
)
def test_each_disagreement_gets_the_policys_answer(
    item: Expected,
    state: DomainState | None,
    restart: list[StepAction],
    report: list[StepAction],
) -> None:
    assert actions(item, state, "restart") == restart
    assert actions(item, state, "report") == report


@pytest.mark.parametrize("policy", ["restart", "report"])
def test_domains_the_log_does_not_place_here_are_only_reported(policy: RestartPolicy) -> None:
    found = [
        DomainInfo("i-1", DomainState.RUNNING),
        DomainInfo("i-ghost", DomainState.RUNNING),
        DomainInfo("i-leaving", DomainState.RUNNING),
        DomainInfo("i-off", DomainState.SHUTOFF),
    ]
    steps = plan([expected()], found, policy, leave_alone=["i-leaving"])
    assert steps == [Step("report_unknown", "i-ghost"), Step("report_unknown", "i-off")]
