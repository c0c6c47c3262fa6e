"""L1: encoding of reals into the ring Z_2^64 — fixed point and int8 affine quantization.

Both encoders implement :class:`Encoder` (``encode`` -> uint64 ring elements, ``decode`` ->
float64, ``scale``). The quantization maths (ranges, qparams, quantize/dequantize, int8 GEMM
with requantization) follows PyTorch eager mode. Kernels run on the compiled twin unless
``CRYPTEN_LITE_PURE=1`` (see :mod:`.backend`).
"""

from __future__ import annotations

from crypten_lite.encoding.backend import active_kernels, compiled_available
from crypten_lite.encoding.base import Encoder
from crypten_lite.encoding.fixed_multiplier import (
    quantize_multiplier,
    requantize_fixed_point,
)
from crypten_lite.encoding.fixed_point import FixedPointEncoder
from crypten_lite.encoding.gemm import int8_gemm, quantized_linear, requantize
from crypten_lite.encoding.qparams import (
    FLOAT32_EPS,
    PER_CHANNEL_AFFINE,
    PER_CHANNEL_SYMMETRIC,
    PER_TENSOR_AFFINE,
    PER_TENSOR_SYMMETRIC,
    QSCHEMES,
    QScheme,
    calculate_qparams,
    qmin_qmax,
)
from crypten_lite.encoding.quantize import dequantize, quantize
from crypten_lite.encoding.quantized_encoder import QuantizedEncoder

__all__ = [
    "FLOAT32_EPS",
    "PER_CHANNEL_AFFINE",
    "PER_CHANNEL_SYMMETRIC",
    "PER_TENSOR_AFFINE",
    "PER_TENSOR_SYMMETRIC",
    "QSCHEMES",
    "Encoder",
    "FixedPointEncoder",
    "QScheme",
    "QuantizedEncoder",
    "active_kernels",
    "calculate_qparams",
    "compiled_available",
    "dequantize",
    "int8_gemm",
    "qmin_qmax",
    "quantize",
    "quantize_multiplier",
    "quantized_linear",
    "requantize",
    "requantize_fixed_point",
]
