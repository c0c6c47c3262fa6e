"""What a protocol needs from a session, as a structural type (protocols sit below the
session layer, so they cannot import it)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from crypten_lite.config import SessionConfig
from crypten_lite.providers import Provider
from crypten_lite.ring.prg import AesCtrPrg
from crypten_lite.sharing import PairwiseStreams, combine
from crypten_lite.transport.base import Communicator

__all__ = ["ProtocolContext", "open_arith", "open_binary"]

U64 = npt.NDArray[np.uint64]


class ProtocolContext(Protocol):
    comm: Communicator
    config: SessionConfig
    provider: Provider
    zeros: PairwiseStreams
    private: AesCtrPrg

    @property
    def rank(self) -> int: ...

    @property
    def world_size(self) -> int: ...


def _open(ctx: ProtocolContext, kind: str, shares: list[U64]) -> list[U64]:
    flat = np.concatenate([np.asarray(s, dtype=np.uint64).reshape(-1) for s in shares])
    total = combine(kind, [np.asarray(g, dtype=np.uint64) for g in ctx.comm.all_gather(flat)])
    out: list[U64] = []
    start = 0
    for share in shares:
        out.append(total[start : start + share.size].reshape(share.shape))
        start += share.size
    return out


def open_arith(ctx: ProtocolContext, *shares: U64) -> list[U64]:
    """Reveal several arithmetic sharings to every party in ONE round (one message per peer).

    Cost: 1 round; ``(N-1) * sum(sizes)`` ring elements sent per party.
    """
    return _open(ctx, "arithmetic", list(shares))


def open_binary(ctx: ProtocolContext, *shares: U64) -> list[U64]:
    """Like :func:`open_arith` for XOR sharings."""
    return _open(ctx, "binary", list(shares))
