"""Dynamic quantization of ``Linear`` (``torch.ao.nn.quantized.dynamic.Linear``), §1.5.

Weights are quantized once (``qconfig.weight()``: per-tensor symmetric qint8 by default, or
per-channel); activations are quantized on every call from *that batch's* min/max to quint8
with fbgemm's ``ChooseQuantizationParams`` (range contains 0; scale ``(max - min) / (qmax -
qmin)``, floored at 6.1e-5; zero point nudged from the side with the smaller error). The int8
GEMM accumulates exactly (:func:`crypten_lite.encoding.int8_gemm`) and the output is float:
``acc * s_x * s_w[c] + bias``. float64 here, float32 in fbgemm: outputs agree to ~1e-6
relative, and the quantized input can differ by one step on exact near-ties.

Plaintext only: on secret shares the batch min/max would need comparison-heavy MPC and would
reveal data-dependent scales; use static quantization (``prepare``/``convert``) for MPC.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from crypten_lite.encoding import int8_gemm, quantize
from crypten_lite.errors import QuantizationError
from crypten_lite.nn import Linear, Module
from crypten_lite.quantization.intrinsic import float_layer, qconfig_of
from crypten_lite.tensor import MPCTensor

__all__ = ["DynamicQuantizedLinear", "DynamicQuantizedLinearReLU", "choose_qparams_dynamic"]

F64 = npt.NDArray[np.float64]
_SMALL_SCALE = float(np.float32(6.1e-5))


def choose_qparams_dynamic(x_min: float, x_max: float, qmin: int, qmax: int) -> tuple[float, int]:
    """fbgemm / ATen ``ChooseQuantizationParams`` (no sparsity preservation): float32 scale
    (as a float) and int zero point for the range ``[x_min, x_max]``."""
    lo = min(float(np.float32(x_min)), 0.0)
    hi = max(float(np.float32(x_max)), 0.0)
    scale = (hi - lo) / (qmax - qmin)
    if float(np.float32(scale)) == 0.0 or np.isinf(np.float32(1.0) / np.float32(scale)):
        scale = 0.1
    if scale < _SMALL_SCALE:
        org = scale
        scale = _SMALL_SCALE
        if lo == 0.0:
            hi = _SMALL_SCALE * (qmax - qmin)
        elif hi == 0.0:
            lo = -_SMALL_SCALE * (qmax - qmin)
        else:
            amp = float(np.float32(_SMALL_SCALE / org))
            lo, hi = lo * amp, hi * amp
    scale = float(np.float32(scale))
    zp_min, zp_max = qmin - lo / scale, qmax - hi / scale
    err_min, err_max = abs(qmin) - abs(lo / scale), abs(qmax) - abs(hi / scale)
    initial = zp_min if err_min < err_max else zp_max
    zero_point = qmin if initial < qmin else qmax if initial > qmax else int(np.rint(initial))
    return scale, zero_point


class DynamicQuantizedLinear(Module):
    """int8-weight Linear with per-call activation quantization; float in, float out.

    Build with :meth:`from_float` (or :func:`~.prepare.quantize_dynamic`). ``reduce_range``:
    quantize activations to 0..127 (torch's x86/fbgemm engines) instead of 0..255.
    """

    _relu = False

    def __init__(
        self,
        weight_q: npt.NDArray[np.int8],
        weight_scale: npt.ArrayLike,
        weight_zero_point: npt.ArrayLike,
        bias: F64 | None,
        weight_axis: int | None = None,
        reduce_range: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(weight_q, np.ndarray) or weight_q.dtype != np.int8 or weight_q.ndim != 2:
            raise QuantizationError(f"{type(self).__name__}: weight_q must be a 2-D int8 array")
        self.out_features, self.in_features = weight_q.shape
        self.weight_q = weight_q
        self.weight_scale = np.asarray(weight_scale, dtype=np.float64)
        self.weight_zero_point = np.asarray(weight_zero_point, dtype=np.int64)
        self.weight_axis = weight_axis
        self.bias = None if bias is None else np.asarray(bias, dtype=np.float64)
        self.reduce_range = bool(reduce_range)

    def extra_repr(self) -> str:
        scheme = "per_channel" if self.weight_axis is not None else "per_tensor"
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"weight={scheme}, reduce_range={self.reduce_range}"
        )

    @classmethod
    def from_float(cls, mod: Module, reduce_range: bool = False) -> DynamicQuantizedLinear:
        """Quantize ``mod``'s weight with a fresh ``mod.qconfig.weight()`` observer."""
        linear = float_layer(mod)
        if not isinstance(linear, Linear):
            raise QuantizationError(
                f"{cls.__name__}.from_float: expected Linear or LinearReLU, got {mod.describe()}"
            )
        obs = qconfig_of(mod, cls.__name__).weight()
        if obs.dtype != np.int8:
            raise QuantizationError(
                f"{cls.__name__}.from_float: weight observer dtype must be qint8, got "
                f"{obs.dtype.name}"
            )
        weight = np.asarray(linear.weight, dtype=np.float64)
        obs(weight)
        scale, zp = obs.calculate_qparams()
        axis = obs.ch_axis
        w_q = quantize(weight, scale, zp, np.int8, axis=axis)
        bias = None if linear.bias is None else np.asarray(linear.bias, dtype=np.float64)
        return cls(w_q.astype(np.int8, copy=False), scale, zp, bias, axis, reduce_range)

    def forward(self, *args: Any) -> Any:
        x = args[0]
        where = f"{type(self).__name__}({self.extra_repr()})"
        if isinstance(x, MPCTensor):
            raise QuantizationError(
                f"{where}: dynamic quantization needs the batch min/max in the clear; use "
                "static quantization (prepare/convert) for encrypted inputs"
            )
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim < 1 or arr.shape[-1] != self.in_features:
            raise ValueError(f"{where}: expected input with last dim {self.in_features}")
        if arr.size == 0 or not np.isfinite(arr).all():
            raise QuantizationError(f"{where}: input must be non-empty and finite")
        qmax = 127 if self.reduce_range else 255
        s_x, z_x = choose_qparams_dynamic(float(arr.min()), float(arr.max()), 0, qmax)
        x_q = quantize(arr, s_x, z_x, np.uint8, quant_min=0, quant_max=qmax)
        w_zp = self.weight_zero_point.reshape(-1)
        acc = int8_gemm(x_q, self.weight_q, z_x, w_zp).astype(np.float64)
        out = acc * (s_x * np.broadcast_to(self.weight_scale, (self.out_features,)))
        if self.bias is not None:
            out = out + self.bias
        return np.maximum(out, 0.0) if self._relu else out


class DynamicQuantizedLinearReLU(DynamicQuantizedLinear):
    """Dynamic int8 ``relu(linear(x))`` (from a fused ``LinearReLU``)."""

    _relu = True
