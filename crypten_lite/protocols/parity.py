"""Raw-share protocols behind the CrypTen-parity tensor methods: the log-depth product tree
(``prod``), cosine and sine after a private range reduction, the dropout mask stream all
parties share, and adaptive max pooling windows.

Range reduction of ``cos``/``sin`` (no comparison): ``y = x / (2 pi)`` is formed at scale
``2^(f + K)`` (``K = TRIG_EXTRA_BITS``) by a product with the public integer
``round(2^K / (2 pi))``; its integer part ``floor(y) + e`` (``e`` in ``{0, 1}``, the
truncation's error) is truncated off and shifted back, which leaves ``u = frac(y) - e`` in
``[-1, 1)`` at scale ``2^(f + K)``. A wrapped 2-party local truncation is off by a multiple of
``2^(64 - (f + K))``, which the shift back by ``f + K`` bits cancels mod 2^64, so this step
never fails. ``cos x = cos(2 pi u)``, ``sin x = sin(2 pi u)`` by a Chebyshev interpolant on
``[-1, 1]`` (even / odd).
"""

from __future__ import annotations

import math
import secrets

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import ProtocolError
from crypten_lite.protocols import beaver, maxima
from crypten_lite.protocols.approx_circuits import cheb_function
from crypten_lite.protocols.context import ProtocolContext
from crypten_lite.protocols.polynomial import Circuit
from crypten_lite.protocols.truncation import truncate
from crypten_lite.ring.prg import SEED_SIZE, AesCtrPrg

__all__ = [
    "TRIG_DEGREE",
    "TRIG_EXTRA_BITS",
    "adaptive_max_pool2d",
    "adaptive_windows",
    "product_tree",
    "shared_prg",
    "trig",
]

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

#: Extra fractional bits of ``x / (2 pi)`` in the range reduction of cos and sin.
TRIG_EXTRA_BITS = 20
#: Degree of the Chebyshev interpolant of ``cos(2 pi u)`` / ``sin(2 pi u)`` on ``[-1, 1]``.
TRIG_DEGREE = 22


def product_tree(ctx: ProtocolContext, x: U64, axis: int, precision: int) -> U64:
    """The product of ``x`` (fixed point at ``precision``) along ``axis`` (removed), by a
    tree: each level multiplies the first half by the second half (one batched Beaver
    product and one truncation), an odd last element waits for the next level.
    ``ceil(log2 n)`` levels. An empty axis gives 1."""
    x = np.moveaxis(x, axis, 0)
    n = x.shape[0]
    if n == 0:
        one = np.full(x.shape[1:], np.uint64(1) << np.uint64(precision), dtype=np.uint64)
        return one if ctx.rank == 0 else np.zeros_like(one)
    while n > 1:
        half = n // 2
        left = np.ascontiguousarray(x[:half]).reshape(-1)
        right = np.ascontiguousarray(x[half : 2 * half]).reshape(-1)
        z = truncate(ctx, beaver.mul(ctx, left, right), precision).reshape(x[:half].shape)
        x = np.concatenate([z, x[2 * half :]], axis=0) if n % 2 else z
        n = x.shape[0]
    return np.ascontiguousarray(x[0])


def _cos_2pi(u: F64) -> F64:
    return np.cos(2.0 * np.pi * u)


def _sin_2pi(u: F64) -> F64:
    return np.sin(2.0 * np.pi * u)


def trig(ctx: ProtocolContext, x: U64, precision: int, which: str) -> U64:
    """``cos x`` (``which="cos"``) or ``sin x`` (``"sin"``) of a flat fixed-point sharing
    (see module doc): one truncation, then ``ceil(log2 TRIG_DEGREE)`` product levels."""
    if which not in ("cos", "sin"):
        raise ValueError(f"which must be 'cos' or 'sin', got {which!r}")
    bits = precision + TRIG_EXTRA_BITS
    factor = np.uint64(round(2.0**TRIG_EXTRA_BITS / (2.0 * math.pi)))
    scaled = x * factor  # y = x / (2 pi) at scale 2^(f + K)
    whole = truncate(ctx, scaled, bits) << np.uint64(bits)
    frac = scaled - whole  # u = frac(y) - e in [-1, 1) at scale 2^(f + K)
    circ = Circuit(precision, fuse=ctx.config.min_rounds)
    node = circ.input(frac, bits)
    fn, parity = (_cos_2pi, 0) if which == "cos" else (_sin_2pi, 1)
    out = cheb_function(circ, node, fn, -1.0, 1.0, TRIG_DEGREE + (which == "sin"), parity)
    (result,) = circ.run(ctx, [out])
    return result


def shared_prg(ctx: ProtocolContext) -> AesCtrPrg:
    """An AES-CTR stream every party holds with the same seed: party 0 draws a fresh seed
    with ``secrets`` and broadcasts it (1 round). Its output is PUBLIC to the parties (use it
    only for data-independent randomness, e.g. dropout masks)."""
    seed = secrets.token_bytes(SEED_SIZE) if ctx.rank == 0 else None
    message = ctx.comm.broadcast(
        np.frombuffer(seed, dtype=np.uint8).copy() if seed is not None else None, 0
    )
    if message.dtype != np.uint8 or message.shape != (SEED_SIZE,):
        raise ProtocolError("malformed shared seed from party 0")
    return AesCtrPrg.from_seed(message.tobytes())


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive pooling windows ``[floor(i n / o), ceil((i + 1) n / o))``."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def adaptive_max_pool2d(ctx: ProtocolContext, x: U64, out_hw: tuple[int, int]) -> U64:
    """Adaptive max pooling of ``x`` (``(..., H, W)``): every window gathered locally into a
    last axis of the largest window size (shorter windows repeat their first element, which
    leaves their maximum unchanged), then one max tournament over that axis:
    ``ceil(log2 k)`` relu levels, ``k`` the largest window."""
    h, w = x.shape[-2:]
    rows, cols = adaptive_windows(h, out_hw[0]), adaptive_windows(w, out_hw[1])
    k = max(r1 - r0 for r0, r1 in rows) * max(c1 - c0 for c0, c1 in cols)
    flat_index = np.zeros((out_hw[0], out_hw[1], k), dtype=np.int64)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            cells = [r * w + c for r in range(r0, r1) for c in range(c0, c1)]
            flat_index[i, j] = cells + [cells[0]] * (k - len(cells))
    windows = x.reshape(*x.shape[:-2], h * w)[..., flat_index]
    return maxima.tournament(ctx, np.ascontiguousarray(windows), windows.ndim - 1, True)
