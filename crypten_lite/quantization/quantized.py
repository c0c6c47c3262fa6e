"""Plaintext int8 modules (PyTorch eager ``torch.ao.nn.quantized`` semantics) and ``QTensor``.

``convert`` (``crypten_lite.quantization``) swaps calibrated float modules for these by calling
``Cls.from_float(mod)`` with torch's contract: ``mod`` carries ``mod.qconfig`` and, when it had
one, a calibrated ``mod.activation_post_process``. Weights are quantized with a fresh
``mod.qconfig.weight()`` observer; the output (scale, zero point) is read off the activation
observer.

Kernels (PyTorch's quantized Linear/Conv2d with the x86/fbgemm reference kernels): with ``x``
and ``w`` quantized,

1. ``acc[c] = sum_k (x_q - z_x)(w_q[c] - z_w[c])`` exactly in integers;
2. ``real = acc * s_x * s_w[c] + bias[c]`` (bias stays float);
3. ``y_q = clamp(rint(real / s_y) + z_y, z_y if ReLU-fused else qmin, qmax)``.

Steps 2-3 are float64 (PyTorch: float32), so a result may differ from torch's by one step
where ``real / s_y`` lies within float32 rounding of a half-integer. Activations between
modules are :class:`QTensor` values; a float array given to a quantized layer or a module
converted before calibration raise :class:`~crypten_lite.errors.QuantizationError` naming the
module. As in torch, ``qmin``/``qmax`` are the dtype's bounds (the observer's range only shapes
the qparams). These modules run on
plaintext only; :func:`crypten_lite.quantization.encrypted.encrypt_quantized` builds the
secret-shared twin (``Module.encrypt`` is refused at the first forward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from crypten_lite.encoding import dequantize, int8_gemm, quantize, quantized_linear, requantize
from crypten_lite.encoding.qparams import normalize_qdtype
from crypten_lite.errors import QuantizationError
from crypten_lite.nn import Module
from crypten_lite.nn import functional as F
from crypten_lite.quantization.intrinsic import float_layer, qconfig_of
from crypten_lite.tensor import MPCTensor
from crypten_lite.tensor.shape import int_tuple

__all__ = [
    "DeQuantize",
    "QTensor",
    "Quantize",
    "QuantizedConv2d",
    "QuantizedConvReLU2d",
    "QuantizedFlatten",
    "QuantizedLinear",
    "QuantizedLinearReLU",
    "QuantizedMaxPool2d",
    "QuantizedReLU",
    "observer_qparams",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
QArray = npt.NDArray[np.integer]


@dataclass(frozen=True)
class QTensor:
    """A per-tensor affine quantized tensor: ``int_repr`` (uint8/int8/int32), public ``scale``,
    ``zero_point``. ``dequantize()`` gives ``(int_repr - zero_point) * scale``."""

    int_repr: QArray
    scale: float
    zero_point: int

    def __post_init__(self) -> None:
        if not isinstance(self.int_repr, np.ndarray) or self.int_repr.dtype not in (
            np.uint8,
            np.int8,
            np.int32,
        ):
            raise TypeError("QTensor.int_repr must be a numpy uint8, int8 or int32 array")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise QuantizationError("QTensor.scale must be finite and > 0")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.int_repr.shape)

    @property
    def dtype(self) -> np.dtype[np.integer]:
        return self.int_repr.dtype

    def dequantize(self) -> F64:
        return dequantize(self.int_repr, self.scale, self.zero_point)

    def with_repr(self, int_repr: QArray) -> QTensor:
        """Same qparams, new integer values (shape ops, pooling, ReLU)."""
        return QTensor(int_repr.astype(self.int_repr.dtype), self.scale, self.zero_point)

    def __repr__(self) -> str:
        return (
            f"QTensor(shape={self.shape}, dtype={self.dtype.name}, scale={self.scale:.6g}, "
            f"zero_point={self.zero_point})"
        )


def _where(mod: Any) -> str:
    obs = getattr(mod, "activation_post_process", None)
    if obs is not None and hasattr(obs, "where"):
        return str(obs.where())
    return f"module {type(mod).__name__}"


def observer_qparams(obs: Any, what: str) -> tuple[F64, I64]:
    """``obs.calculate_qparams()`` after checking the observer saw data (else
    QuantizationError naming ``what``)."""
    if obs is None:
        raise QuantizationError(f"{what}: no activation observer; run prepare() before convert()")
    if not getattr(obs, "has_observed", True):
        where = obs.where() if hasattr(obs, "where") else type(obs).__name__
        raise QuantizationError(
            f"{what}: {where} has not observed any data; calibrate the prepared model on "
            "representative inputs before convert()"
        )
    scale, zp = obs.calculate_qparams()
    return np.asarray(scale, dtype=np.float64), np.asarray(zp, dtype=np.int64)


def _out_qparams(mod: Any, cls: str) -> tuple[float, int, np.dtype[np.integer], None, None]:
    """Output (scale, zero point, dtype) from the calibrated observer. As in torch, the
    observer's quant_min/quant_max only shape the qparams: kernels saturate at the dtype."""
    obs = getattr(mod, "activation_post_process", None)
    scale, zp = observer_qparams(obs, f"{cls}.from_float({_where(mod)})")
    if scale.ndim != 0:
        raise QuantizationError(f"{cls}.from_float: activation qparams must be per tensor")
    dtype = normalize_qdtype(getattr(obs, "dtype", "quint8"))
    return float(scale), int(zp), dtype, None, None


def _pair(value: Any, name: str) -> tuple[int, int]:
    a, b = int_tuple(value, 2, name)
    return a, b


class _QModule(Module):
    """Shared checks: plaintext QTensor input, refused after ``Module.encrypt``."""

    def _qinput(self, x: Any) -> QTensor:
        if self.encrypted:
            raise QuantizationError(
                f"{self.describe()}: Module.encrypt() cannot encrypt an int8 model; use "
                "crypten_lite.quantization.encrypted.encrypt_quantized(model, src)"
            )
        if isinstance(x, QTensor):
            return x
        if isinstance(x, MPCTensor):
            raise QuantizationError(
                f"{self.describe()}: got an MPCTensor; encrypt the model with encrypt_quantized"
            )
        raise QuantizationError(
            f"{self.describe()}: expected a QTensor, got {type(x).__name__}; put a Quantize "
            "(QuantStub) before the first quantized layer"
        )


class Quantize(_QModule):
    """Float -> QTensor with fixed public qparams (from a calibrated ``QuantStub``)."""

    def __init__(
        self,
        scale: float,
        zero_point: int,
        dtype: Any = "quint8",
        quant_min: int | None = None,
        quant_max: int | None = None,
    ) -> None:
        super().__init__()
        self.scale = float(scale)
        self.zero_point = int(zero_point)
        self.dtype = normalize_qdtype(dtype)
        info = np.iinfo(self.dtype)
        self.quant_min = int(info.min) if quant_min is None else int(quant_min)
        self.quant_max = int(info.max) if quant_max is None else int(quant_max)
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise QuantizationError("Quantize: scale must be finite and > 0")

    @classmethod
    def from_float(cls, mod: Any) -> Quantize:
        scale, zp, dtype, lo, hi = _out_qparams(mod, cls.__name__)
        return cls(scale, zp, dtype, lo, hi)

    def extra_repr(self) -> str:
        return f"scale={self.scale:.6g}, zero_point={self.zero_point}, dtype={self.dtype.name}"

    def quantize(self, x: Any) -> QTensor:
        """Quantize a plaintext float array with this module's public qparams."""
        if isinstance(x, MPCTensor):
            raise QuantizationError(f"{self.describe()}: cannot quantize an MPCTensor here")
        if isinstance(x, QTensor):
            raise QuantizationError(f"{self.describe()}: input is already quantized")
        arr = np.asarray(F.as_input(np.asarray(x, dtype=np.float64), self.describe()))
        q = quantize(
            arr,
            self.scale,
            self.zero_point,
            self.dtype,
            quant_min=self.quant_min,
            quant_max=self.quant_max,
        )
        return QTensor(q, self.scale, self.zero_point)

    def forward(self, *args: Any) -> Any:
        if self.encrypted:
            self._qinput(None)
        return self.quantize(args[0])


class DeQuantize(_QModule):
    """QTensor -> float64 ``(q - z) * s``."""

    @classmethod
    def from_float(cls, mod: Any) -> DeQuantize:
        return cls()

    def forward(self, *args: Any) -> Any:
        return self._qinput(args[0]).dequantize()


def _weight_qparams(mod: Any, weight: F64, cls: str) -> tuple[QArray, F64, I64, int | None]:
    """Quantize ``weight`` with a fresh ``mod.qconfig.weight()`` observer (torch's contract)."""
    wobs = qconfig_of(mod, cls).weight()
    wobs(weight)
    scale, zp = observer_qparams(wobs, f"{cls}.from_float weight")
    axis = getattr(wobs, "ch_axis", None) if scale.ndim == 1 else None
    if axis not in (None, 0):
        raise QuantizationError(f"{cls}.from_float: per-channel weights need ch_axis 0")
    w_q = quantize(weight, scale, zp, wobs.dtype, axis=axis)  # dtype range, as torch
    channels = weight.shape[0]
    return (
        w_q,
        np.broadcast_to(scale.reshape(-1), (channels,)).copy(),
        np.broadcast_to(zp.reshape(-1), (channels,)).copy(),
        axis,
    )


class _QWeighted(_QModule):
    """Common state of quantized Linear / Conv2d: int8 weight ``(C, ...)`` with per-channel
    (or broadcast per-tensor) ``w_scale``/``w_zero_point``, float ``bias``, output qparams."""

    relu_fused = False
    #: how a per-channel vector broadcasts against the accumulator (channels first)
    axis_shape: tuple[int, ...] = (-1,)

    def __init__(
        self,
        weight_q: QArray,
        w_scale: npt.ArrayLike,
        w_zero_point: npt.ArrayLike,
        bias: npt.ArrayLike | None,
        scale: float,
        zero_point: int,
        dtype: Any = "quint8",
        quant_min: int | None = None,
        quant_max: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(weight_q, np.ndarray) or weight_q.dtype not in (np.int8, np.uint8):
            raise TypeError(f"{type(self).__name__}: weight_q must be an int8 or uint8 array")
        channels = weight_q.shape[0]
        self.weight_q = weight_q
        self.w_scale = np.broadcast_to(np.asarray(w_scale, np.float64).reshape(-1), (channels,))
        self.w_zero_point = np.broadcast_to(
            np.asarray(w_zero_point, np.int64).reshape(-1), (channels,)
        )
        #: ``w_q - z_w`` per channel, computed once (the accumulators and the encrypted twin)
        self.weight_centered = weight_q.astype(np.int64) - self.w_zero_point.reshape(
            (-1,) + (1,) * (weight_q.ndim - 1)
        )
        self.bias = None if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
        self.scale = float(scale)
        self.zero_point = int(zero_point)
        self.dtype = normalize_qdtype(dtype)
        info = np.iinfo(self.dtype)
        self.quant_min = int(info.min) if quant_min is None else int(quant_min)
        self.quant_max = int(info.max) if quant_max is None else int(quant_max)

    @classmethod
    def _from_float_args(cls, mod: Any) -> tuple[Any, dict[str, Any]]:
        """The float layer (``mod`` or its fused ``.linear``/``.conv``) and constructor args."""
        inner = float_layer(mod)
        weight = np.asarray(inner.weight, dtype=np.float64)
        w_q, s_w, z_w, _ = _weight_qparams(mod, weight, cls.__name__)
        scale, zp, dtype, lo, hi = _out_qparams(mod, cls.__name__)
        bias = getattr(inner, "bias", None)
        kwargs = {
            "weight_q": w_q,
            "w_scale": s_w,
            "w_zero_point": z_w,
            "bias": None if bias is None else np.asarray(bias, dtype=np.float64),
            "scale": scale,
            "zero_point": zp,
            "dtype": dtype,
            "quant_min": lo,
            "quant_max": hi,
        }
        return inner, kwargs

    def weight_dequantized(self) -> F64:
        return dequantize(self.weight_q, self.w_scale, self.w_zero_point, axis=0)

    def _out(self, int_repr: QArray) -> QTensor:
        return QTensor(int_repr, self.scale, self.zero_point)


class QuantizedLinear(_QWeighted):
    """torch.ao.nn.quantized.Linear: ``weight_q`` is ``(out_features, in_features)``."""

    @property
    def in_features(self) -> int:
        return int(self.weight_q.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight_q.shape[0])

    @classmethod
    def from_float(cls, mod: Any) -> QuantizedLinear:
        _, kwargs = cls._from_float_args(mod)
        return cls(**kwargs)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"scale={self.scale:.6g}, zero_point={self.zero_point}"
        )

    def accumulate(self, x: QTensor) -> I64:
        """``(x_q - z_x) @ (w_q - z_w)^T`` exactly (``encoding.int8_gemm``)."""
        acc = int8_gemm(x.int_repr, self.weight_q, x.zero_point, self.w_zero_point)
        return acc.astype(np.int64)

    def forward(self, *args: Any) -> Any:
        x = self._qinput(args[0])
        if x.int_repr.ndim < 1 or x.shape[-1] != self.in_features:
            raise QuantizationError(
                f"{self.describe()}: expected last dim {self.in_features}, got shape {x.shape}"
            )
        out = quantized_linear(
            x.int_repr,
            self.weight_q,
            self.bias,
            x_scale=x.scale,
            x_zero_point=x.zero_point,
            w_scale=self.w_scale,
            w_zero_point=self.w_zero_point,
            out_scale=self.scale,
            out_zero_point=self.zero_point,
            out_dtype=self.dtype,
            relu=self.relu_fused,
            quant_min=self.quant_min,
            quant_max=self.quant_max,
        )
        return self._out(out)


class QuantizedLinearReLU(QuantizedLinear):
    """torch.ao.nn.intrinsic.quantized.LinearReLU: output clamped below at ``zero_point``."""

    relu_fused = True


class QuantizedConv2d(_QWeighted):
    """torch.ao.nn.quantized.Conv2d (zero padding means ``q = z_x``, as in torch)."""

    axis_shape = (-1, 1, 1)

    def __init__(
        self,
        *args: Any,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        **kwargs: Any,
    ) -> None:
        """``QuantizedLinear``'s arguments (``weight_q`` is ``(O, I/groups, kH, kW)``) plus the
        convolution geometry."""
        super().__init__(*args, **kwargs)
        weight_q = self.weight_q
        if weight_q.ndim != 4:
            raise QuantizationError(f"{type(self).__name__}: weight_q must be (O, I/g, kH, kW)")
        self.out_channels = weight_q.shape[0]
        self.in_channels = weight_q.shape[1] * groups
        self.kernel_size = (int(weight_q.shape[2]), int(weight_q.shape[3]))
        self.stride, self.padding = _pair(stride, "stride"), _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        self.groups = int(groups)
        self._weight_f64 = self.weight_centered.astype(np.float64)  # exact: |w - z| < 2^9

    @classmethod
    def from_float(cls, mod: Any) -> QuantizedConv2d:
        inner, kwargs = cls._from_float_args(mod)
        return cls(
            **kwargs,
            stride=inner.stride,
            padding=inner.padding,
            dilation=inner.dilation,
            groups=inner.groups,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, scale={self.scale:.6g}, "
            f"zero_point={self.zero_point}"
        )

    def accumulate(self, x: QTensor) -> I64:
        """``conv(x_q - z_x, w_q - z_w)`` exactly (float64 GEMM of integers below 2^53)."""
        xc = x.int_repr.astype(np.float64) - float(x.zero_point)
        acc = F.conv2d(
            xc, self._weight_f64, None, self.stride, self.padding, self.dilation, self.groups
        )
        return np.asarray(acc).astype(np.int64)

    def forward(self, *args: Any) -> Any:
        x = self._qinput(args[0])
        if x.int_repr.ndim != 4 or x.shape[1] != self.in_channels:
            raise QuantizationError(
                f"{self.describe()}: expected (N, {self.in_channels}, H, W), got {x.shape}"
            )
        out = requantize(
            self.accumulate(x),
            x.scale,
            self.w_scale,
            self.scale,
            self.zero_point,
            self.dtype,
            bias=self.bias,
            relu=self.relu_fused,
            quant_min=self.quant_min,
            quant_max=self.quant_max,
            axis=1,
        )
        return self._out(out)


class QuantizedConvReLU2d(QuantizedConv2d):
    """torch.ao.nn.intrinsic.quantized.ConvReLU2d."""

    relu_fused = True


class QuantizedReLU(_QModule):
    """ReLU on a QTensor: ``max(q, z)``, qparams unchanged (torch's relu on quantized input)."""

    @classmethod
    def from_float(cls, mod: Any) -> QuantizedReLU:
        return cls()

    def forward(self, *args: Any) -> Any:
        x = self._qinput(args[0])
        return x.with_repr(np.maximum(x.int_repr, x.int_repr.dtype.type(x.zero_point)))


class QuantizedMaxPool2d(_QModule):
    """Max pooling on the integer values (monotone in the real value); qparams unchanged."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")

    @classmethod
    def from_float(cls, mod: Any) -> QuantizedMaxPool2d:
        return cls(mod.kernel_size, mod.stride, mod.padding, mod.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, *args: Any) -> Any:
        x = self._qinput(args[0])
        if x.int_repr.ndim not in (3, 4):
            raise QuantizationError(f"{self.describe()}: expected (N, C, H, W), got {x.shape}")
        pooled = F.max_pool2d(
            x.int_repr.astype(np.float64),
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
        )
        return x.with_repr(np.asarray(pooled).astype(np.int64))


class QuantizedFlatten(_QModule):
    """Flatten on a QTensor (integer values and qparams unchanged)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    @classmethod
    def from_float(cls, mod: Any) -> QuantizedFlatten:
        return cls(mod.start_dim, mod.end_dim)

    def forward(self, *args: Any) -> Any:
        x = self._qinput(args[0])
        # F.flatten of an array is a reshape of any dtype: no float round trip, no copy
        flat = F.flatten(x.int_repr, self.start_dim, self.end_dim)  # type: ignore[arg-type]
        return x.with_repr(np.asarray(flat))
