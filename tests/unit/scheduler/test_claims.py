"""The claims ledger: sequential decisions against it never double-book a host."""

from __future__ import annotations

from virga_scheduler.core.placement import (
    Claim,
    Claims,
    Host,
    NoValidHost,
    Placement,
    PlacementRequest,
    PlacementView,
    Usage,
    select_host,
)

REQUEST = PlacementRequest("i1", "t1", vcpus=2, ram_mb=4096, disk_gb=40)


def test_claiming_adds_to_the_hosts_usage_and_releasing_gives_it_back() -> None:
    ledger = Claims().claim(REQUEST, "h1")
    ledger = ledger.claim(PlacementRequest("i2", "t1", 1, 1024, 10), "h1")
    assert ledger.usage_of("h1") == Usage(vcpus=3, ram_mb=5120, disk_gb=50)
    assert ledger.release("i1").usage_of("h1") == Usage(vcpus=1, ram_mb=1024, disk_gb=10)
    assert ledger.release("i1").release("i2").usage_of("h1") == Usage()


def test_the_ledger_is_immutable() -> None:
    empty = Claims()
    one = empty.claim(REQUEST, "h1")
    one.release("i1")
    assert (len(empty), len(one)) == (0, 1)
    assert empty.usage_of("h1") == Usage()
    assert one.get("i1") == Claim("i1", "h1", 2, 4096, 40)


def test_a_redelivered_claim_does_not_count_twice() -> None:
    ledger = Claims().claim(REQUEST, "h1").claim(REQUEST, "h1")
    assert ledger.usage_of("h1") == Usage(2, 4096, 40)


def test_claiming_elsewhere_moves_the_claim_and_frees_the_source() -> None:
    ledger = Claims().claim(REQUEST, "h1").claim(REQUEST, "h2")
    assert (ledger.usage_of("h1"), ledger.usage_of("h2")) == (Usage(), Usage(2, 4096, 40))


def test_releasing_an_instance_without_a_claim_is_harmless() -> None:
    ledger = Claims().claim(REQUEST, "h1")
    assert ledger.release("unknown") is ledger


def test_all_lists_claims_in_instance_order() -> None:
    ledger = Claims()
    for n in (3, 1, 2):
        ledger = ledger.add(Claim(f"i{n}", "h1", 1, 1, 1))
    assert [c.instance_id for c in ledger.all()] == ["i1", "i2", "i3"]


def test_fifty_requests_for_a_host_with_room_for_ten_place_exactly_ten() -> None:
    # 4 physical vCPUs at ratio 4 sell 16; 10 instances of 1 vCPU / 2 GiB fill the 20 GiB RAM.
    view = PlacementView([Host("h1", "r1", "az1", vcpus=4, ram_mb=20480, disk_gb=1000)])
    requests = [PlacementRequest(f"i{n:02d}", "t1", 1, 2048, 10) for n in range(50)]
    placed, refused = [], []
    for request in requests:
        result = select_host(request, view)
        if isinstance(result, Placement):
            view = view.claim(request, result.host)
            placed.append(request.instance_id)
        else:
            refused.append(result)
    assert placed == [f"i{n:02d}" for n in range(10)]
    assert len(refused) == 40
    assert refused[0].reason == "no host fits: 1 host without 2048 MB RAM free"
    assert view.usage_of("h1") == Usage(vcpus=10, ram_mb=20480, disk_gb=100)

    # Deleting one instance frees room for exactly one more.
    view = view.release("i03")
    assert isinstance(select_host(requests[10], view), Placement)
    view = view.claim(requests[10], "h1")
    assert isinstance(select_host(requests[11], view), NoValidHost)
