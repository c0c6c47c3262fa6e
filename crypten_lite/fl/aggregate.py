"""Summing the agreed shares, revealing the sum to the servers, and the optional norm bound.

* :func:`reveal_sum`: every server all-gathers its share of the sum: **1 round**, each server
  sends ``m · ring_bits/8`` bytes to each other server. Only the sum is ever opened.
* :func:`norm_check`: for every agreed client, checks inside MPC (64-bit ring) that its
  quantized update ``q`` satisfies ``|q_j| <= B`` for every element and ``||q||_2^2 <= B^2``,
  with ``B = floor(norm_bound / scale)``. The elementwise part is implied by the norm bound for
  an honest update, and it is what makes the squared norm sound: without it a crafted ring
  element (``q_j = 2^32``) squares to 0 mod 2^64. Only one accept bit per client is revealed.
  Cost for ``n`` clients of ``m`` elements (trusted dealer, N servers): 1 Beaver round for the
  squares (``(N-1)·16nm`` bytes sent per server), 3 rounds for one batched comparison of
  ``2nm + n`` values, 3 rounds for the ``n`` zero tests, 1 round to open the bits: **8 rounds**,
  about ``(N-1)·(16 + 2·13)·nm`` bytes per server plus the dealer's ~60 words per compared
  element to server N-1. Costly: it is optional and off by default. Requires ``m·B^2 < 2^62``.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import numpy.typing as npt

from crypten_lite.client.encode import quant_params
from crypten_lite.errors import ConfigError
from crypten_lite.session import Session
from crypten_lite.tensor import MPCTensor
from crypten_lite.transport.base import Communicator
from crypten_lite.transport.edge import QuantSpec

__all__ = ["norm_bound_units", "norm_check", "quant_scale", "reveal_sum"]

U64 = npt.NDArray[np.uint64]
_MASK32 = np.uint64(0xFFFFFFFF)


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
    8 rounds (see module doc)."""
    if shares.ndim != 2 or shares.dtype != np.uint64:
        raise ValueError("shares must be a 2-d uint64 array (clients x elements)")
    n, m = shares.shape
    if n == 0:
        return np.zeros(0, np.bool_)
    if m * bound * bound >= 2**62:
        raise ConfigError("bound too large: num_elements * bound^2 must stay below 2^62")
    q = MPCTensor.from_shares(shares, precision=0, session=session)
    norm_sq = q.square().sum(dim=1).share  # 1 round
    lead = session.rank == 0  # only one party adds public constants
    b = np.uint64(bound)
    over_norm = norm_sq - np.uint64(bound * bound) if lead else norm_sq
    over_pos = (shares - b) if lead else shares  # q_j - B > 0 ? (concatenate copies)
    over_neg = (np.negative(shares) - b) if lead else np.negative(shares)  # -q_j - B > 0 ?
    stacked = np.concatenate([over_norm, over_pos.reshape(-1), over_neg.reshape(-1)])
    bits = MPCTensor.from_shares(stacked, precision=0, session=session).gt(0).share  # 3 rounds
    counts = (
        bits[:n]
        + bits[n : n + n * m].reshape(n, m).sum(axis=1, dtype=np.uint64)
        + bits[n + n * m :].reshape(n, m).sum(axis=1, dtype=np.uint64)
    )
    ok = MPCTensor.from_shares(counts, precision=0, session=session).eq(0)  # 3 rounds
    opened = cast(U64, ok.reveal_ring())  # 1 round; without dst every party gets the value
    return np.asarray(opened == np.uint64(1))
