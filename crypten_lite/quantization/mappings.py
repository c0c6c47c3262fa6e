"""Default module mappings of the eager flow (``torch.ao.quantization.quantization_mappings``).

* static (``convert``): float / fused type -> int8 type from :mod:`.quantized`, built with
  ``from_float(observed_module)``;
* QAT (``prepare_qat``): float type -> fake-quant training type from :mod:`.qat`;
* dynamic (``quantize_dynamic``): ``Linear`` / ``LinearReLU`` -> :mod:`.dynamic` modules;
* the qconfig propagation list: types that get an output observer in ``prepare``.

The mappings are built on demand (the int8 modules import lazily), so importing this module has
no side effects.
"""

from __future__ import annotations

from typing import Any

from crypten_lite.nn import (
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Identity,
    Linear,
    MaxPool2d,
    Module,
    ReLU,
)
from crypten_lite.quantization import qat
from crypten_lite.quantization.dynamic import DynamicQuantizedLinear, DynamicQuantizedLinearReLU
from crypten_lite.quantization.intrinsic import BNReLU2d, ConvReLU2d, LinearReLU
from crypten_lite.quantization.stubs import DeQuantStub, PassThrough, QuantStub

__all__ = [
    "ModuleMapping",
    "get_default_dynamic_quant_module_mappings",
    "get_default_qat_module_mappings",
    "get_default_qconfig_propagation_list",
    "get_default_static_quant_module_mappings",
    "no_observer_types",
]

ModuleMapping = dict[type[Module], Any]


def get_default_static_quant_module_mappings() -> ModuleMapping:
    """Float (or fused) module type -> int8 module class with ``from_float``."""
    from crypten_lite.quantization import quantized as q

    return {
        QuantStub: q.Quantize,
        DeQuantStub: q.DeQuantize,
        Linear: q.QuantizedLinear,
        LinearReLU: q.QuantizedLinearReLU,
        Conv2d: q.QuantizedConv2d,
        ConvReLU2d: q.QuantizedConvReLU2d,
        ReLU: q.QuantizedReLU,
        MaxPool2d: q.QuantizedMaxPool2d,
        Flatten: q.QuantizedFlatten,
        Identity: PassThrough,
    }


def get_default_qat_module_mappings() -> ModuleMapping:
    """Float module type -> QAT module class (fake-quantized weights, explicit backward)."""
    return {
        Linear: qat.Linear,
        LinearReLU: qat.LinearReLU,
        Conv2d: qat.Conv2d,
        ConvReLU2d: qat.ConvReLU2d,
        ReLU: qat.ReLU,
        MaxPool2d: qat.MaxPool2d,
        Flatten: qat.Flatten,
        Identity: PassThrough,
    }


def get_default_dynamic_quant_module_mappings() -> ModuleMapping:
    """``Linear`` -> :class:`DynamicQuantizedLinear`, ``LinearReLU`` -> its ReLU variant."""
    return {Linear: DynamicQuantizedLinear, LinearReLU: DynamicQuantizedLinearReLU}


def get_default_qconfig_propagation_list() -> set[type[Module]]:
    """Leaf types that get an output observer (``activation_post_process``) in ``prepare``."""
    return {
        QuantStub,
        Linear,
        Conv2d,
        LinearReLU,
        ConvReLU2d,
        BNReLU2d,
        ReLU,
        BatchNorm1d,
        BatchNorm2d,
        qat.Linear,
        qat.LinearReLU,
        qat.Conv2d,
        qat.ConvReLU2d,
        qat.ReLU,
    }


def no_observer_types() -> set[type[Module]]:
    """Types that keep their input's qparams (no observer even when listed elsewhere)."""
    return {DeQuantStub, MaxPool2d, Flatten, Identity, PassThrough, qat.Flatten, qat.MaxPool2d}
