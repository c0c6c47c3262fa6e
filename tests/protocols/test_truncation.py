"""Truncation: local (2 parties) and dealer (any N) against exact integer division."""

from __future__ import annotations

import numpy as np
import pytest

from crypten_lite.config import SessionConfig
from crypten_lite.errors import ProtocolError
from crypten_lite.protocols import truncation
from crypten_lite.runtime.testing import PartyFailure, run_parties
from crypten_lite.sharing import reveal, share_from

EDGE = 2**62 - 1
VALUES = np.array(
    [
        0,
        1,
        -1,
        2**16,
        -(2**16),
        2**16 + 1,
        -(2**16) - 1,
        12345678901,
        -12345678901,
        EDGE,
        -EDGE,
        2**61,
        -(2**61),
    ],
    dtype=np.int64,
)


def _run(world_size, method, bits, values):
    def job(session):
        v = values.view(np.uint64) if session.rank == 0 else None
        x = share_from(session.comm, session.zeros, v, 0, values.shape)
        session.stats.reset()
        if method == "dealer":
            y = truncation.truncate_dealer(session, x, bits)
        else:
            y = truncation.truncate(session, x, bits)
        cost = session.stats.snapshot()
        return reveal(session.comm, y).view(np.int64), cost

    return run_parties(job, world_size, config=SessionConfig(truncation=method))[0]


@pytest.mark.parametrize("world_size", [2, 3, 4])
@pytest.mark.parametrize("bits", [1, 16, 32, 45])
def test_dealer_truncation_is_floor_or_floor_plus_one_over_the_whole_domain(world_size, bits):
    grid = np.concatenate([VALUES, np.linspace(-EDGE, EDGE, 2001).astype(np.int64)])
    got, cost = _run(world_size, "dealer", bits, grid)
    floor = grid >> bits
    assert np.all((got == floor) | (got == floor + 1))
    assert cost.rounds == 1


def test_local_truncation_is_within_one_unit_for_moderate_values():
    grid = np.linspace(-(2**40), 2**40, 20001).astype(np.int64)
    got, cost = _run(2, "local", 16, grid)
    assert np.max(np.abs(got - (grid >> 16))) <= 1
    assert cost.rounds == 0 and cost.bytes_sent == 0


def test_local_truncation_needs_two_parties():
    def job(session):
        return truncation.truncation_method(session)

    with pytest.raises(PartyFailure, match="exactly 2 parties"):
        run_parties(job, 3, config=SessionConfig(truncation="local"))
    assert run_parties(job, 3) == ["dealer"] * 3
    assert run_parties(job, 2) == ["local"] * 2


def test_dealer_truncation_rejects_bad_bit_counts():
    def job(session):
        with pytest.raises(ProtocolError, match="bits"):
            truncation.truncate_dealer(session, np.zeros(2, np.uint64), 62)
        return True

    assert run_parties(job, 2) == [True, True]
