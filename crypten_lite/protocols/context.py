"""What a protocol needs from a session, as a structural type (protocols sit below the
session layer, so they cannot import it)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from crypten_lite.config import SessionConfig
from crypten_lite.providers import Provider
from crypten_lite.ring.prg import AesCtrPrg
from crypten_lite.sharing import ARITHMETIC, PairwiseStreams, accumulate
from crypten_lite.transport.base import Communicator

__all__ = ["ProtocolContext", "open_arith", "open_binary", "open_masked"]

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


def _open_flat(
    ctx: ProtocolContext, kind: str, flat: U64, shapes: list[tuple[int, ...]]
) -> list[U64]:
    """Open the shares packed in ``flat``, which this call owns: the peers' shares are added
    (XORed) into it in place, so the opening costs one pass and no extra buffer. Safe because
    every communicator copies a payload when it is sent."""
    for rank, share in enumerate(ctx.comm.all_gather(flat)):
        if rank != ctx.rank:
            accumulate(kind, flat, np.asarray(share, dtype=np.uint64))
    out: list[U64] = []
    start = 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        out.append(flat[start : start + size].reshape(shape))
        start += size
    return out


def _open(ctx: ProtocolContext, kind: str, shares: list[U64]) -> list[U64]:
    arrays = [np.asarray(s, dtype=np.uint64) for s in shares]
    flat = np.empty(sum(a.size for a in arrays), dtype=np.uint64)
    start = 0
    for a in arrays:
        flat[start : start + a.size] = a.reshape(-1)
        start += a.size
    return _open_flat(ctx, kind, flat, [a.shape for a in arrays])


def open_masked(ctx: ProtocolContext, *pairs: tuple[U64, U64]) -> list[U64]:
    """Open ``x - r`` for every arithmetic pair ``(x, r)`` in ONE round; the differences are
    computed straight into the message buffer (no intermediate arrays).

    Cost: 1 round; ``(N-1) * sum(sizes)`` ring elements sent per party.
    """
    shapes = [np.broadcast_shapes(x.shape, r.shape) for x, r in pairs]
    flat = np.empty(sum(int(np.prod(sh, dtype=np.int64)) for sh in shapes), dtype=np.uint64)
    start = 0
    for (x, r), shape in zip(pairs, shapes, strict=True):
        size = int(np.prod(shape, dtype=np.int64))
        np.subtract(x, r, out=flat[start : start + size].reshape(shape))
        start += size
    return _open_flat(ctx, ARITHMETIC, flat, shapes)


def open_arith(ctx: ProtocolContext, *shares: U64) -> list[U64]:
    """Reveal several arithmetic sharings to every party in ONE round (one message per peer).

    Cost: 1 round; ``(N-1) * sum(sizes)`` ring elements sent per party.
    """
    return _open(ctx, "arithmetic", list(shares))


def open_binary(ctx: ProtocolContext, *shares: U64) -> list[U64]:
    """Like :func:`open_arith` for XOR sharings."""
    return _open(ctx, "binary", list(shares))
