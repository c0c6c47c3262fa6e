"""In-process communicator: matching, collectives, stats, timeouts and aborts."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from crypten_lite.errors import CommunicationError, PeerLostError, PeerTimeoutError
from crypten_lite.transport import InProcessHub


def _run(world: int, fn, timeout_s: float = 5.0):
    hub = InProcessHub(world)
    results: dict[int, object] = {}
    errors: dict[int, BaseException] = {}

    def worker(rank: int) -> None:
        try:
            results[rank] = fn(hub.communicator(rank, timeout_s))
        except BaseException as err:
            errors[rank] = err
            hub.abort(f"rank {rank} failed")

    threads = [threading.Thread(target=worker, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results, errors


def test_all_gather_is_one_round_and_counts_bytes():
    def fn(comm):
        got = comm.all_gather(np.full(5, comm.rank, dtype=np.uint64))
        return [int(g[0]) for g in got], comm.stats.snapshot()

    results, errors = _run(3, fn)
    assert not errors
    for rank in range(3):
        values, stats = results[rank]
        assert values == [0, 1, 2]
        assert stats.rounds == 1
        assert stats.bytes_sent == 2 * 5 * 8
        assert stats.bytes_received == 2 * 5 * 8
        assert stats.messages == 2


def test_messages_match_by_sequence_regardless_of_arrival_order():
    def fn(comm):
        if comm.rank == 0:
            for k in range(4):
                comm.send(1, np.array([k], dtype=np.int64))
            return None
        return [int(comm.recv(0)[0]) for _ in range(4)]

    results, errors = _run(2, fn)
    assert not errors and results[1] == [0, 1, 2, 3]


def test_received_arrays_are_copies():
    payload = np.arange(3, dtype=np.uint64)

    def fn(comm):
        if comm.rank == 0:
            comm.send(1, payload)
            payload[0] = 99
            return None
        return comm.recv(0)

    results, _ = _run(2, fn)
    assert int(results[1][0]) == 0


def test_missing_message_times_out_naming_the_peer():
    def fn(comm):
        if comm.rank == 1:
            return comm.recv(0)
        return None

    _, errors = _run(2, fn, timeout_s=0.2)
    assert isinstance(errors[1], PeerTimeoutError)
    assert "rank 0" in str(errors[1])


def test_abort_wakes_waiting_receivers_at_once():
    def fn(comm):
        if comm.rank == 0:
            raise RuntimeError("boom")
        return comm.recv(0)

    _, errors = _run(2, fn, timeout_s=30.0)
    assert isinstance(errors[1], PeerLostError)


def test_refuses_bad_peers_and_dtypes():
    hub = InProcessHub(2)
    comm = hub.communicator(0)
    with pytest.raises(CommunicationError, match="not a peer"):
        comm.send(0, np.zeros(1, np.uint64))
    with pytest.raises(CommunicationError, match="not a peer"):
        comm.send(7, np.zeros(1, np.uint64))
    with pytest.raises(CommunicationError, match="dtype"):
        comm.send(1, np.array(["x"]))
    with pytest.raises(CommunicationError, match="dtype"):
        comm.send(1, np.zeros(2, dtype=object))


def test_stats_reset_and_snapshot_difference():
    hub = InProcessHub(2)
    comm = hub.communicator(0)
    comm.send(1, np.zeros(4, np.uint64))
    before = comm.stats.snapshot()
    comm.send(1, np.zeros(2, np.uint64))
    delta = comm.stats.snapshot() - before
    assert delta.bytes_sent == 16 and delta.messages == 1
    comm.stats.reset()
    assert comm.stats.snapshot().bytes_sent == 0
