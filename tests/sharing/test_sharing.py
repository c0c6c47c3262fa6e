"""Sharing from a source party and revealing, arithmetic and binary."""

from __future__ import annotations

import time

import numpy as np
import pytest

from crypten_lite.errors import ShareError
from crypten_lite.runtime.testing import PartyFailure, run_parties
from crypten_lite.sharing import BINARY, reveal, share_from
from tests.helpers import RING_EDGES


@pytest.mark.parametrize("world_size", [2, 3, 4])
@pytest.mark.parametrize("kind", ["arithmetic", BINARY])
def test_share_and_reveal_roundtrip_with_edges(world_size, kind):
    def job(session):
        src = session.world_size - 1
        value = RING_EDGES if session.rank == src else None
        session.stats.reset()
        share = share_from(session.comm, session.zeros, value, src, RING_EDGES.shape, kind)
        assert session.stats.rounds == 0 and session.stats.bytes_sent == 0
        return reveal(session.comm, share, kind=kind), session.stats.snapshot()

    for revealed, stats in run_parties(job, world_size):
        np.testing.assert_array_equal(revealed, RING_EDGES)
        assert stats.rounds == 1
        assert stats.bytes_sent == (world_size - 1) * RING_EDGES.nbytes


def test_shape_none_costs_one_round_and_reveal_to_one_party():
    def job(session):
        value = np.arange(6, dtype=np.uint64).reshape(2, 3) if session.rank == 1 else None
        share = share_from(session.comm, session.zeros, value, 1, None)
        rounds = session.stats.rounds
        return share.shape, rounds, reveal(session.comm, share, dst=2)

    results = run_parties(job, 3)
    assert [r[0] for r in results] == [(2, 3)] * 3
    assert [r[1] for r in results] == [1, 1, 1]
    assert results[0][2] is None and results[1][2] is None
    np.testing.assert_array_equal(results[2][2], np.arange(6).reshape(2, 3))


@pytest.mark.parametrize("bad", [5, -1, 1.0, True])
def test_invalid_src_and_dst_are_rejected(bad):
    def job(session):
        share_from(session.comm, session.zeros, np.zeros(2, np.uint64), bad, (2,))

    with pytest.raises(PartyFailure, match="src"):
        run_parties(job, 2)

    def job_dst(session):
        reveal(session.comm, np.zeros(2, np.uint64), dst=bad)

    with pytest.raises(PartyFailure, match="dst"):
        run_parties(job_dst, 2)


def test_source_without_a_value_is_an_error():
    def job(session):
        share_from(session.comm, session.zeros, None, 0, (2,))

    with pytest.raises(PartyFailure, match="passed no value") as info:
        run_parties(job, 2, timeout_s=10)
    assert "ShareError" in str(info.value)
    assert issubclass(ShareError, ValueError)


def test_each_partys_shares_are_uniform_whatever_the_secret():
    """A single share of a constant secret must look uniform: chi-square over the top byte."""

    def job(session):
        value = np.full(64000, 12345, dtype=np.uint64) if session.rank == 0 else None
        return share_from(session.comm, session.zeros, value, 0, (64000,))

    for share in run_parties(job, 3):
        counts = np.bincount((share >> np.uint64(56)).astype(np.int64), minlength=256)
        expected = share.size / 256
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < 400  # 255 dof: mean 255, sd ~22.6; 400 is > 6 sd


@pytest.mark.parametrize(
    ("world_size", "dsts"),
    [(2, [0, 1]), (2, [1, 0]), (2, [None, 0]), (2, [1, None]), (3, [2, 2, 0])],
    ids=["both-receive", "both-send", "all-vs-one", "one-vs-all", "three-parties"],
)
def test_parties_passing_different_dst_fail_at_once_naming_both(world_size, dsts):
    def job(session):
        start = time.monotonic()
        try:
            reveal(session.comm, np.zeros(3, np.uint64), dst=dsts[session.rank])
        except ShareError as err:
            return str(err), time.monotonic() - start
        return None, time.monotonic() - start

    results = run_parties(job, world_size, timeout_s=30)
    for rank, (message, seconds) in enumerate(results):
        assert seconds < 1.0
        assert message is not None, f"party {rank} did not notice"
        assert f"party {rank} uses dst={dsts[rank]}" in message
        others = [p for p in range(world_size) if dsts[p] != dsts[rank]]
        for other in others:
            assert f"party {other} uses dst={dsts[other]}" in message


def test_reveal_to_one_party_costs_the_same_bytes_and_rounds():
    def job(session):
        session.stats.reset()
        out = reveal(session.comm, np.full(4, session.rank, np.uint64), dst=1)
        return out, session.stats.snapshot()

    results = run_parties(job, 3)
    np.testing.assert_array_equal(results[1][0], np.full(4, 3, np.uint64))
    assert results[0][0] is None and results[2][0] is None
    assert [r[1].rounds for r in results] == [1, 1, 1]
    assert [r[1].bytes_sent for r in results] == [32, 0, 32]
    assert [r[1].bytes_received for r in results] == [0, 64, 0]
