"""Beaver-triple products of arithmetic sharings: elementwise, matmul, convolution.

1. The dealer provides ``[a], [b], [c]`` with ``c = a ∘ b`` (``∘`` the bilinear op).
2. Open ``e = x - a`` and ``f = y - b`` together.
3. Party ``i`` sets ``z_i = c_i + e ∘ b_i + x_i ∘ f``; the shares sum to
   ``ab + eb + (e + a) f = (e + a)(f + b) = x ∘ y``. No party needs a third product.

Cost: 1 round; ``(N-1) (|x| + |y|)`` ring elements sent per party; one triple. No truncation:
fixed-point callers truncate the result (see ``truncation``).
Reference: Beaver, "Efficient multiparty protocols using circuit randomization", CRYPTO '91.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from crypten_lite import ring
from crypten_lite.protocols.context import ProtocolContext, open_masked
from crypten_lite.providers import Correlation
from crypten_lite.providers.kinds import Params

__all__ = ["bilinear", "conv", "matmul", "mul"]

U64 = npt.NDArray[np.uint64]
BinaryOp = Callable[[U64, U64], U64]


def _open_masked(
    ctx: ProtocolContext, x: U64, y: U64, kind: str, params: Params
) -> tuple[U64, U64, Correlation]:
    triple = ctx.provider.get(kind, params)
    e, f = open_masked(ctx, (x, triple["a"]), (y, triple["b"]))
    return e, f, triple


def bilinear(ctx: ProtocolContext, x: U64, y: U64, kind: str, params: Params, op: BinaryOp) -> U64:
    """``[op(x, y)]`` for a bilinear ``op`` whose triple kind is ``kind`` (see module doc)."""
    e, f, triple = _open_masked(ctx, x, y, kind, params)
    local = ring.add(op(e, triple["b"]), op(x, f))
    return ring.add(triple["c"], local)  # read c last: the dealer's reply overlaps the work


def mul(ctx: ProtocolContext, x: U64, y: U64) -> U64:
    """Elementwise ``[x * y]`` with broadcasting. 1 round."""
    if x.shape != y.shape:
        return bilinear(ctx, x, y, "mul", (x.shape, y.shape), ring.mul)
    e, f, triple = _open_masked(ctx, x, y, "mul", (x.shape, y.shape))
    z = np.multiply(e, triple["b"])
    np.multiply(f, x, out=f)  # f is this call's own buffer (a view of the opening)
    np.add(z, f, out=z)
    np.add(z, triple["c"], out=z)  # read c last: the dealer's reply overlaps the work
    return z


def matmul(ctx: ProtocolContext, x: U64, y: U64) -> U64:
    """``[x @ y]`` (numpy matmul semantics). 1 round; two ring GEMMs, ``e @ b_i`` and
    ``x_i @ f`` (no concatenated operands: with the native GEMM that copy cost more than the
    one extra sum)."""
    e, f, triple = _open_masked(ctx, x, y, "matmul", (x.shape, y.shape))
    local = ring.matmul(e, triple["b"])
    np.add(local, ring.matmul(x, f), out=local)
    return ring.add(triple["c"], local)  # read c last: the dealer's reply overlaps the GEMM


def conv(
    ctx: ProtocolContext,
    x: U64,
    w: U64,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> U64:
    """``[conv(x, w)]`` (1-D or 2-D by ``x.ndim``, torch layout). 1 round."""
    fn = ring.conv1d if x.ndim == 3 else ring.conv2d

    def op(a: U64, b: U64) -> U64:
        return fn(a, b, stride=stride, padding=padding, dilation=dilation, groups=groups)

    params: Params = (x.shape, w.shape, stride, padding, dilation, (groups,))
    return bilinear(ctx, x, w, "conv", params, op)
