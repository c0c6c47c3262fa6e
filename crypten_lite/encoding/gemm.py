"""Integer GEMM with int32 accumulation and float requantization (PyTorch x86/fbgemm Linear).

Reference semantics (integer-only GEMM of Jacob et al., CVPR 2018, as in PyTorch's quantized
Linear), with ``x`` of shape ``(..., K)`` and the
weight in torch's Linear layout ``(C, K)``:

1. ``acc[n, c] = sum_k (x_q[n, k] - z_x) * (w_q[c, k] - z_w[c])`` (int32, exact);
2. ``real = acc * m[c] + bias[c]`` with ``m[c] = s_x * s_w[c]`` (bias stays float);
3. ``y_q = clamp(rint(real / s_y) + z_y, z_y if relu else qmin, qmax)``.

Steps 2-3 are float64 in exactly that order; both backends agree bit for bit. Step 1 runs as a
float64 BLAS GEMM, which is exact: each product has magnitude below 2^16 and any sum of fewer
than 2^37 of them is an integer below 2^53. The int32 accumulator cannot overflow because
``K * max|x_q - z_x| * max|w_q - z_w|`` is checked against 2^31 - 1 up front.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from crypten_lite.encoding.backend import active_kernels
from crypten_lite.encoding.qparams import QDTypeLike, dtype_bounds, normalize_qdtype
from crypten_lite.encoding.quantize import (
    ChannelParams,
    as_quantized_array,
    channel_view,
    normalize_axis,
    resolve_range,
)
from crypten_lite.errors import EncodingError, EncodingRangeError, RingShapeError

__all__ = ["INT32_MAX", "int8_gemm", "quantized_linear", "requantize"]

F64 = npt.NDArray[np.float64]
QArray = npt.NDArray[np.integer]

INT32_MAX = 2**31 - 1


def _operand(name: str, q: object) -> QArray:
    arr = as_quantized_array(name, q)
    if arr.dtype not in (np.int8, np.uint8):
        raise TypeError(f"{name} must have dtype int8 or uint8, got {arr.dtype}")
    return arr


def _max_centered(dt: np.dtype[np.integer], zero_point: npt.NDArray[np.int64], name: str) -> int:
    lo, hi = dtype_bounds(dt)
    if zero_point.size and (int(zero_point.min()) < lo or int(zero_point.max()) > hi):
        raise EncodingError(f"{name} must lie within the {dt.name} range [{lo}, {hi}]")
    if zero_point.size == 0:
        return 0
    return max(int(zero_point.max()) - lo, hi - int(zero_point.min()))


def _centered_gemm(
    x_q: object, w_q: object, x_zero_point: npt.ArrayLike, w_zero_point: npt.ArrayLike
) -> tuple[F64, tuple[int, ...]]:
    """Exact float64 accumulator ``(N, C)`` and the output shape ``(..., C)``."""
    x = _operand("x_q", x_q)
    w = _operand("w_q", w_q)
    if x.ndim < 1 or w.ndim != 2:
        raise RingShapeError("x_q must be (..., K) and w_q must be 2-D (C, K)")
    k = x.shape[-1]
    channels = w.shape[0]
    if w.shape[1] != k:
        raise RingShapeError(f"inner dimensions differ: x_q has K = {k}, w_q has K = {w.shape[1]}")
    zx = ChannelParams.build(1.0, x_zero_point, None).zero_point
    zw = ChannelParams.build(1.0, w_zero_point, channels).zero_point
    bound = _max_centered(x.dtype, zx, "x_zero_point") * _max_centered(w.dtype, zw, "w_zero_point")
    if bound and k * bound > INT32_MAX:
        raise EncodingRangeError(
            f"inner dimension K = {k} may overflow the int32 accumulator; "
            f"K must be at most {INT32_MAX // bound} for these dtypes and zero points"
        )
    kernels = active_kernels()
    xc = np.asarray(kernels.center(channel_view(x, None), zx)).reshape(-1, k)
    wc = np.asarray(kernels.center(channel_view(w, 0), zw)).reshape(channels, k)
    acc = np.matmul(xc, wc.T)
    return acc, (*x.shape[:-1], channels)


def int8_gemm(
    x_q: QArray,
    w_q: QArray,
    x_zero_point: npt.ArrayLike = 0,
    w_zero_point: npt.ArrayLike = 0,
) -> npt.NDArray[np.int32]:
    """``acc[..., c] = sum_k (x_q[..., k] - z_x) * (w_q[c, k] - z_w[c])`` as int32.

    ``x_q`` and ``w_q`` are int8 or uint8; ``w_zero_point`` is a scalar or one per output
    channel. Raises EncodingRangeError if K could overflow int32 (see module docstring).
    """
    acc, shape = _centered_gemm(x_q, w_q, x_zero_point, w_zero_point)
    return acc.astype(np.int32).reshape(shape)


def _requant_args(
    channels: int,
    x_scale: float,
    w_scale: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    out_scale: float,
    out_zero_point: int,
    out_dtype: QDTypeLike,
    relu: bool,
    quant_min: int | None,
    quant_max: int | None,
) -> tuple[F64, F64, float, int, int, int, np.dtype[np.integer]]:
    sx = ChannelParams.build(x_scale, 0, None).scale
    sw = ChannelParams.build(w_scale, 0, channels).scale
    so = ChannelParams.build(out_scale, out_zero_point, None)
    dt = normalize_qdtype(out_dtype, "out_dtype")
    qmin, qmax = resolve_range(dt, quant_min, quant_max)
    zy = int(so.zero_point[0])
    if not qmin <= zy <= qmax:
        raise EncodingError(f"out_zero_point must lie within [{qmin}, {qmax}]")
    if bias is None:
        b = np.zeros(channels, dtype=np.float64)
    else:
        try:
            b = np.asarray(bias, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError("bias must be a real array") from err
        if b.ndim > 1 or (b.ndim == 1 and b.size not in (1, channels)):
            raise EncodingError(f"bias must be a scalar or 1-D of length {channels}")
        b = np.ascontiguousarray(np.broadcast_to(b.reshape(-1), (channels,)))
        if not np.isfinite(b).all():
            raise EncodingError("bias must be finite")
    multiplier = sx[0] * sw
    return multiplier, b, float(so.scale[0]), zy, zy if relu else qmin, qmax, dt


def requantize(
    acc: npt.NDArray[np.integer],
    x_scale: float,
    w_scale: npt.ArrayLike,
    out_scale: float,
    out_zero_point: int,
    out_dtype: QDTypeLike = "quint8",
    *,
    bias: npt.ArrayLike | None = None,
    relu: bool = False,
    quant_min: int | None = None,
    quant_max: int | None = None,
    axis: int = -1,
) -> QArray:
    """``clamp(rint((acc * s_x * s_w[c] + bias[c]) / s_y) + z_y, z_y if relu else qmin, qmax)``.

    ``acc`` holds integer accumulators (|acc| < 2^53) with channels along ``axis``;
    ``w_scale`` and ``bias`` are scalars or one per channel.
    """
    if not isinstance(acc, np.ndarray) or acc.dtype.kind not in "iu":
        raise TypeError("acc must be a numpy array of integers")
    ax = normalize_axis(axis, acc.ndim)
    mult, b, so, zy, lo, hi, dt = _requant_args(
        acc.shape[ax],
        x_scale,
        w_scale,
        bias,
        out_scale,
        out_zero_point,
        out_dtype,
        relu,
        quant_min,
        quant_max,
    )
    view = channel_view(acc.astype(np.float64), ax)
    out = active_kernels().requantize(view, mult, b, so, zy, lo, hi, dt)
    return np.asarray(out).reshape(acc.shape)


def quantized_linear(
    x_q: QArray,
    w_q: QArray,
    bias: npt.ArrayLike | None = None,
    *,
    x_scale: float,
    x_zero_point: int,
    w_scale: npt.ArrayLike,
    w_zero_point: npt.ArrayLike = 0,
    out_scale: float,
    out_zero_point: int,
    out_dtype: QDTypeLike = "quint8",
    relu: bool = False,
    quant_min: int | None = None,
    quant_max: int | None = None,
) -> QArray:
    """PyTorch's quantized ``Linear`` / ``LinearReLU``: int8 GEMM then requantization.

    ``x_q``: ``(..., K)``; ``w_q``: ``(C, K)``; result ``(..., C)`` of ``out_dtype``. The
    requantization reads the exact float64 accumulator directly (no int32 round trip).
    """
    acc, shape = _centered_gemm(x_q, w_q, x_zero_point, w_zero_point)
    channels = shape[-1]
    mult, b, so, zy, lo, hi, dt = _requant_args(
        channels,
        x_scale,
        w_scale,
        bias,
        out_scale,
        out_zero_point,
        out_dtype,
        relu,
        quant_min,
        quant_max,
    )
    view = acc.reshape(-1, channels, 1)
    out = active_kernels().requantize(view, mult, b, so, zy, lo, hi, dt)
    return np.asarray(out).reshape(shape)
