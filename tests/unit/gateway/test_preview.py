"""The scratch state a write's response is rendered from: every table is copied by a rule."""

from __future__ import annotations

import msgspec
from tests.unit.gateway.events import at, fold, requested, scheduled

from virga_events.catalog import api
from virga_gateway.preview import preview
from virga_gateway.state import PREVIEW_COPIES, GatewayState
from virga_runtime.service import Emit


def test_every_table_of_the_state_says_how_a_preview_copies_it() -> None:
    # A table added to GatewayState without a rule fails here (and in every preview).
    tables = [field.name for field in msgspec.structs.fields(GatewayState)]
    assert sorted(PREVIEW_COPIES) == sorted(tables)


def test_a_preview_folds_the_events_into_copies_and_leaves_the_state_as_it_was() -> None:
    state = fold(requested("i1"), scheduled("i1"))
    before = msgspec.json.encode(state)
    emits = [Emit(api.InstanceDeletionRequested(), "i1", "t1")]

    scratch = preview(state, emits, at(5), "correlation-1")

    assert scratch.instances["i1"].status == "DELETING"
    assert scratch.flavors == state.flavors  # a shared table is carried over
    assert msgspec.json.encode(state) == before  # the projection itself is untouched
