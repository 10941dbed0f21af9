"""The chain checker on synthetic records: what a tampered log looks like, and a clean one."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from virga_audit import ChainChecker, RecordLocation, VerifyReport
from virga_events import encode, new_event, record_hash
from virga_events.catalog.compute import HostHeartbeat

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
Record = tuple[RecordLocation, bytes]


def chain(producer: str, n: int, *, topic: str = "ns.compute", partitions: int = 1) -> list[Record]:
    """`n` chained heartbeats of `producer`, spread round-robin over `partitions`."""
    records: list[Record] = []
    prev_hash = ""
    offsets = [0] * partitions
    for seq in range(1, n + 1):
        value = heartbeat(producer, seq, prev_hash)
        partition = seq % partitions
        records.append((RecordLocation(topic, partition, offsets[partition]), value))
        offsets[partition] += 1
        prev_hash = record_hash(value)
    return records


def heartbeat(producer: str, seq: int, prev_hash: str, running: int | None = None) -> bytes:
    envelope = new_event(
        HostHeartbeat(running=seq if running is None else running),
        aggregate_id="host-1",
        tenant_id=None,
        producer=producer,
        event_id=f"{producer}-{seq}" + ("" if running is None else "-forged"),
        occurred_at=T0 + timedelta(seconds=seq),
    )
    return encode(envelope.chained(seq, prev_hash))


def check(records: list[Record]) -> VerifyReport:
    checker = ChainChecker()
    for location, value in records:
        checker.add(location, value)
    return checker.report()


def appended(records: list[Record], value: bytes, topic: str = "ns.compute") -> Record:
    """Where a record appended after `records` to partition 0 of `topic` lands."""
    offset = sum(1 for loc, _ in records if loc.topic == topic and loc.partition == 0)
    return RecordLocation(topic, 0, offset), value


def test_a_clean_log_of_two_producers_verifies() -> None:
    report = check(chain("compute@h1", 5) + chain("scheduler", 3, topic="ns.scheduler"))
    assert report.ok
    assert [(p.producer, p.events, p.last_seq) for p in report.producers] == [
        ("compute@h1", 5, 5),
        ("scheduler", 3, 3),
    ]


def test_an_altered_record_is_the_one_whose_hash_its_successor_does_not_carry() -> None:
    records = chain("compute@h1", 5)
    location, original = records[2]
    records[2] = (location, original.replace(b'"running":3', b'"running":9'))
    report = check(records)
    [problem] = report.problems
    assert (problem.kind, problem.seq, problem.event_id) == ("altered", 3, "compute@h1-3")
    assert problem.location == location
    assert problem.related == records[3][0]


def test_a_removed_record_is_reported_as_the_missing_seq() -> None:
    records = chain("compute@h1", 6)
    del records[3]  # seq 4
    [problem] = check(records).problems
    assert (problem.kind, problem.seq, problem.location) == ("removed", 4, None)
    assert problem.related == records[3][0]  # seq 5, the next one seen
    assert "seq 4 missing" in problem.detail


def test_records_missing_at_the_start_are_removed_too() -> None:
    records = chain("compute@h1", 4)[2:]
    [problem] = check(records).problems
    assert (problem.kind, problem.seq) == ("removed", 1)
    assert "seq 1..2 missing" in problem.detail


def test_a_duplicated_record_is_reported_at_its_second_copy() -> None:
    records = chain("compute@h1", 5)
    copy = appended(records, records[1][1])
    report = check([*records, copy])
    [problem] = report.problems
    assert (problem.kind, problem.seq, problem.location) == ("duplicated", 2, copy[0])
    assert problem.related == records[1][0]


def test_a_forged_record_claiming_a_used_seq_is_caught_wherever_it_is_read() -> None:
    records = chain("compute@h1", 5, partitions=2)
    prev_hash = record_hash(records[1][1])  # the forger copies seq 3's link to seq 2
    forged = (RecordLocation("ns.compute", 2, 0), heartbeat("compute@h1", 3, prev_hash, 99))
    for ordering in ([*records, forged], [forged, *records]):
        [problem] = check(ordering).problems
        assert (problem.kind, problem.seq, problem.location) == ("forged", 3, forged[0])
        assert problem.event_id == "compute@h1-3-forged"
        assert problem.related == records[2][0]


def test_a_forged_fork_at_the_end_of_a_chain_is_still_reported() -> None:
    records = chain("compute@h1", 3)
    forged = appended(records, heartbeat("compute@h1", 3, record_hash(records[1][1]), 99))
    [problem] = check([*records, forged]).problems
    assert (problem.kind, problem.location) == ("forged", forged[0])


def test_a_forged_record_with_a_wrong_link_is_not_taken_for_the_genuine_one() -> None:
    records = chain("compute@h1", 4)
    forged = appended(records, heartbeat("compute@h1", 2, "0" * 64, 99))
    [problem] = check([forged, *records]).problems
    assert (problem.kind, problem.location) == ("forged", forged[0])


def test_the_first_record_must_not_carry_a_prev_hash() -> None:
    records = [(RecordLocation("ns.api", 0, 0), heartbeat("gateway", 1, "f" * 64))]
    [problem] = check(records).problems
    assert (problem.kind, problem.seq) == ("broken", 1)


def test_an_unchained_event_is_reported() -> None:
    [problem] = check([(RecordLocation("ns.api", 0, 0), heartbeat("gateway", 0, ""))]).problems
    assert problem.kind == "unchained"


def test_only_the_first_problem_of_a_producer_is_reported_and_others_stay_clean() -> None:
    broken = chain("compute@h1", 8)
    del broken[5]
    del broken[2]
    report = check(broken + chain("compute@h2", 4))
    [problem] = report.problems
    assert (problem.producer, problem.seq) == ("compute@h1", 3)


def test_records_that_do_not_decode_are_reported_with_their_location() -> None:
    records = chain("compute@h1", 2)
    garbage = (RecordLocation("ns.compute", 0, 2), b"not json")
    empty = (RecordLocation("ns.compute", 0, 3), None)
    checker = ChainChecker()
    for location, value in [*records, garbage, empty]:
        checker.add(location, value)
    report = checker.report()
    assert not report.ok
    assert not report.problems
    assert [u.location for u in report.undecodable] == [garbage[0], empty[0]]


def test_an_unknown_event_type_is_reported_but_its_chain_still_checks() -> None:
    records = chain("compute@h1", 3)
    location, value = records[1]
    renamed = value.replace(b'"HostHeartbeat"', b'"HostHeartbeatV9"')
    records[1] = (location, renamed)
    records[2] = (records[2][0], heartbeat("compute@h1", 3, record_hash(renamed)))
    report = check(records)
    assert not report.problems
    assert [u.location for u in report.undecodable] == [location]


def test_a_gap_is_called_once_too_many_later_records_wait_for_it() -> None:
    records = chain("compute@h1", 50)
    del records[1]
    checker = ChainChecker(max_buffered=10)
    for location, value in records[:20]:
        checker.add(location, value)
    report = checker.report()
    [problem] = report.problems
    assert (problem.kind, problem.seq) == ("removed", 2)


@given(st.data())
def test_any_interleaving_of_partitions_verifies(data: st.DataObject) -> None:
    records = chain("compute@h1", 30, partitions=3) + chain("scheduler", 10, partitions=2)
    queues = {
        key: list(group)
        for key, group in itertools.groupby(
            sorted(records, key=lambda r: (r[0].topic, r[0].partition, r[0].offset)),
            key=lambda r: (r[0].topic, r[0].partition),
        )
    }
    ordering: list[Record] = []
    while queues:
        key = data.draw(st.sampled_from(sorted(queues)))
        take = data.draw(st.integers(1, 5))
        ordering.extend(queues[key][:take])
        del queues[key][:take]
        if not queues[key]:
            del queues[key]
    report = check(ordering)
    assert report.ok, report.problems
