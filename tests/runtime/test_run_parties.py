"""run_parties: results in rank order, every failing rank reported, bounded time."""

from __future__ import annotations

import time

import pytest

import crypten_lite as cl
from crypten_lite.runtime.testing import PartyFailure, run_parties


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_results_come_back_in_rank_order(world_size):
    assert run_parties(lambda s: (s.rank, s.world_size), world_size) == [
        (r, world_size) for r in range(world_size)
    ]


def test_failure_carries_the_failing_ranks_traceback():
    def job(session):
        if session.rank == 1:
            raise ValueError("party one is unhappy")
        return session.comm.recv(1)  # would wait forever without the abort

    start = time.monotonic()
    with pytest.raises(PartyFailure) as info:
        run_parties(job, 3)
    assert time.monotonic() - start < 10
    assert "party one is unhappy" in str(info.value)
    assert 1 in info.value.failures


def test_current_session_is_set_inside_and_missing_outside():
    assert run_parties(lambda s: cl.current_session() is s, 2) == [True, True]
    with pytest.raises(cl.errors.SessionError, match="no active"):
        cl.current_session()


def test_timeout_bounds_a_hung_job():
    def job(session):
        if session.rank == 0:
            time.sleep(3)
        return session.rank

    with pytest.raises(PartyFailure, match="exceeded"):
        run_parties(job, 2, timeout_s=0.5)


def test_bad_world_size():
    with pytest.raises(ValueError, match="world_size"):
        run_parties(lambda s: None, 0)
