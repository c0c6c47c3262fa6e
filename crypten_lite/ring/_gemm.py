"""Exact ring matmul and convolution, shared by both backends.

Two paths, one answer (every entry is the exact product mod 2^64):

- **native** (the compiled twin on a CPU with AVX-512): a blocked uint64 GEMM
  (``csrc_cython/ring_gemm.h``) whose 64-bit vector multiply-adds wrap like the ring. One
  pass over the data, no limbs: measured with one thread, 1024 x 2048 x 1024 in 191 ms
  against 393 ms for the limb GEMMs (and 431 ms for the six-GEMM limb path before), 32 x 1568
  x 128 in 0.70 ms against 2.5 ms.
- **limbs** (the numpy backend, and the compiled one elsewhere): float64 BLAS on balanced
  limbs, 5 GEMMs per chunk (see ``_ring_np`` for why the limb products are exact); the
  backends differ only in how limbs are split and recombined (:class:`RingKernels`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crypten_lite.ring._ring_np import MAX_EXACT_INNER, im2col

__all__ = ["RingKernels", "conv_nd", "limb_matmul", "matmul"]

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

@dataclass(frozen=True)
class RingKernels:
    """The kernels whose compiled twin pays; everything else in the API is numpy in both
    backends (measured as fast: one pass already)."""

    name: str
    split_limbs: Callable[[U64], F64]
    combine_limbs: Callable[[F64, F64, F64, F64, F64], U64]
    bits_unpack: Callable[[U64], npt.NDArray[np.uint8]]
    gather_bits: Callable[[U64, npt.NDArray[np.int64]], npt.NDArray[np.uint8]]
    scatter_bits: Callable[[npt.NDArray[np.uint8], int, npt.NDArray[np.int64]], U64]
    run_program: Callable[[npt.NDArray[np.int64], int, list[U64], npt.NDArray[np.int64], int], U64]
    #: An exact 2-D uint64 GEMM, when this backend has one for this CPU (the compiled twin
    #: with AVX-512); it replaces the limb GEMMs. ``None``: the limb path.
    native_gemm: Callable[[U64, U64], U64] | None = None


def _slice_inner(limbs: F64, start: int, stop: int, *, left: bool) -> F64:
    """Slice the contraction axis of a limb stack ``(3, ...)``: last axis of the left operand,
    second-to-last (or only) axis of the right operand."""
    if left or limbs.ndim == 2:
        return limbs[..., start:stop]
    return limbs[..., start:stop, :]


def limb_matmul(kernels: RingKernels, a_limbs: F64, b_limbs: F64) -> U64:
    """``a @ b mod 2^64`` from limb stacks ``(3, *a.shape)`` and ``(3, *b.shape)``.

    Uses 5 float64 GEMMs per chunk of at most ``MAX_EXACT_INNER`` inner elements (equal
    chunks): ``a0 b0``, ``a1 b1``, ``(a0 + a1)(b0 + b1)``, ``a0 b2``, ``a2 b0`` (Karatsuba's
    middle term, see ``_ring_np``).
    """
    inner = a_limbs.shape[-1]
    total: U64 | None = None
    chunks = max(1, -(-inner // MAX_EXACT_INNER))
    size = max(1, -(-inner // chunks))  # equal chunks, each at most MAX_EXACT_INNER
    for start in range(0, max(inner, 1), size):
        stop = min(start + size, inner)
        a = _slice_inner(a_limbs, start, stop, left=True) if chunks > 1 else a_limbs
        b = _slice_inner(b_limbs, start, stop, left=False) if chunks > 1 else b_limbs
        part = kernels.combine_limbs(
            np.matmul(a[0], b[0]),
            np.matmul(a[1], b[1]),
            np.matmul(np.add(a[0], a[1]), np.add(b[0], b[1])),
            np.matmul(a[0], b[2]),
            np.matmul(a[2], b[0]),
        )
        if total is None:
            total = part  # combine_limbs returns a fresh array
        else:
            np.add(total, part, out=total)
    return total  # type: ignore[return-value]  # the loop runs at least once


def _limbs_pay(a: U64, b: U64) -> bool:
    """Whether the fast paths (the limb GEMMs, or the native GEMM) beat numpy's own (exact,
    BLAS-less) uint64 matmul.

    Measured crossover on 2 cores: the limb path costs ~40 us fixed plus a few ns per element
    split or combined, so it wins once multiply-adds exceed ~6x the elements touched
    (48x48x48 and up; matrix-vector products stay with numpy).
    """
    inner = a.shape[-1]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    rows = a.shape[-2] if a.ndim > 1 else 1
    cols = b.shape[-1] if b.ndim > 1 else 1
    out_elems = int(np.prod(batch)) * rows * cols
    macs = out_elems * inner
    return bool(macs >= 50_000 and macs >= 6 * (a.size + b.size + out_elems))


def _native_matmul(gemm: Callable[[U64, U64], U64], a: U64, b: U64) -> U64:
    """numpy ``matmul`` semantics on top of a 2-D GEMM: 1-D operands are promoted and the
    result squeezed as numpy does; batch axes broadcast, one GEMM per matrix."""
    left = a[np.newaxis, :] if a.ndim == 1 else a
    right = b[:, np.newaxis] if b.ndim == 1 else b
    batch = np.broadcast_shapes(left.shape[:-2], right.shape[:-2])
    out = np.empty((*batch, left.shape[-2], right.shape[-1]), dtype=np.uint64)
    lefts = np.broadcast_to(left, (*batch, *left.shape[-2:]))
    rights = np.broadcast_to(right, (*batch, *right.shape[-2:]))
    for index in np.ndindex(*batch):
        out[index] = gemm(lefts[index], rights[index])
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def matmul(kernels: RingKernels, a: U64, b: U64) -> U64:
    """numpy ``matmul`` semantics (1-D, 2-D, batched with broadcasting), exact mod 2^64."""
    if not _limbs_pay(a, b):
        return np.asarray(np.matmul(a, b), dtype=np.uint64)
    if kernels.native_gemm is not None:
        return _native_matmul(kernels.native_gemm, a, b)
    result = limb_matmul(kernels, kernels.split_limbs(a), kernels.split_limbs(b))
    return np.asarray(result, dtype=np.uint64)


def conv_nd(
    kernels: RingKernels,
    x: U64,
    weight: U64,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> U64:
    """Cross-correlation over the trailing ``len(stride)`` spatial axes, torch layout.

    ``x``: ``(N, C_in, *spatial)``; ``weight``: ``(C_out, C_in / groups, *kernel)``;
    returns ``(N, C_out, *out_spatial)``. im2col, then per group either the native GEMM on
    the ring elements or the limb GEMMs (one batched GEMM per limb product, the groups as
    the batch axis).
    """
    n, c_in = x.shape[:2]
    c_out = weight.shape[0]
    kernel = weight.shape[2:]
    shape = (groups, c_out // groups, (c_in // groups) * int(np.prod(kernel)))
    out: U64
    if kernels.native_gemm is not None:
        # cols: (1, groups, c_group * prod(kernel), n * prod(out_spatial))
        cols, out_spatial = im2col(x[np.newaxis], kernel, stride, padding, dilation, groups)
        w = weight.reshape(shape)
        out = np.empty((groups, shape[1], cols.shape[-1]), dtype=np.uint64)
        for g in range(groups):
            out[g] = kernels.native_gemm(w[g], cols[0, g])
    else:
        cols_limbs, out_spatial = im2col(
            kernels.split_limbs(x), kernel, stride, padding, dilation, groups
        )
        w_limbs = kernels.split_limbs(weight).reshape(3, *shape)
        out = limb_matmul(kernels, w_limbs, cols_limbs)
    out = out.reshape(c_out, n, *out_spatial)  # from (groups, c_out/groups, n * prod(out))
    return np.ascontiguousarray(np.moveaxis(out, 1, 0))
