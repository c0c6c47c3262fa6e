"""a2b / b2a: correctness on edges and random values, round trips, exact costs."""

from __future__ import annotations

import numpy as np
import pytest

from crypten_lite.errors import RingDTypeError
from crypten_lite.protocols import conversion
from crypten_lite.runtime.testing import PartyFailure, run_parties
from crypten_lite.sharing import ARITHMETIC, BINARY, reveal, share_from
from tests.helpers import RING_EDGES, random_u64

PROVIDERS = ["TrustedDealer", "InsecureLocalDealer"]
WORLD_SIZES = [2, 3]


def _values(n: int, seed: int) -> np.ndarray:
    """Edges, every 2^k and 2^k - 1 and their negatives, small values, then random ones."""
    powers = np.array([1 << k for k in range(64)], dtype=np.uint64)
    special = np.concatenate(
        [RING_EDGES, powers, powers - np.uint64(1), -powers, -powers - np.uint64(1)]
    )
    small = np.arange(-300, 300).astype(np.int64).view(np.uint64)
    rest = random_u64(np.random.default_rng(seed), n - special.size - small.size)
    return np.concatenate([special, small, rest])


def _share(session, value, kind):
    mine = value if session.rank == 0 else None
    return share_from(session.comm, session.zeros, mine, 0, value.shape, kind)


def _bits(x: np.ndarray) -> np.ndarray:
    return (x[..., None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_conversions_are_correct_and_round_trip(world_size, provider):
    x = _values(3000, world_size).reshape(30, 100)

    def job(session):
        ax, bx = _share(session, x, ARITHMETIC), _share(session, x, BINARY)
        to_b = conversion.a2b(session, ax)
        to_a = conversion.b2a(session, bx)
        out = {
            "a2b": reveal(session.comm, to_b, kind=BINARY),
            "b2a": reveal(session.comm, to_a),
            "b2a_bits": reveal(session.comm, conversion.b2a_bits(session, bx)),
            "b2a_bit": reveal(session.comm, conversion.b2a_bit(session, bx)),
            "a->b->a": reveal(session.comm, conversion.b2a(session, to_b)),
            "b->a->b": reveal(session.comm, conversion.a2b(session, to_a), kind=BINARY),
        }
        return out

    want = {
        "a2b": x,
        "b2a": x,
        "b2a_bits": _bits(x),
        "b2a_bit": x & np.uint64(1),
        "a->b->a": x,
        "b->a->b": x,
    }
    for result in run_parties(job, world_size, provider=provider):
        for name, value in want.items():
            np.testing.assert_array_equal(result[name], value, err_msg=name)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_conversion_costs(world_size, provider):
    n = 1001
    x = _values(n, 7)

    def job(session):
        ax, bx = _share(session, x, ARITHMETIC), _share(session, x, BINARY)
        costs = {}
        for name, fn, arg in [
            ("a2b", conversion.a2b, ax),
            ("b2a", conversion.b2a, bx),
            ("b2a_bits", conversion.b2a_bits, bx),
            ("b2a_bit", conversion.b2a_bit, bx),
        ]:
            session.stats.reset()
            fn(session, arg)
            costs[name] = session.stats.snapshot()
        return costs

    peers = world_size - 1
    want_bytes = {
        "a2b": peers * 15 * 8 * n,
        "b2a": peers * 8 * n,
        "b2a_bits": peers * 8 * n,
        "b2a_bit": peers * -(-n // 8),
    }
    want_rounds = {"a2b": 5, "b2a": 1, "b2a_bits": 1, "b2a_bit": 1}
    results = run_parties(job, world_size, provider=provider)
    for costs in results:
        assert {k: v.rounds for k, v in costs.items()} == want_rounds
    for rank in range(world_size - 1):  # party N-1 also talks to the dealer
        assert {k: v.bytes_sent for k, v in results[rank].items()} == want_bytes
    if provider == "InsecureLocalDealer":
        assert {k: v.bytes_sent for k, v in results[-1].items()} == want_bytes


def test_empty_and_scalar_inputs():
    def job(session):
        empty = np.zeros((0, 3), dtype=np.uint64)
        shapes = [
            conversion.a2b(session, empty).shape,
            conversion.b2a(session, empty).shape,
            conversion.b2a_bits(session, empty).shape,
            conversion.b2a_bit(session, empty).shape,
        ]
        rounds = session.stats.rounds
        scalar = _share(session, np.array(2**64 - 5, dtype=np.uint64), ARITHMETIC)
        back = reveal(session.comm, conversion.a2b(session, scalar), kind=BINARY)
        return shapes, rounds, back.shape, int(back)

    shapes, rounds, shape, value = run_parties(job, 2)[0]
    assert shapes == [(0, 3), (0, 3), (0, 3, 64), (0, 3)]
    assert rounds == 0 and shape == () and value == 2**64 - 5


def test_wrong_dtype_is_rejected():
    with pytest.raises(PartyFailure, match="RingDTypeError"):
        run_parties(lambda s: conversion.a2b(s, np.zeros(3, dtype=np.int64)), 2)
    assert issubclass(RingDTypeError, TypeError)
