"""The one fold style: a table dispatched on the payload's type."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from virga_events import Envelope, new_event
from virga_events.catalog.api import HostDisabled, HostEnabled
from virga_runtime.folding import Folds


@dataclass
class Hosts:
    disabled: set[str] = field(default_factory=set)


folds: Folds[Hosts] = Folds()


@folds.on(HostDisabled)
def _disabled(state: Hosts, envelope: Envelope, event: HostDisabled) -> None:
    state.disabled.add(envelope.aggregate_id)


def _event(payload: HostDisabled | HostEnabled) -> Envelope:
    return new_event(payload, aggregate_id="hv-1", tenant_id=None, producer="gateway")


def test_a_registered_type_is_folded_and_others_leave_the_state_alone() -> None:
    state = Hosts()
    assert folds.evolve(state, _event(HostDisabled(reason="maintenance"))) is state
    assert state.disabled == {"hv-1"}
    folds.evolve(state, _event(HostEnabled()))
    assert state.disabled == {"hv-1"}
    assert folds.event_types == frozenset({HostDisabled})


def test_a_type_has_one_fold() -> None:
    with pytest.raises(ValueError, match="HostDisabled already has a fold"):
        folds.add(HostDisabled, _disabled)


def test_a_fold_includes_a_part_kept_elsewhere_but_never_a_type_twice() -> None:
    part: Folds[Hosts] = Folds()
    part.add(HostEnabled, lambda state, envelope, _: state.disabled.discard(envelope.aggregate_id))
    whole: Folds[Hosts] = Folds()
    whole.add(HostDisabled, _disabled)
    whole.include(part)
    state = whole.evolve(Hosts(), _event(HostDisabled(reason="maintenance")))
    assert whole.evolve(state, _event(HostEnabled())).disabled == set()
    with pytest.raises(ValueError, match="HostEnabled already has a fold"):
        whole.include(part)
