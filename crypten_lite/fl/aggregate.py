"""Summing the agreed shares, revealing the sum to the servers, and checking each client's
contribution in MPC before it enters the sum.

* :func:`reveal_sum`: every server all-gathers its share of the sum: **1 round**, each server
  sends ``m · ring_bits/8`` bytes to each other server. Only the sum is ever opened.
* :func:`range_check` (on by default in the service): for every agreed client, checks inside
  MPC that every element ``q_j`` of its *reconstructed* update (whatever shares it sent) lies
  in public bounds ``[lo_j, hi_j]`` (``[-qmax, qmax]``, the quantized clip range; a FedAvg
  weight slot ``[0, wmax]``), optionally also ``||q||_2^2 <= B^2`` (the norm bound, 64-bit
  ring). Per element two comparisons with zero, ``[q_j - lo_j < 0]`` and ``[hi_j - q_j < 0]``,
  batched over all clients (chunks of ``chunk`` values per call); the 0/1 results are summed
  per client (local) and one zero test per client gives its accept bit; only the ``n`` accept
  bits are opened, identically on every server. Exact for any ring element when
  ``lo <= 0 <= hi`` and ``hi - lo < 2^(ring_bits-1)``: in range no difference wraps, out of
  range one of the two differences is negative without wrapping.
  **32-bit ring:** the comparisons work on 64-bit shares; a 32-bit sharing of ``q`` becomes
  the exact 64-bit sharing of ``q · 2^32`` by shifting every share left by 32 bits (local:
  ``(Σ x_i mod 2^32) · 2^32 = Σ (x_i · 2^32) mod 2^64``), and the signed 64-bit value of
  ``q · 2^32`` is the signed 32-bit value of ``q`` times ``2^32``; the bounds are shifted
  alike. No lifting protocol, no extra round.
  Cost for ``n`` clients of ``m`` elements (trusted dealer, N servers): ``4·ceil(2nm/chunk)``
  rounds for the comparisons (4 with a single chunk: the low-traffic ``ltz`` with a binary
  last gate, since a check runs once per round and bytes, not rounds, bound it), 3 for the
  ``n`` zero tests, 1 to open the bits (**8 rounds** for ``2nm <= chunk``); about
  ``(N-1)·26·nm`` bytes sent per server and 16 dealer words per element to server N-1 (8 per
  comparison; 60 with the 3-round ``ltz``). With the norm bound, +1 Beaver round for the
  squares (``(N-1)·16nm`` bytes).
* :func:`norm_check`: the norm bound alone (``|q_j| <= B`` and ``||q||^2 <= B^2``), as
  :func:`range_check` with ``lo = -B``, ``hi = B``. The elementwise part is what makes the
  squared norm sound: without it a crafted ring element (``q_j = 2^32``) squares to 0 mod
  2^64. Requires ``m·B^2 < 2^62``.
"""

from __future__ import annotations

import math
from typing import Protocol, cast

import numpy as np
import numpy.typing as npt

from crypten_lite.edge.encode import quant_params
from crypten_lite.edge.messages import QuantSpec
from crypten_lite.errors import ConfigError
from crypten_lite.protocols import comparison
from crypten_lite.session import Session
from crypten_lite.tensor import MPCTensor
from crypten_lite.transport.base import Communicator

__all__ = [
    "RANGE_CHUNK",
    "ShareRows",
    "norm_bound_units",
    "norm_check",
    "quant_scale",
    "range_check",
    "reveal_sum",
]

U64 = npt.NDArray[np.uint64]
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
#: compared values per comparison call (bounds the dealer material held at once).
RANGE_CHUNK = 1 << 16


class ShareRows(Protocol):
    """This server's share of each client's update, by client index (``uint64`` rows)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> U64: ...


def quant_scale(quant: QuantSpec) -> float:
    """The float value of one quantization unit for ``quant`` (see ``transport.edge.SCHEMES``)."""
    return quant_params(quant)[0]


def norm_bound_units(norm_bound: float, quant: QuantSpec, num_elements: int) -> int:
    """``B = floor(norm_bound / scale)``: the L2 bound in quantization units; checks that the
    squared norm of an in-range update cannot wrap the 64-bit ring."""
    if not math.isfinite(norm_bound) or norm_bound <= 0:
        raise ConfigError(f"norm_bound must be a positive finite float, got {norm_bound!r}")
    bound = math.floor(norm_bound / quant_scale(quant))
    if bound < 1:
        raise ConfigError(f"norm_bound {norm_bound} is below one quantization unit")
    if num_elements * bound * bound >= 2**62:
        raise ConfigError(
            f"norm_bound {norm_bound} is too large for {num_elements} elements: "
            "num_elements * (norm_bound / scale)^2 must stay below 2^62"
        )
    return bound


def reveal_sum(comm: Communicator, share_sum: U64, ring_bits: int) -> U64:
    """Open the sum of the servers' shares (each a ``uint64`` array holding values mod
    ``2^ring_bits``) on every server. 1 round (see module doc)."""
    payload = share_sum.astype(np.uint32) if ring_bits == 32 else share_sum
    total = np.zeros(share_sum.shape, np.uint64)
    for part in comm.all_gather(payload):
        if part.shape != share_sum.shape:
            raise ValueError("servers hold sums of different lengths")
        np.add(total, part.astype(np.uint64, copy=False), out=total)
    if ring_bits == 32:
        np.bitwise_and(total, _MASK32, out=total)
    return total


def norm_check(session: Session, shares: U64, bound: int) -> npt.NDArray[np.bool_]:
    """Which rows of the shared matrix ``shares`` (``n`` clients x ``m`` elements, this
    server's 64-bit shares of integer updates) have ``|q_j| <= bound`` everywhere and
    ``||q||^2 <= bound^2``. Every server gets the same accept vector; nothing else is opened.
    See :func:`range_check` for the cost."""
    if shares.ndim != 2 or shares.dtype != np.uint64:
        raise ValueError("shares must be a 2-d uint64 array (clients x elements)")
    m = shares.shape[1]
    lo = np.full(m, -bound, np.int64)
    hi = np.full(m, bound, np.int64)
    return range_check(session, shares, lo, hi, 64, norm_bound=bound)


def range_check(
    session: Session,
    rows: ShareRows | U64,
    lo: npt.NDArray[np.int64],
    hi: npt.NDArray[np.int64],
    ring_bits: int,
    *,
    norm_bound: int | None = None,
    chunk: int = RANGE_CHUNK,
) -> npt.NDArray[np.bool_]:
    """Which clients' shared updates lie in ``[lo_j, hi_j]`` for every element ``j`` (and,
    with ``norm_bound`` ``B``, have ``||q||^2 <= B^2``; 64-bit ring only). ``rows[i]`` is this
    server's share of client ``i``'s update (``uint64`` holding values mod
    ``2^ring_bits``; a sequence is read one row at a time, so the rows may be built lazily).
    Every server gets the same accept vector; only it is opened. See the module doc."""
    n = len(rows)
    lo = np.asarray(lo, dtype=np.int64).reshape(-1)
    hi = np.asarray(hi, dtype=np.int64).reshape(-1)
    m = lo.size
    if hi.size != m or m == 0:
        raise ValueError("lo and hi must be non-empty and of one length")
    if ring_bits not in (32, 64):
        raise ConfigError(f"ring_bits must be 32 or 64, got {ring_bits!r}")
    if np.any(lo > 0) or np.any(hi < 0):
        raise ConfigError("the range check needs lo <= 0 <= hi for every element")
    if int(np.max(hi.astype(object) - lo.astype(object))) >= 1 << (ring_bits - 1):
        raise ConfigError(f"the range [lo, hi] is too wide for a {ring_bits}-bit ring")
    if norm_bound is not None:
        if ring_bits != 64:
            raise ConfigError("the norm bound needs ring_bits=64 (the check squares in MPC)")
        if m * norm_bound * norm_bound >= 2**62:
            raise ConfigError("bound too large: num_elements * bound^2 must stay below 2^62")
    if n == 0:
        return np.zeros(0, np.bool_)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 2:
        raise ValueError(f"chunk must be an int >= 2, got {chunk!r}")
    lead = session.rank == 0  # only one party adds public constants
    shift = _SHIFT32 if ring_bits == 32 else np.uint64(0)
    lo_s = lo.astype(np.uint64) << shift  # two's complement, then into the top 32 bits
    hi_s = hi.astype(np.uint64) << shift
    counts = np.zeros(n, np.uint64)  # shares of each client's number of violations
    if norm_bound is not None:
        stacked = np.stack([_row(rows, i, m) for i in range(n)])
        q = MPCTensor.from_shares(stacked, precision=0, session=session)
        norm_sq = q.square().sum(dim=1).share  # 1 Beaver round
        del stacked, q
        b2 = np.uint64(norm_bound * norm_bound)
        over = (b2 - norm_sq) if lead else np.negative(norm_sq)  # B^2 - |q|^2 < 0 ?
        counts += comparison.ltz(session, over, rounds=4)
    pieces: list[U64] = []
    owners: list[tuple[int, int]] = []  # (client, length) of each piece, in order
    size = 0
    half = max(1, chunk // 2)
    for i in range(n):
        row = _row(rows, i, m) << shift
        for a in range(0, m, half):
            x = row[a : a + half]
            below = (x - lo_s[a : a + half]) if lead else x  # q - lo < 0 ?
            above = (hi_s[a : a + half] - x) if lead else np.negative(x)  # hi - q < 0 ?
            pieces += [below, above]
            owners.append((i, 2 * x.size))
            size += 2 * x.size
            if size >= chunk:
                _count_violations(session, pieces, owners, counts)
                pieces, owners, size = [], [], 0
    if pieces:
        _count_violations(session, pieces, owners, counts)
    ok = MPCTensor.from_shares(counts, precision=0, session=session).eq(0)  # 3 rounds
    opened = cast(U64, ok.reveal_ring())  # 1 round; without dst every party gets the value
    return np.asarray(opened == np.uint64(1))


def _row(rows: ShareRows | U64, i: int, m: int) -> U64:
    row = np.asarray(rows[i])
    if row.dtype != np.uint64 or row.shape != (m,):
        raise ValueError(f"share row {i} must be a uint64 array of shape ({m},)")
    return row


def _count_violations(
    session: Session, pieces: list[U64], owners: list[tuple[int, int]], counts: U64
) -> None:
    """One comparison call over the concatenated pieces; adds each piece's violations to its
    client's count (local)."""
    bits = comparison.ltz(session, np.concatenate(pieces), rounds=4)  # 8 dealer words, not 30
    starts = np.cumsum([0] + [length for _, length in owners[:-1]])
    sums = np.add.reduceat(bits, starts)
    np.add.at(counts, np.array([c for c, _ in owners], np.intp), sums)
