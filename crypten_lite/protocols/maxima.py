"""Selections and maxima on raw arithmetic shares, built on the comparisons of
:mod:`crypten_lite.protocols.comparison`: relu (and relu with its mask), clamp, the max/min
tournament (optionally keeping its comparison bits to route a gradient, or the one-hot of
the first maximum, back down), and max pooling (local window unfold, tournament, and the
local scatter-add of window gradients).

Comparison bits are integer 0/1 sharings (not fixed point): a Beaver product of a
fixed-point sharing with such a bit is already at the fixed-point scale (no truncation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crypten_lite.encoding import FixedPointEncoder
from crypten_lite.protocols import beaver, comparison
from crypten_lite.protocols.context import ProtocolContext

__all__ = [
    "PoolGeometry",
    "TournamentRoute",
    "clamp",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_route",
    "mul_ltz",
    "relu",
    "relu_mask",
    "tournament",
    "tournament_route",
]

U64 = npt.NDArray[np.uint64]
#: The value padded positions of max pooling hold (public, on party 0): ``-2^(40 - f)``.
POOL_FILL_BITS = 40


def _flat(share: U64) -> U64:
    return np.ascontiguousarray(share).reshape(-1)


# -- relu ----------------------------------------------------------------------------------
def mul_ltz(ctx: ProtocolContext, x: U64, y: U64) -> U64:
    """``[y (x < 0)]`` for flat shares of one shape: fused into the comparison with
    ``min_rounds`` (3 rounds, 55 dealer words per element), else
    :func:`~crypten_lite.protocols.comparison.select_ltz` (4 rounds, 9 words)."""
    if ctx.config.min_rounds:
        return comparison.mul_ltz(ctx, x, y)
    return comparison.select_ltz(ctx, x, y)[0]


def relu(ctx: ProtocolContext, x: U64) -> U64:
    """``[x] - [x (x < 0)]`` for a flat share (any encoding). 4 rounds (3 with
    ``min_rounds``)."""
    return x - mul_ltz(ctx, x, x)


def relu_mask(ctx: ProtocolContext, x: U64) -> tuple[U64, U64]:
    """``([x (x > 0)], [x > 0])``, the mask an integer 0/1 sharing: ``[x > 0] = [-x < 0]``
    and the product from one :func:`~crypten_lite.protocols.comparison.select_ltz`:
    4 rounds, any ``min_rounds``."""
    flat = _flat(x)
    out, bit = comparison.select_ltz(ctx, np.negative(flat), flat)
    return out.reshape(x.shape), bit.reshape(x.shape)


def clamp(ctx: ProtocolContext, x: U64, below: U64 | None, above: U64 | None) -> U64:
    """``x + relu(below) - relu(above)`` for ``below = [low - x]`` and ``above = [x - high]``
    (either may be None; shapes broadcast), both relus in one call: 4 rounds (3 with
    ``min_rounds``)."""
    parts = [p for p in (below, above) if p is not None]
    shape = np.broadcast_shapes(*(p.shape for p in parts))
    stacked = np.concatenate([np.broadcast_to(p, shape).reshape(-1) for p in parts])
    relus = relu(ctx, np.ascontiguousarray(stacked))
    size = int(np.prod(shape))
    out = np.broadcast_to(x, shape).copy()
    if below is not None:
        out = out + relus[:size].reshape(shape)
    if above is not None:
        out = out - relus[-size:].reshape(shape)
    return out


# -- tournament ----------------------------------------------------------------------------
class TournamentRoute:
    """The comparison bits of a tournament along one axis, to route a gradient back to the
    winners. Level ``l`` holds ``[right operand strictly better]`` per pair of neighbours
    (integer 0/1 sharing): 1 sends the pair's gradient to the right operand, 0 (also ties)
    to the left, so a value routed down lands on the FIRST best position.
    """

    __slots__ = ("_batch", "_bits", "axis", "length")

    def __init__(self, bits: list[U64], axis: int, length: int, batch: tuple[int, ...]) -> None:
        self._bits = tuple(bits)
        self._batch = batch
        self.axis = axis
        self.length = length

    @property
    def levels(self) -> int:
        """Product levels of :meth:`backward` (``ceil(log2 length)``)."""
        return len(self._bits)

    def __repr__(self) -> str:
        return f"TournamentRoute(axis={self.axis}, length={self.length}, levels={self.levels})"

    def backward(self, ctx: ProtocolContext, grad: U64) -> U64:
        """The gradient of the tournament's input from that of its values (shape of the
        values, the axis removed; any fixed-point scale, kept): ``g_right = g bit``,
        ``g_left = g - g_right`` level by level, all pairs of a level in one Beaver product.
        ``levels`` rounds, no truncation."""
        if grad.shape != self._batch:
            raise ValueError(f"gradient of shape {grad.shape}, expected {self._batch}")
        g = np.asarray(grad, dtype=np.uint64)[..., None]
        for bit in reversed(self._bits):
            half = bit.shape[-1]
            best, rest = g[..., :half], g[..., half:]
            right = beaver.mul(ctx, _flat(best), _flat(bit)).reshape(bit.shape)
            pairs = np.empty((*bit.shape[:-1], 2 * half), dtype=np.uint64)
            pairs[..., 0::2], pairs[..., 1::2] = best - right, right
            g = np.concatenate([pairs, rest], axis=-1)
        return np.moveaxis(g, -1, self.axis)

    def one_hot(self, ctx: ProtocolContext) -> U64:
        """Integer one-hot of the first best position along the axis (the input's shape):
        a public 1 routed down the same bits, :attr:`levels` rounds, no comparison."""
        ones = np.zeros(self._batch, dtype=np.uint64)
        if ctx.rank == 0:
            ones += np.uint64(1)
        return self.backward(ctx, ones)


def _tournament(
    ctx: ProtocolContext, x: U64, axis: int, want_max: bool, keep: bool
) -> tuple[U64, list[U64]]:
    moved = np.moveaxis(x, axis, -1)
    bits: list[U64] = []
    while moved.shape[-1] > 1:  # neighbours pair up: a left operand precedes its right one
        half = moved.shape[-1] // 2
        a, b = moved[..., 0 : 2 * half : 2], moved[..., 1 : 2 * half : 2]
        diff = (a - b) if want_max else (b - a)
        flat = _flat(diff)
        if keep:  # relu keeping its bit [diff < 0] = [b better than a]
            product, bit = comparison.select_ltz(ctx, flat, flat)
            r = flat - product
            bits.append(bit.reshape(diff.shape))
        else:
            r = relu(ctx, flat)
        best = (b + r.reshape(diff.shape)) if want_max else (b - r.reshape(diff.shape))
        moved = np.concatenate([best, moved[..., 2 * half :]], axis=-1)
    return np.array(moved[..., 0], dtype=np.uint64), bits


def tournament(ctx: ProtocolContext, x: U64, axis: int, want_max: bool) -> U64:
    """Max (or min) along ``axis`` (non-negative) by pairwise reduction of neighbours,
    ``max(a, b) = b + relu(a - b)``: ``ceil(log2 n)`` levels of one relu each (all pairs of
    a level, over every other axis, in one call), 4 rounds per level (3 with
    ``min_rounds``)."""
    return _tournament(ctx, x, axis, want_max, keep=False)[0]


def tournament_route(
    ctx: ProtocolContext, x: U64, axis: int, want_max: bool
) -> tuple[U64, TournamentRoute]:
    """:func:`tournament` keeping each level's bit (same values; 4 rounds per level, also
    with ``min_rounds``; without it the same traffic as :func:`tournament`: the bit comes
    with the relu from one ``select_ltz``)."""
    values, bits = _tournament(ctx, x, axis, want_max, keep=True)
    return values, TournamentRoute(bits, axis, x.shape[axis], values.shape)


# -- max pooling ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PoolGeometry:
    """Windows of a 2-D pooling over an ``(N, C, H, W)`` input (public; torch semantics)."""

    shape: tuple[int, int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output height and width."""
        (_, _, h, w), ks, st, pd, dl = (
            self.shape,
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
        )
        oh = (h + 2 * pd[0] - dl[0] * (ks[0] - 1) - 1) // st[0] + 1
        ow = (w + 2 * pd[1] - dl[1] * (ks[1] - 1) - 1) // st[1] + 1
        return oh, ow

    def unfold(self, x: U64, fill: U64 | np.uint64) -> U64:
        """``(N, C, OH, OW, kH kW)`` windows of ``x`` padded with ``fill`` (local)."""
        n, c, h, w = self.shape
        ks, st, pd, dl = self.kernel, self.stride, self.padding, self.dilation
        oh, ow = self.out_hw
        padded = np.full((n, c, h + 2 * pd[0], w + 2 * pd[1]), fill, dtype=np.uint64)
        padded[:, :, pd[0] : pd[0] + h, pd[1] : pd[1] + w] = x
        s = padded.strides
        windows = np.lib.stride_tricks.as_strided(
            padded,
            shape=(n, c, oh, ow, ks[0], ks[1]),
            strides=(s[0], s[1], s[2] * st[0], s[3] * st[1], s[2] * dl[0], s[3] * dl[1]),
            writeable=False,
        ).reshape(n, c, oh, ow, ks[0] * ks[1])
        return np.ascontiguousarray(windows)

    def fold(self, windows: U64) -> U64:
        """Adjoint of :meth:`unfold`: add each window element back to its input position
        (overlapping windows add; padded positions dropped). Local."""
        n, c, h, w = self.shape
        ks, st, pd, dl = self.kernel, self.stride, self.padding, self.dilation
        oh, ow = self.out_hw
        padded = np.zeros((n, c, h + 2 * pd[0], w + 2 * pd[1]), dtype=np.uint64)
        for i in range(ks[0]):
            for j in range(ks[1]):
                rows = slice(i * dl[0], i * dl[0] + st[0] * (oh - 1) + 1, st[0])
                cols = slice(j * dl[1], j * dl[1] + st[1] * (ow - 1) + 1, st[1])
                padded[:, :, rows, cols] += windows[..., i * ks[1] + j]
        return np.ascontiguousarray(padded[:, :, pd[0] : pd[0] + h, pd[1] : pd[1] + w])


def _windows(ctx: ProtocolContext, x: U64, precision: int, geometry: PoolGeometry) -> U64:
    """Padding counts as ``-2^(40 - f)``: party 0 holds it, the others zero."""
    low = FixedPointEncoder(precision).encode(np.array(-(2.0 ** (POOL_FILL_BITS - precision))))
    return geometry.unfold(x, low if ctx.rank == 0 else np.uint64(0))


def max_pool2d(ctx: ProtocolContext, x: U64, precision: int, geometry: PoolGeometry) -> U64:
    """torch max_pool2d of an ``(N, C, H, W)`` share: :func:`tournament` over each window,
    ``ceil(log2(kH kW))`` relu levels."""
    return tournament(ctx, _windows(ctx, x, precision, geometry), 4, True)


def max_pool2d_route(
    ctx: ProtocolContext, x: U64, precision: int, geometry: PoolGeometry
) -> tuple[U64, TournamentRoute]:
    """:func:`max_pool2d` keeping the tournament's bits (:func:`tournament_route`)."""
    return tournament_route(ctx, _windows(ctx, x, precision, geometry), 4, True)


def max_pool2d_backward(
    ctx: ProtocolContext, route: TournamentRoute, geometry: PoolGeometry, grad: U64
) -> U64:
    """Gradient of the pooling input (``(N, C, H, W)``) from that of the output: routed down
    the tournament (``ceil(log2(kH kW))`` rounds), then scatter-added (local)."""
    return geometry.fold(route.backward(ctx, grad))
