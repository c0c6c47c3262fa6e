"""Openings: all-gather (1 round) and, for 3+ parties and large openings, reduce-scatter +
all-gather (2 rounds, a third fewer bytes with 3 parties): the same values, exact costs."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.config import SessionConfig
from crypten_lite.errors import CommunicationError
from crypten_lite.protocols import context
from crypten_lite.runtime.testing import PartyFailure, run_parties
from crypten_lite.sharing import share_from

THRESHOLD = 64


def _open_cost(world_size, values, *, kind="arithmetic", threshold=THRESHOLD, masked=False):
    def job(session):
        v = values if session.rank == 0 else None
        x = share_from(session.comm, session.zeros, v, 0, values.shape, kind=kind)
        session.stats.reset()
        if masked:
            zero = np.zeros(values.shape, dtype=np.uint64)
            (got,) = context.open_masked(session, (x, zero))
        elif kind == "arithmetic":
            (got,) = context.open_arith(session, x)
        else:
            (got,) = context.open_binary(session, x)
        return got, session.stats.snapshot()

    config = SessionConfig(scatter_open_elements=threshold)
    return run_parties(job, world_size, config=config)


def _expected_sent(world_size, size, rank, scattered):
    if not scattered:
        return (world_size - 1) * size * 8
    mine = size * (rank + 1) // world_size - size * rank // world_size
    return ((size - mine) + (world_size - 1) * mine) * 8


@pytest.mark.parametrize("world_size", [2, 3, 4])
@pytest.mark.parametrize("size", [1, THRESHOLD - 1, THRESHOLD, 3 * THRESHOLD + 1])
@pytest.mark.parametrize("kind", ["arithmetic", "binary"])
def test_openings_reveal_the_value_with_exact_rounds_and_bytes(world_size, size, kind):
    rng = np.random.default_rng(size + world_size)
    values = rng.integers(0, 2**64, size, dtype=np.uint64)
    scattered = world_size >= 3 and size >= THRESHOLD
    for rank, (got, cost) in enumerate(_open_cost(world_size, values, kind=kind)):
        np.testing.assert_array_equal(got, values)
        assert cost.rounds == (2 if scattered else 1)
        assert cost.bytes_sent == _expected_sent(world_size, size, rank, scattered)


def test_a_scattered_opening_sends_a_third_less_with_three_parties():
    values = np.arange(3 * THRESHOLD, dtype=np.uint64)
    scattered = _open_cost(3, values)
    gathered = _open_cost(3, values, threshold=None)
    for (got_s, cost_s), (got_g, cost_g) in zip(scattered, gathered, strict=True):
        np.testing.assert_array_equal(got_s, got_g)
        assert (cost_s.rounds, cost_g.rounds) == (2, 1)
        assert cost_s.bytes_sent * 3 == cost_g.bytes_sent * 2


def test_masked_openings_scatter_too():
    values = np.arange(2 * THRESHOLD, dtype=np.uint64) * np.uint64(2**40 + 7)
    for got, cost in _open_cost(3, values, masked=True):
        np.testing.assert_array_equal(got, values)
        assert cost.rounds == 2


@pytest.mark.parametrize("world_size", [3, 4])
def test_protocols_on_scattered_openings_match_plaintext(world_size):
    # Every opening of these ops is scattered (threshold 1): products, truncation, matmul,
    # comparisons and max give the same answers as with gathered openings.
    rng = np.random.default_rng(5)
    a, b = rng.uniform(-4, 4, 300), rng.uniform(-4, 4, 300)
    m, n = rng.uniform(-1, 1, (12, 20)), rng.uniform(-1, 1, (20, 9))

    def job(session):
        x, y = cl.cryptensor(a, src=0), cl.cryptensor(b, src=1)
        p, q = cl.cryptensor(m, src=0), cl.cryptensor(n, src=world_size - 1)
        session.stats.reset()
        out = {
            "mul": (x * y).get_plain_text(),
            "matmul": p.matmul(q).get_plain_text(),
            "lt": (x < y).get_plain_text(),
            "relu": x.relu().get_plain_text(),
            "max": x.reshape(30, 10).max(dim=1)[0].get_plain_text(),
        }
        return out

    for config in (SessionConfig(scatter_open_elements=1), SessionConfig()):
        got = run_parties(job, world_size, config=config)[0]
        np.testing.assert_allclose(got["mul"], a * b, atol=2e-3)
        np.testing.assert_allclose(got["matmul"], m @ n, atol=2e-3)
        np.testing.assert_array_equal(got["lt"], (a < b).astype(float))
        np.testing.assert_allclose(got["relu"], np.maximum(a, 0), atol=1e-4)
        np.testing.assert_allclose(got["max"], a.reshape(30, 10).max(axis=1), atol=1e-4)


def test_a_part_of_the_wrong_length_or_dtype_is_refused():
    with pytest.raises(CommunicationError, match="expected 5 uint64 elements"):
        context._part_of(np.zeros(4, np.uint64), 5)
    with pytest.raises(CommunicationError, match="int64"):
        context._part_of(np.zeros(5, np.int64), 5)
    assert context._part_of(np.zeros(5, np.uint64), 5).shape == (5,)


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "8"])
def test_bad_thresholds_are_refused(bad):
    with pytest.raises(ValueError, match="scatter_open_elements"):
        SessionConfig(scatter_open_elements=bad)


def test_a_peer_sending_a_short_part_is_refused_not_broadcast():
    # Party 2 sends one element instead of its part in round 1: numpy would broadcast it
    # into the receiver's part silently; the opening must refuse it and name the problem.
    values = np.arange(3 * THRESHOLD, dtype=np.uint64)

    def job(session):
        v = values if session.rank == 0 else None
        x = share_from(session.comm, session.zeros, v, 0, values.shape)
        if session.rank == 2:
            honest = session.comm.exchange

            def short(sends, recv_from):
                session.comm.exchange = honest  # only the first round lies
                return honest({p: np.asarray(a)[:1] for p, a in sends.items()}, recv_from)

            session.comm.exchange = short
        return context.open_arith(session, x)

    config = SessionConfig(scatter_open_elements=THRESHOLD, timeout_s=10)
    with pytest.raises(PartyFailure) as failure:
        run_parties(job, 3, config=config)
    reason = "CommunicationError: scattered opening: expected 64 uint64 elements, got uint64"
    refused = {r for r, text in failure.value.failures.items() if reason in text}
    assert refused and refused <= {0, 1}  # the honest receivers name it; the rest abort
