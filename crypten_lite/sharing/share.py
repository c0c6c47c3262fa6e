"""Sharing a value from a source party and revealing shares, arithmetic (sum mod 2^64) and
binary (XOR). Functions take the communicator and pairwise streams explicitly.

Costs, per party, for ``n`` ring elements and ``N`` parties:
- ``share_from`` with the shape passed by all: 0 rounds, 0 bytes (zero-sharing plus the
  source's value). With ``shape=None`` on all parties: 1 round to learn the shape.
- ``reveal`` to all: 1 round, ``(N-1) n`` elements sent. To one party: 1 round, ``n`` elements
  sent by each other party, plus an empty (0-byte payload) message to every party that gets
  no share, so that every party hears from every other one.

Every opening carries the ``dst`` its sender uses, at no byte cost, in the dtype and shape of
its messages: a share for everyone travels as ``uint64``, a share for the receiver alone as
its bit-identical ``int64`` view, and a party that sends no share to a peer sends it an empty
``uint8`` array of shape ``(0, dst)``. Each party checks what every peer used against its own
``dst``, so parties that pass different ``dst`` to one reveal all fail at once with a
:class:`ShareError` naming both values, instead of waiting for messages that never come (or
silently mismatching later messages).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import ShareError
from crypten_lite.sharing.zero import PairwiseStreams
from crypten_lite.transport.base import Communicator

__all__ = ["ARITHMETIC", "BINARY", "accumulate", "combine", "reveal", "share_from"]

U64 = npt.NDArray[np.uint64]
ARITHMETIC = "arithmetic"
BINARY = "binary"


def _check_party(comm: Communicator, value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ShareError(f"{name} must be a party rank (int), got {type(value).__name__}")
    if not 0 <= int(value) < comm.world_size:
        raise ShareError(
            f"{name}={value} is not a party rank; parties are 0..{comm.world_size - 1}"
        )
    return int(value)


def accumulate(kind: str, total: U64, share: U64) -> None:
    """``total += share`` (arithmetic) or ``total ^= share`` (binary), in place."""
    if kind == ARITHMETIC:
        np.add(total, share, out=total)
    else:
        np.bitwise_xor(total, share, out=total)


def combine(kind: str, shares: list[U64]) -> U64:
    """Reconstruct a value from all shares (a new array)."""
    if len(shares) == 1:
        return np.array(shares[0], dtype=np.uint64, copy=True)
    first, second = np.asarray(shares[0], np.uint64), np.asarray(shares[1], np.uint64)
    total: U64 = np.empty(np.broadcast_shapes(first.shape, second.shape), dtype=np.uint64)
    (np.add if kind == ARITHMETIC else np.bitwise_xor)(first, second, out=total)
    for share in shares[2:]:
        accumulate(kind, total, share)
    return total


def share_from(
    comm: Communicator,
    zeros: PairwiseStreams,
    value: U64 | None,
    src: int,
    shape: tuple[int, ...] | None = None,
    kind: str = ARITHMETIC,
) -> U64:
    """This party's share of ``value`` held by party ``src`` (ring elements).

    Every party passes the same ``shape`` (0 rounds), or every party passes ``None`` and the
    source announces it (1 round; 8 bytes per dimension to each peer).
    """
    src = _check_party(comm, src, "src")
    if comm.rank == src:
        if value is None:
            raise ShareError(f"party {src} is the source but passed no value")
        if shape is not None and tuple(shape) != tuple(value.shape):
            raise ShareError(f"shape {tuple(shape)} differs from the value's {value.shape}")
    if shape is None:
        announced = np.array(value.shape if value is not None else (), dtype=np.int64)
        received = comm.broadcast(announced if comm.rank == src else None, src)
        shape = tuple(int(v) for v in np.asarray(received).reshape(-1))
    zero = zeros.arithmetic(tuple(shape)) if kind == ARITHMETIC else zeros.binary(tuple(shape))
    if comm.rank != src or value is None:  # value is never None on the source (checked)
        return zero
    if kind == ARITHMETIC:
        return np.add(zero, value)
    return np.bitwise_xor(zero, value)


def _dst_message(share: U64, dst: int | None, receiver: int) -> npt.NDArray[np.generic]:
    """What a party using ``dst`` sends ``receiver`` in a reveal (see module docstring)."""
    if dst is None:
        return share
    if dst == receiver:
        return share.view(np.int64)
    return np.empty((0, dst), dtype=np.uint8)


def _dst_of(message: npt.NDArray[np.generic], receiver: int) -> int | str | None:
    """The ``dst`` a peer used, read from its reveal message (a string if unreadable)."""
    if message.dtype == np.uint64:
        return None
    if message.dtype == np.int64:
        return receiver
    if message.dtype == np.uint8 and message.ndim == 2 and message.shape[0] == 0:
        return int(message.shape[1])
    return f"an unexpected {message.dtype} message of shape {message.shape}"


def reveal(
    comm: Communicator, share: U64, dst: int | None = None, kind: str = ARITHMETIC
) -> U64 | None:
    """The value of a sharing, to every party (``dst=None``) or to party ``dst`` only.

    Every party must pass the same ``dst``; if they do not, every party raises
    :class:`ShareError` naming the values (one round, as always: see module docstring)."""
    if dst is not None:
        dst = _check_party(comm, dst, "dst")
    own = np.asarray(share, dtype=np.uint64)
    peers = [p for p in comm.parties if p != comm.rank]
    got = comm.exchange({p: _dst_message(own, dst, p) for p in peers}, peers)
    used = {p: _dst_of(np.asarray(got[p]), comm.rank) for p in peers}
    differ = {p: d for p, d in used.items() if d != dst}
    if differ:
        theirs = ", ".join(
            f"party {p} uses {d}" if isinstance(d, str) else f"party {p} uses dst={d}"
            for p, d in sorted(differ.items())
        )
        raise ShareError(
            f"parties passed different dst to one reveal: party {comm.rank} uses dst={dst}, "
            f"{theirs}"
        )
    if dst is not None and comm.rank != dst:
        return None
    shares = [own if p == comm.rank else np.asarray(got[p]).view(np.uint64) for p in comm.parties]
    return combine(kind, shares)
