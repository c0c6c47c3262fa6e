"""RoundRegistry: every refusal reason, and a refusal leaves the round undisturbed."""

from __future__ import annotations

import numpy as np
import pytest

from crypten_lite.edge.messages import EdgeRefusal, EdgeRequestError, UpdateShare
from crypten_lite.edge.shares import expand_seed
from crypten_lite.fl import RoundRegistry

from .uploads import make_shares

M = 16


def registry(server_index: int, ring_bits: int = 32) -> RoundRegistry:
    reg = RoundRegistry(
        num_elements=M, ring_bits=ring_bits, server_index=server_index, num_servers=2,
        expand_seed=expand_seed,
    )
    reg.open(1)
    return reg


def refusal(reg: RoundRegistry, client: str, share) -> EdgeRequestError:
    with pytest.raises(EdgeRequestError) as info:
        reg.submit(client, share)
    return info.value


def test_accepts_and_sums_exactly():
    regs = [registry(0), registry(1)]
    xs = [np.linspace(-1, 1, M), np.full(M, 0.5)]
    for i, x in enumerate(xs):
        for reg, share in zip(regs, make_shares(x, 2, 1), strict=True):
            reg.submit(f"client-{i}", share)
    closed = [reg.close() for reg in regs]
    assert closed[0].delivered == closed[1].delivered == ("client-0", "client-1")
    total = (closed[0].sum_over(closed[0].delivered) + closed[1].sum_over(closed[1].delivered))
    q = np.round(np.array(xs) * 32767).astype(np.int64).sum(axis=0)
    assert np.array_equal(total.astype(np.uint32).view(np.int32), q)
    # leaving a client out subtracts exactly its share
    only1 = closed[0].sum_over(["client-1"]) + closed[1].sum_over(["client-1"])
    assert np.array_equal(only1.astype(np.uint32).view(np.int32), np.full(M, 16384))


def test_duplicate_and_replay_are_refused():
    reg = registry(1)
    first, second = make_shares(np.zeros(M), 2, 1), make_shares(np.ones(M), 2, 1)
    reg.submit("client-0", first[1])
    assert refusal(reg, "client-0", second[1]).refusal is EdgeRefusal.DUPLICATE  # 2nd upload
    err = refusal(reg, "client-1", first[1])  # someone replays client-0's message
    assert err.refusal is EdgeRefusal.DUPLICATE and "nonce" in str(err)
    reg.close()
    reg.open(2)
    replay = UpdateShare(round=2, nonce=first[1].nonce, num_elements=M, ring_bits=32,
                         vector=first[1].vector)
    assert refusal(reg, "client-0", replay).refusal is EdgeRefusal.DUPLICATE


def test_stale_round_and_closed_round():
    reg = registry(0)
    assert refusal(reg, "client-0", make_shares(np.zeros(M), 2, 2)[0]).refusal is (
        EdgeRefusal.STALE
    )
    reg.close()
    err = refusal(reg, "client-0", make_shares(np.zeros(M), 2, 1)[0])
    assert err.refusal is EdgeRefusal.STALE and "closed" in str(err)


@pytest.mark.parametrize(
    ("server", "change", "words"),
    [
        (1, dict(num_elements=M + 1), "num_elements"),
        (1, dict(ring_bits=64), "ring_bits"),
        (1, dict(nonce=b"short"), "nonce"),
        (1, dict(vector=np.zeros(M, np.uint64)), "dtype"),
        (1, dict(vector=np.zeros(M - 1, np.uint32)), "shape"),
        (1, dict(vector=np.zeros((2, M // 2), np.uint32)), "shape"),
        (1, dict(vector=None, seed=b"\0" * 32), "masked vector"),
        (0, dict(seed=None, vector=np.zeros(M, np.uint32)), "takes a seed"),
        (0, dict(seed=b"\0" * 31), "seed must be 32 bytes"),
        (0, dict(vector=np.zeros(M, np.uint32)), "exactly one"),
    ],
)
def test_malformed_is_invalid_with_a_clear_message_and_disturbs_nothing(server, change, words):
    reg = registry(server)
    good = make_shares(np.full(M, 0.25), 2, 1)[server]
    reg.submit("client-0", good)
    fields = dict(round=1, nonce=b"n" * 16, num_elements=M, ring_bits=32,
                  seed=good.seed, vector=good.vector)
    fields.update(change)
    err = refusal(reg, "client-1", UpdateShare(**fields))
    assert err.refusal is EdgeRefusal.INVALID
    assert words in str(err)
    # the refused client may still deliver a correct update; the good one is intact
    reg.submit("client-1", make_shares(np.zeros(M), 2, 1)[server])
    closed = reg.close()
    assert closed.delivered == ("client-0", "client-1")
    assert np.array_equal(closed.share_of("client-0").astype(np.uint32),
                          good.vector if good.vector is not None else expand_seed(good.seed, M, 32))


def test_unknown_client_and_repr_hides_material():
    reg = RoundRegistry(num_elements=M, ring_bits=32, server_index=0, num_servers=2,
                        expand_seed=expand_seed, allowed_clients=["client-0"])
    reg.open(1)
    share = make_shares(np.zeros(M), 2, 1)[0]
    assert refusal(reg, "client-9", share).refusal is EdgeRefusal.UNAUTHENTICATED
    assert refusal(reg, "", share).refusal is EdgeRefusal.UNAUTHENTICATED
    assert share.seed.hex() not in repr(share)


def test_constructor_validates_arguments():
    with pytest.raises(ValueError, match="num_elements"):
        RoundRegistry(num_elements=0, ring_bits=32, server_index=0, num_servers=2,
                      expand_seed=expand_seed)
    with pytest.raises(ValueError, match="ring_bits"):
        RoundRegistry(num_elements=4, ring_bits=16, server_index=0, num_servers=2,
                      expand_seed=expand_seed)
    with pytest.raises(ValueError, match="server_index"):
        RoundRegistry(num_elements=4, ring_bits=32, server_index=2, num_servers=2,
                      expand_seed=expand_seed)
