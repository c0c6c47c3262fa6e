"""What a protocol needs from a session, as a structural type (protocols sit below the
session layer, so they cannot import it)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from crypten_lite.config import SessionConfig
from crypten_lite.errors import CommunicationError
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


def _scatters(ctx: ProtocolContext, size: int) -> bool:
    """Whether an opening of ``size`` elements runs as reduce-scatter + all-gather."""
    threshold = ctx.config.scatter_open_elements
    return ctx.world_size >= 3 and threshold is not None and size >= threshold


def _open_gathered(ctx: ProtocolContext, kind: str, flat: U64) -> None:
    """Every party sends its whole share to every other party. 1 round, ``(N-1) |flat|``
    elements sent per party."""
    for rank, share in enumerate(ctx.comm.all_gather(flat)):
        if rank != ctx.rank:
            accumulate(kind, flat, np.asarray(share, dtype=np.uint64))


def _open_scattered(ctx: ProtocolContext, kind: str, flat: U64) -> None:
    """Bandwidth-optimal opening for N >= 3 parties (reduce-scatter, then all-gather; Patarasuk
    and Yuan, "Bandwidth optimal all-reduce algorithms", 2009): ``flat`` is cut into N
    parts; party j receives every share of part j and adds them up (round 1), then sends the
    opened part j to every peer (round 2). A party sees less than in an all-gather, which
    hands it every share of everything: here only the shares of its own part, and opened
    values.

    Cost: 2 rounds; ``2 (N-1)/N |flat|`` elements sent (and received) per party instead of
    ``(N-1) |flat|``.
    """
    bounds = [flat.size * r // ctx.world_size for r in range(ctx.world_size + 1)]
    parts = [flat[bounds[r] : bounds[r + 1]] for r in range(ctx.world_size)]
    peers = [p for p in ctx.comm.parties if p != ctx.rank]
    mine = parts[ctx.rank]
    for share in ctx.comm.exchange({p: parts[p] for p in peers}, peers).values():
        accumulate(kind, mine, _part_of(share, mine.size))
    for p, opened in ctx.comm.exchange({p: mine for p in peers}, peers).items():
        parts[p][...] = _part_of(opened, parts[p].size)


def _part_of(received: np.ndarray, size: int) -> U64:
    """A received part as uint64 of the expected length; a peer sending another length is an
    error that names it (never a silent broadcast or truncation)."""
    part = np.asarray(received)
    if part.dtype != np.uint64 or part.shape != (size,):
        raise CommunicationError(
            f"scattered opening: expected {size} uint64 elements, got {part.dtype} "
            f"of shape {part.shape}"
        )
    return part


def _open_flat(
    ctx: ProtocolContext, kind: str, flat: U64, shapes: list[tuple[int, ...]]
) -> list[U64]:
    """Open the shares packed in ``flat``, which this call owns: the peers' shares are added
    (XORed) into it in place, so the opening costs one pass and no extra buffer. Safe because
    every communicator copies a payload when it is sent. Large openings with N >= 3 parties
    are scattered (:func:`_open_scattered`, ``SessionConfig.scatter_open_elements``)."""
    if _scatters(ctx, flat.size):
        _open_scattered(ctx, kind, flat)
    else:
        _open_gathered(ctx, kind, flat)
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
    """Open ``x - r`` for every arithmetic pair ``(x, r)`` in ONE opening; the differences are
    computed straight into the message buffer (no intermediate arrays).

    Cost: 1 round; ``(N-1) * sum(sizes)`` ring elements sent per party (N >= 3 and a large
    opening: 2 rounds, ``2 (N-1)/N * sum(sizes)``, see :func:`_open_scattered`).
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
    """Reveal several arithmetic sharings to every party in ONE opening (one message per peer
    per round).

    Cost: 1 round; ``(N-1) * sum(sizes)`` ring elements sent per party (N >= 3 and a large
    opening: 2 rounds, ``2 (N-1)/N * sum(sizes)``, see :func:`_open_scattered`).
    """
    return _open(ctx, "arithmetic", list(shares))


def open_binary(ctx: ProtocolContext, *shares: U64) -> list[U64]:
    """Like :func:`open_arith` for XOR sharings."""
    return _open(ctx, "binary", list(shares))
