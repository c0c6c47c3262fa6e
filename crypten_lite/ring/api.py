"""Public ring Z_2^64 kernels on ``np.uint64`` arrays, validated and dispatched to the active
backend (:mod:`crypten_lite.ring.backend`). Wrong dtypes raise :class:`RingDTypeError`
(a ``TypeError``), wrong shapes or arguments :class:`RingShapeError` (a ``ValueError``); both
name the argument."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import RingDTypeError, RingShapeError
from crypten_lite.ring import _gemm, _ring_np
from crypten_lite.ring.backend import active_kernels

__all__ = [
    "add",
    "arshift",
    "bit_extract",
    "bits_pack",
    "bits_unpack",
    "conv1d",
    "conv2d",
    "from_signed",
    "gather_bits",
    "lshift",
    "matmul",
    "mul",
    "neg",
    "rshift",
    "scatter_bits",
    "sub",
    "sum",
    "to_signed",
]

U64 = npt.NDArray[np.uint64]
IntOrTuple = int | Sequence[int]


def _require_u64(name: str, a: object) -> U64:
    if not isinstance(a, np.ndarray):
        raise RingDTypeError(f"{name} must be a numpy array of uint64, got {type(a).__name__}")
    if a.dtype != np.uint64:
        raise RingDTypeError(f"{name} must have dtype uint64, got {a.dtype}")
    return a


def _broadcast(op: str, a: U64, b: U64) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError as err:
        raise RingShapeError(
            f"{op}: shapes of a {a.shape} and b {b.shape} do not broadcast"
        ) from err


def _shift_bits(bits: object) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer):
        raise RingDTypeError(f"bits must be an int, got {type(bits).__name__}")
    if not 0 <= int(bits) <= 63:
        raise RingShapeError(f"bits must lie in [0, 63], got {bits}")
    return int(bits)


def add(a: U64, b: U64) -> U64:
    """``a + b mod 2^64`` with broadcasting."""
    _broadcast("add", _require_u64("a", a), _require_u64("b", b))
    return np.add(a, b)


def sub(a: U64, b: U64) -> U64:
    """``a - b mod 2^64`` with broadcasting."""
    _broadcast("sub", _require_u64("a", a), _require_u64("b", b))
    return np.subtract(a, b)


def neg(a: U64) -> U64:
    """``-a mod 2^64``."""
    return np.negative(_require_u64("a", a))


def mul(a: U64, b: U64) -> U64:
    """Elementwise ``a * b mod 2^64`` with broadcasting."""
    _broadcast("mul", _require_u64("a", a), _require_u64("b", b))
    return np.multiply(a, b)


def sum(a: U64, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> U64:
    """Sum over ``axis`` (all axes if None) mod 2^64."""
    _require_u64("a", a)
    try:
        return np.asarray(np.sum(a, axis=axis, keepdims=keepdims, dtype=np.uint64))
    except np.exceptions.AxisError as err:
        raise RingShapeError(f"axis {axis} is out of range for a of shape {a.shape}") from err


def arshift(a: U64, bits: int) -> U64:
    """Arithmetic right shift of the signed (two's-complement) view of ``a``."""
    return _ring_np.arshift(_require_u64("a", a), _shift_bits(bits))


def rshift(a: U64, bits: int) -> U64:
    """Logical right shift."""
    return np.right_shift(_require_u64("a", a), np.uint64(_shift_bits(bits)))


def lshift(a: U64, bits: int) -> U64:
    """Left shift mod 2^64."""
    return np.left_shift(_require_u64("a", a), np.uint64(_shift_bits(bits)))


def bit_extract(a: U64, index: int) -> U64:
    """Bit ``index`` (0 = least significant) of every element, as uint64 0/1."""
    return np.bitwise_and(
        np.right_shift(_require_u64("a", a), np.uint64(_shift_bits(index))), np.uint64(1)
    )


def bits_unpack(a: U64) -> npt.NDArray[np.uint8]:
    """Bit decomposition, LSB first: ``out[..., k]`` is bit ``k`` of ``a`` (uint8 0/1)."""
    return active_kernels().bits_unpack(_require_u64("a", a))


def bits_pack(bits: npt.NDArray[np.uint8]) -> U64:
    """Inverse of :func:`bits_unpack`; ``bits`` has a trailing axis of 64 values in {0, 1}."""
    if not isinstance(bits, np.ndarray) or bits.dtype not in (np.uint8, np.bool_):
        raise RingDTypeError("bits must be a numpy array of uint8 or bool")
    if bits.ndim == 0 or bits.shape[-1] != 64:
        raise RingShapeError(f"bits must have a trailing axis of length 64, got shape {bits.shape}")
    if bits.dtype == np.uint8 and bits.size and int(bits.max()) > 1:
        raise RingShapeError("bits must contain only 0 and 1")
    return _ring_np.bits_pack(bits.view(np.uint8))


def _positions(positions: object) -> npt.NDArray[np.int64]:
    pos = np.asarray(positions)
    if pos.ndim != 1 or pos.dtype.kind not in "iu":
        raise RingDTypeError("positions must be a 1-D sequence of ints")
    if pos.size and (int(pos.min()) < 0 or int(pos.max()) > 63):
        raise RingShapeError("positions must lie in [0, 63]")
    return pos.astype(np.int64)


def gather_bits(words: U64, positions: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Pack bits ``positions`` of every word (flattened) into a little-endian bit stream:
    ``ceil(n * len(positions) / 8)`` bytes (wire format for opening a few bits per element)."""
    return active_kernels().gather_bits(_require_u64("words", words), _positions(positions))


def scatter_bits(stream: npt.NDArray[np.uint8], count: int, positions: npt.ArrayLike) -> U64:
    """Inverse of :func:`gather_bits`: ``count`` words with the streamed bits at ``positions``."""
    pos = _positions(positions)
    if not isinstance(stream, np.ndarray) or stream.dtype != np.uint8 or stream.ndim != 1:
        raise RingDTypeError("stream must be a 1-D uint8 array")
    if stream.size * 8 < count * pos.size:
        raise RingShapeError(f"stream holds {stream.size * 8} bits, need {count * pos.size}")
    return active_kernels().scatter_bits(stream, int(count), pos)


def to_signed(a: U64) -> npt.NDArray[np.int64]:
    """The two's-complement signed view of ring elements."""
    return _require_u64("a", a).view(np.int64)


def from_signed(a: npt.ArrayLike) -> U64:
    """Ring elements from signed integers (int64 range), wrapping negatives."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "iub":
        raise RingDTypeError(f"a must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64).view(np.uint64)


def matmul(a: U64, b: U64) -> U64:
    """Matrix product mod 2^64 with numpy ``matmul`` semantics (1-D, 2-D, batched).

    Exact: the compiled uint64 GEMM where the CPU has AVX-512, else float64 BLAS on balanced
    22/21/21-bit limbs, 5 GEMMs per inner chunk of at most 910 (see ``ring._gemm``).
    """
    _require_u64("a", a)
    _require_u64("b", b)
    if a.ndim == 0 or b.ndim == 0:
        raise RingShapeError("matmul: a and b must have at least one dimension")
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if a.shape[-1] != inner_b:
        raise RingShapeError(
            f"matmul: inner dimensions differ: a has {a.shape[-1]} (shape {a.shape}), "
            f"b has {inner_b} (shape {b.shape})"
        )
    if a.ndim > 2 and b.ndim > 2:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError as err:
            raise RingShapeError(
                f"matmul: batch shapes {a.shape[:-2]} and {b.shape[:-2]} do not broadcast"
            ) from err
    return _gemm.matmul(active_kernels(), a, b)


def _tuple(name: str, value: IntOrTuple, dims: int, minimum: int) -> tuple[int, ...]:
    items = (value,) * dims if isinstance(value, int | np.integer) else tuple(value)
    if len(items) != dims or not builtins.all(isinstance(v, int | np.integer) for v in items):
        raise RingShapeError(f"{name} must be an int or a sequence of {dims} ints, got {value!r}")
    if builtins.any(int(v) < minimum for v in items):
        raise RingShapeError(f"{name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in items)


def _conv(
    dims: int,
    x: U64,
    weight: U64,
    stride: IntOrTuple,
    padding: IntOrTuple,
    dilation: IntOrTuple,
    groups: int,
) -> U64:
    _require_u64("x", x)
    _require_u64("weight", weight)
    if x.ndim != dims + 2:
        raise RingShapeError(f"x must have {dims + 2} dims (N, C, ...), got shape {x.shape}")
    if weight.ndim != dims + 2:
        raise RingShapeError(
            f"weight must have {dims + 2} dims (C_out, C_in/groups, ...), got {weight.shape}"
        )
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise RingShapeError(f"groups must be a positive int, got {groups!r}")
    stride_t = _tuple("stride", stride, dims, 1)
    padding_t = _tuple("padding", padding, dims, 0)
    dilation_t = _tuple("dilation", dilation, dims, 1)
    c_in, c_out = x.shape[1], weight.shape[0]
    if c_in % groups or c_out % groups:
        raise RingShapeError(
            f"groups={groups} must divide input channels {c_in} and output channels {c_out}"
        )
    if weight.shape[1] * groups != c_in:
        raise RingShapeError(
            f"weight has {weight.shape[1]} input channels per group, x has {c_in} channels "
            f"and groups={groups} (expected {c_in // groups})"
        )
    for i in range(dims):
        span = dilation_t[i] * (weight.shape[2 + i] - 1) + 1
        if x.shape[2 + i] + 2 * padding_t[i] < span:
            raise RingShapeError(
                f"kernel extent {span} exceeds padded input size "
                f"{x.shape[2 + i] + 2 * padding_t[i]} along spatial dim {i}"
            )
    return _gemm.conv_nd(active_kernels(), x, weight, stride_t, padding_t, dilation_t, groups)


def conv1d(
    x: U64,
    weight: U64,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> U64:
    """1-D cross-correlation mod 2^64, torch layout: x ``(N, C_in, L)``, weight
    ``(C_out, C_in/groups, K)``."""
    return _conv(1, x, weight, stride, padding, dilation, groups)


def conv2d(
    x: U64,
    weight: U64,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> U64:
    """2-D cross-correlation mod 2^64, torch layout: x ``(N, C_in, H, W)``, weight
    ``(C_out, C_in/groups, kH, kW)``."""
    return _conv(2, x, weight, stride, padding, dilation, groups)
