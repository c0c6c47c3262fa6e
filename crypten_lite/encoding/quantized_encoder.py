"""Int8 (or uint8 / int32) affine quantization as an :class:`~.base.Encoder`.

``encode`` quantizes (``q = clamp(rint(x / s) + z, qmin, qmax)``) and stores ``v = q - z``
sign-extended into the ring, so ring value ``v`` stands for the real ``s * v`` exactly like a
fixed-point encoding with scale ``s``. ``decode`` is the matching dequantization
``int64(r) * s``; it accepts any ring element (e.g. a sum of products), not only ``q - z``.
Per-channel encoders apply ``scale[c]``/``zero_point[c]`` along ``axis``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from crypten_lite.encoding.backend import active_kernels
from crypten_lite.encoding.base import as_real_array, require_ring
from crypten_lite.encoding.qparams import (
    PER_TENSOR_AFFINE,
    QDTypeLike,
    QScheme,
    calculate_qparams,
    normalize_qdtype,
    normalize_qscheme,
)
from crypten_lite.encoding.quantize import (
    ChannelParams,
    channel_view,
    dequantize,
    normalize_axis,
    quantize,
    resolve_range,
)
from crypten_lite.errors import EncodingError, RingShapeError

__all__ = ["QuantizedEncoder"]

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]


class QuantizedEncoder:
    """Affine quantization encoder, per tensor (``axis=None``) or per channel along ``axis``.

    >>> enc = QuantizedEncoder(scale=0.5, zero_point=3, dtype="quint8")
    >>> enc.encode([1.0, -1.0]).view(np.int64).tolist()
    [2, -2]
    >>> enc.decode(enc.encode([1.0, -1.0])).tolist()
    [1.0, -1.0]
    """

    __slots__ = ("_axis", "_dtype", "_params", "_qmax", "_qmin")

    def __init__(
        self,
        scale: npt.ArrayLike,
        zero_point: npt.ArrayLike = 0,
        dtype: QDTypeLike = "qint8",
        *,
        axis: int | None = None,
        quant_min: int | None = None,
        quant_max: int | None = None,
    ) -> None:
        self._dtype = normalize_qdtype(dtype)
        if axis is not None:
            if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
                raise EncodingError("axis must be an int or None")
            if np.ndim(scale) != 1:
                raise EncodingError("a per-channel encoder needs a 1-D scale (one per channel)")
            channels: int | None = int(np.shape(scale)[0])
        else:
            channels = None
        self._axis = None if axis is None else int(axis)
        self._params = ChannelParams.build(scale, zero_point, channels)
        self._params.scale.flags.writeable = False
        self._params.zero_point.flags.writeable = False
        lo, hi = resolve_range(self._dtype, quant_min, quant_max)
        zp = self._params.zero_point
        if zp.size and (int(zp.min()) < lo or int(zp.max()) > hi):
            raise EncodingError(f"zero_point must lie within the clamp range [{lo}, {hi}]")
        self._qmin, self._qmax = lo, hi

    @classmethod
    def from_min_max(
        cls,
        min_val: npt.ArrayLike,
        max_val: npt.ArrayLike,
        dtype: QDTypeLike = "qint8",
        qscheme: QScheme | str = PER_TENSOR_AFFINE,
        *,
        axis: int = 0,
        quant_min: int | None = None,
        quant_max: int | None = None,
        reduce_range: bool = False,
    ) -> QuantizedEncoder:
        """Encoder with PyTorch's qparams for an observed range (``calculate_qparams``).

        As after PyTorch's ``convert``, the encoder clamps to the full ``dtype`` range; the
        custom/reduced range only shapes the scale and zero point.
        """
        scheme = normalize_qscheme(qscheme)
        scale, zero_point = calculate_qparams(
            min_val, max_val, dtype, scheme, quant_min, quant_max, reduce_range=reduce_range
        )
        per_channel = scheme.startswith("per_channel")
        return cls(scale, zero_point, dtype, axis=axis if per_channel else None)

    @property
    def scale(self) -> float | F64:
        """Real value of one ring unit: a float, or one per channel (1-D, read-only)."""
        return float(self._params.scale[0]) if self._axis is None else self._params.scale

    @property
    def zero_point(self) -> int | npt.NDArray[np.int64]:
        """The zero point(s)."""
        zp = self._params.zero_point
        return int(zp[0]) if self._axis is None else zp

    @property
    def dtype(self) -> np.dtype[np.integer]:
        """The quantized dtype (int8, uint8 or int32)."""
        return self._dtype

    @property
    def axis(self) -> int | None:
        """Channel axis, or ``None`` for per-tensor."""
        return self._axis

    @property
    def qmin_qmax(self) -> tuple[int, int]:
        """The clamp range."""
        return self._qmin, self._qmax

    def __repr__(self) -> str:
        kind = "per_tensor" if self._axis is None else f"per_channel(axis={self._axis})"
        return (
            f"QuantizedEncoder(dtype={self._dtype.name}, {kind}, "
            f"range=[{self._qmin}, {self._qmax}], channels={self._params.scale.size})"
        )

    def _axis_for(self, ndim: int) -> int | None:
        if self._axis is None:
            return None
        return normalize_axis(self._axis, ndim)

    def _check_channels(self, shape: tuple[int, ...], axis: int | None) -> None:
        if axis is not None and shape[axis] != self._params.scale.size:
            raise RingShapeError(
                f"axis {self._axis} has length {shape[axis]}, the encoder has "
                f"{self._params.scale.size} channels"
            )

    def quantize(self, x: npt.ArrayLike) -> npt.NDArray[np.integer]:
        """The quantized integers ``q`` (dtype ``self.dtype``)."""
        arr = np.asarray(x) if not isinstance(x, np.ndarray) else x
        axis = self._axis_for(arr.ndim)
        self._check_channels(arr.shape, axis)
        return quantize(
            x,
            self._params.scale,
            self._params.zero_point,
            self._dtype,
            quant_min=self._qmin,
            quant_max=self._qmax,
            axis=axis,
        )

    def dequantize(self, q: npt.NDArray[np.integer]) -> F64:
        """``(q - zero_point) * scale``."""
        axis = self._axis_for(np.ndim(q))
        self._check_channels(np.shape(q), axis)
        return dequantize(q, self._params.scale, self._params.zero_point, axis=axis)

    def encode(self, x: npt.ArrayLike) -> U64:
        """Quantize, subtract the zero point and sign-extend into the ring (one fused pass)."""
        arr = as_real_array("x", x).astype(np.float64, copy=False)
        axis = self._axis_for(arr.ndim)
        self._check_channels(arr.shape, axis)
        out = active_kernels().quantize_centered(
            channel_view(arr, axis),
            self._params.scale,
            self._params.zero_point,
            self._qmin,
            self._qmax,
        )
        if out is None:
            raise EncodingError("x contains NaN, which cannot be quantized")
        return np.asarray(out, dtype=np.uint64).reshape(arr.shape)

    def decode(self, r: U64) -> F64:
        """``int64(r) * scale`` (per channel along ``axis``) as float64."""
        ring = require_ring("r", r)
        axis = self._axis_for(ring.ndim)
        self._check_channels(ring.shape, axis)
        values = ring.view(np.int64).astype(np.float64)
        if axis is None:
            values *= self._params.scale[0]
            return values
        shape = [1] * ring.ndim
        shape[axis] = -1
        values *= self._params.scale.reshape(shape)
        return values
