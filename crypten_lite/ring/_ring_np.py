"""Normative pure-numpy reference for the ring Z_2^64 kernels.

Every array is ``np.uint64``; unsigned wrap-around *is* reduction mod 2^64. The compiled twin
``_ring_cy`` must agree with the functions here bit for bit. Inputs are assumed validated by
:mod:`crypten_lite.ring.api`.

Fast matmul: each operand is split into three *balanced* (signed) limbs at bit offsets
0, 22 and 43 (widths 22, 21, 21), so ``|l0| <= 2^21`` and ``|l1|, |l2| <= 2^20``. Mod 2^64 only
the limb products at offsets below 64 matter: ``a0 b0`` (0), ``a0 b1 + a1 b0`` (22),
``a0 b2 + a2 b0`` (43) and ``a1 b1`` (44). Five float64 GEMMs give them, Karatsuba's trick
saving the sixth: ``P00 = a0 b0``, ``P11 = a1 b1``, ``Ps = (a0 + a1)(b0 + b1)``,
``P02 = a0 b2``, ``P20 = a2 b0``, and ``a0 b1 + a1 b0 = Ps - P00 - P11`` in int64 (wrapping)
arithmetic. Exactness: a float64 GEMM is exact, in any summation order, while every partial
sum is an integer of magnitude at most 2^53. The largest term is ``(a0 + a1)(b0 + b1)``,
``(3 * 2^20)^2 = 9 * 2^40``, so an inner dimension of up to ``MAX_EXACT_INNER`` = 910
(``910 * 9 * 2^40 < 2^53``) is exact; longer ones are cut into equal chunks no longer than that.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "LIMB_OFFSETS",
    "MAX_EXACT_INNER",
    "arshift",
    "bits_pack",
    "bits_unpack",
    "combine_limbs",
    "gather_bits",
    "im2col",
    "lshift",
    "rshift",
    "run_program",
    "scatter_bits",
    "split_limbs",
]

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]
_Element = TypeVar("_Element", np.float64, np.uint64)

LIMB_OFFSETS: tuple[int, int, int] = (0, 22, 43)
_LIMB_WIDTHS: tuple[int, int, int] = (22, 21, 21)
MAX_EXACT_INNER = 910  # K * (3 * 2^20)^2 <= 2^53


def split_limbs(a: U64) -> F64:
    """Split ``a`` into balanced limbs: returns float64 ``(3, *a.shape)`` with
    ``a == sum(limb[i] * 2^LIMB_OFFSETS[i]) mod 2^64`` and ``|limb| <= 2^21``."""
    out = np.empty((3, a.size), dtype=np.float64)
    rest = a.astype(np.uint64).reshape(-1)  # 1-D keeps numpy in array (wrapping) arithmetic
    for i, width in enumerate(_LIMB_WIDTHS):
        half = np.uint64(1 << (width - 1))
        mask = np.uint64((1 << width) - 1)
        digit = ((rest + half) & mask).astype(np.int64) - np.int64(1 << (width - 1))
        out[i] = digit
        rest = (rest - digit.view(np.uint64)) >> np.uint64(width)
    return out.reshape(3, *a.shape)


def combine_limbs(p00: F64, p11: F64, p_sum: F64, p02: F64, p20: F64) -> U64:
    """``a @ b mod 2^64`` from the five exact limb GEMMs (module docstring):
    ``P00 + (Ps - P00 - P11) 2^22 + (P02 + P20) 2^43 + P11 2^44``, wrapping."""
    t0, t11 = _as_uint(p00), _as_uint(p11)
    t1 = _as_uint(p_sum)
    np.subtract(t1, t0, out=t1)
    np.subtract(t1, t11, out=t1)
    t2 = _as_uint(p02)
    np.add(t2, _as_uint(p20), out=t2)
    out = t0
    np.add(out, np.left_shift(t1, np.uint64(LIMB_OFFSETS[1]), out=t1), out=out)
    np.add(out, np.left_shift(t2, np.uint64(LIMB_OFFSETS[2]), out=t2), out=out)
    np.add(out, np.left_shift(t11, np.uint64(2 * LIMB_OFFSETS[1]), out=t11), out=out)
    return out


def _as_uint(product: F64) -> U64:
    """An exact float64 GEMM result as a new uint64 array (two's complement of the integer;
    a real array, also for 0-d results)."""
    return np.asarray(product, dtype=np.float64).astype(np.int64).view(np.uint64)


def arshift(a: U64, bits: int) -> U64:
    """Arithmetic right shift of the two's-complement (signed) view of ``a``."""
    return (a.view(np.int64) >> np.int64(bits)).view(np.uint64)


def rshift(a: U64, bits: int) -> U64:
    """Logical right shift."""
    return a >> np.uint64(bits)


def lshift(a: U64, bits: int) -> U64:
    """Left shift mod 2^64."""
    return a << np.uint64(bits)


def bits_unpack(a: U64) -> npt.NDArray[np.uint8]:
    """Bit decomposition: ``out[..., k]`` is bit ``k`` (LSB first) of ``a``, as uint8 0/1."""
    as_bytes = np.ascontiguousarray(a).astype("<u8", copy=False).view(np.uint8)
    bits = np.unpackbits(as_bytes.reshape(*a.shape, 8), axis=-1, bitorder="little")
    return bits.reshape(*a.shape, 64)


def bits_pack(bits: npt.NDArray[np.uint8]) -> U64:
    """Inverse of :func:`bits_unpack`: ``bits[..., 64]`` of 0/1 values to uint64."""
    packed = np.packbits(bits.astype(np.uint8, copy=False), axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64, copy=False)[..., 0]


def im2col(
    x_limbs: npt.NDArray[_Element],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> tuple[npt.NDArray[_Element], tuple[int, ...]]:
    """Unfold limb stacks ``(L, N, C, *spatial)`` for a grouped convolution (``L`` = 3 limbs,
    or 1 for ring elements unfolded as they are).

    Returns ``cols`` of shape ``(L, groups, (C / groups) * prod(kernel), N * prod(out))`` and
    the output spatial shape.
    """
    dims: int = len(kernel)
    padded = np.pad(x_limbs, [(0, 0)] * 3 + [(p, p) for p in padding])
    limbs, n, c = padded.shape[:3]
    out_spatial: tuple[int, ...] = tuple(
        (padded.shape[3 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
        for i in range(dims)
    )
    base: tuple[int, ...] = padded.strides
    windows = np.lib.stride_tricks.as_strided(
        padded,
        shape=(limbs, n, c, *out_spatial, *kernel),
        strides=(
            *base[:3],
            *(base[3 + i] * stride[i] for i in range(dims)),
            *(base[3 + i] * dilation[i] for i in range(dims)),
        ),
        writeable=False,
    )
    order = (0, 2, *range(3 + dims, 3 + 2 * dims), 1, *range(3, 3 + dims))
    cols = windows.transpose(order).reshape(
        limbs, groups, (c // groups) * int(np.prod(kernel)), n * int(np.prod(out_spatial))
    )
    return cols, out_spatial


def gather_bits(words: U64, positions: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    """Pack bits ``positions`` of every word into a bit stream: stream bit ``i * k + j`` is
    bit ``positions[j]`` of ``words[i]`` (``k = len(positions)``), little-endian within
    bytes. ``ceil(n k / 8)`` bytes."""
    cols = positions.astype(np.uint64)
    bits = ((words.reshape(-1)[:, None] >> cols) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits.reshape(-1), bitorder="little")


def scatter_bits(
    stream: npt.NDArray[np.uint8], count: int, positions: npt.NDArray[np.int64]
) -> U64:
    """Inverse of :func:`gather_bits`: ``count`` words with the streamed bits at
    ``positions`` and zeros elsewhere."""
    k = positions.size
    bits = np.unpackbits(stream, count=count * k, bitorder="little").reshape(count, k)
    words = bits.astype(np.uint64) << positions.astype(np.uint64)
    return np.bitwise_or.reduce(words, axis=1) if k else np.zeros(count, dtype=np.uint64)


_PROGRAM_OPS = {
    0: np.bitwise_and,
    1: np.bitwise_xor,
    2: np.add,
    3: np.subtract,
    4: np.multiply,
    8: np.bitwise_or,
}


def run_program(
    code: npt.NDArray[np.int64],
    n_slots: int,
    inputs: list[U64],
    outputs: npt.NDArray[np.int64],
    n: int,
) -> U64:
    """Execute a word program (see ``ring.program``) on whole arrays: rows of ``code`` are
    ``(op, dst, a, b)``; inputs fill the first slots (one word broadcasts)."""
    slots: list[U64] = [np.zeros(0, dtype=np.uint64)] * n_slots
    for k, row in enumerate(inputs):
        slots[k] = np.broadcast_to(row, (n,)) if row.size == 1 else row
    for op, dst, a, b in code.tolist():
        if op in _PROGRAM_OPS:
            slots[dst] = _PROGRAM_OPS[op](slots[a], slots[b])
        elif op == 5:
            slots[dst] = np.right_shift(slots[a], np.uint64(b))
        elif op == 6:
            slots[dst] = np.left_shift(slots[a], np.uint64(b))
        else:
            slots[dst] = np.bitwise_not(slots[a])
    out = np.empty((outputs.size, n), dtype=np.uint64)
    for i, k in enumerate(outputs.tolist()):
        out[i] = slots[k]
    return out
