"""The host lease's judgement of a holder: provably gone only on this machine and pid namespace."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from virga_runtime.lease import _LIVE, Lease, _start_ticks


def test_a_lease_round_trips() -> None:
    lease = Lease.mine("token", 15.0)
    assert Lease.from_bytes(lease.to_bytes()) == lease


def test_a_runner_of_this_process_is_gone_once_closed() -> None:
    lease = Lease.mine("runner-1", 15.0)
    _LIVE.add("runner-1")
    assert not lease.holder_gone()
    _LIVE.discard("runner-1")
    assert lease.holder_gone()


def test_a_dead_process_of_this_machine_is_gone_and_a_live_one_is_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lease = Lease.mine("other", 15.0)
        alive = dataclasses.replace(lease, pid=child.pid, started=_start_ticks(child.pid))
        assert not alive.holder_gone()
        reused = dataclasses.replace(alive, started=(alive.started or 0) - 1)
        assert reused.holder_gone()  # that pid now belongs to another process
    finally:
        child.kill()
        child.wait()
    assert alive.holder_gone()


def test_a_holder_on_another_machine_or_pid_namespace_is_never_presumed_gone() -> None:
    lease = dataclasses.replace(Lease.mine("other", 15.0), pid=2**22 + 7, started=1)
    assert lease.holder_gone()
    assert not dataclasses.replace(lease, machine="elsewhere").holder_gone()
    assert not dataclasses.replace(lease, pid_namespace="pid:[1]").holder_gone()
    assert not dataclasses.replace(lease, pid_namespace="").holder_gone()
