"""L6: PyTorch-style quantization (observers, QConfig, prepare -> calibrate -> convert, dynamic
quantization, fake quant / QAT, fusion) in numpy, to encode model weights as int8 before they
are secret-shared. Semantics: ``torch.ao.quantization`` eager mode
(pytorch.org/docs/stable/quantization.html).

Also re-exported: the int8 modules of :mod:`.quantized` (``Quantize`` ... ``QTensor``) that
``convert`` produces, and :func:`.encrypted.encrypt_quantized`, their secret-shared twin.
"""

from __future__ import annotations

from crypten_lite.quantization import qat
from crypten_lite.quantization.dynamic import (
    DynamicQuantizedLinear,
    DynamicQuantizedLinearReLU,
    choose_qparams_dynamic,
)
from crypten_lite.quantization.encrypted import (
    SharedQTensor,
    encrypt_quantized,
    share_quantized,
    simulate,
)
from crypten_lite.quantization.fake_quantize import (
    FakeQuantize,
    default_fake_quant,
    default_per_channel_weight_fake_quant,
    default_weight_fake_quant,
    fake_quantize,
)
from crypten_lite.quantization.fuse import (
    fuse_conv_bn_eval,
    fuse_conv_bn_weights,
    fuse_linear_bn_eval,
    fuse_linear_bn_weights,
    fuse_modules,
)
from crypten_lite.quantization.histogram import HistogramObserver
from crypten_lite.quantization.intrinsic import BNReLU2d, ConvReLU2d, LinearReLU
from crypten_lite.quantization.mappings import (
    get_default_dynamic_quant_module_mappings,
    get_default_qat_module_mappings,
    get_default_qconfig_propagation_list,
    get_default_static_quant_module_mappings,
)
from crypten_lite.quantization.observers import (
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    ObserverBase,
    PerChannelMinMaxObserver,
    PlaceholderObserver,
)
from crypten_lite.quantization.prepare import (
    convert,
    prepare,
    prepare_qat,
    propagate_qconfig_,
    quantize,
    quantize_dynamic,
)
from crypten_lite.quantization.qat import qat_backward, sgd_step
from crypten_lite.quantization.qconfig import (
    QConfig,
    default_dynamic_qconfig,
    default_histogram_observer,
    default_observer,
    default_per_channel_qat_qconfig,
    default_per_channel_qconfig,
    default_per_channel_weight_observer,
    default_qat_qconfig,
    default_qconfig,
    default_weight_observer,
    get_default_qconfig,
    mpc_qconfig,
    per_channel_weight_observer_range_neg_127_to_127,
    weight_observer_range_neg_127_to_127,
)
from crypten_lite.quantization.quantized import (
    DeQuantize,
    QTensor,
    Quantize,
    QuantizedConv2d,
    QuantizedConvReLU2d,
    QuantizedFlatten,
    QuantizedLinear,
    QuantizedLinearReLU,
    QuantizedMaxPool2d,
    QuantizedReLU,
)
from crypten_lite.quantization.stubs import DeQuantStub, PassThrough, QuantStub, QuantWrapper

__all__ = [
    "BNReLU2d",
    "ConvReLU2d",
    "DeQuantStub",
    "DeQuantize",
    "DynamicQuantizedLinear",
    "DynamicQuantizedLinearReLU",
    "FakeQuantize",
    "HistogramObserver",
    "LinearReLU",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "MovingAveragePerChannelMinMaxObserver",
    "ObserverBase",
    "PassThrough",
    "PerChannelMinMaxObserver",
    "PlaceholderObserver",
    "QConfig",
    "QTensor",
    "QuantStub",
    "QuantWrapper",
    "Quantize",
    "QuantizedConv2d",
    "QuantizedConvReLU2d",
    "QuantizedFlatten",
    "QuantizedLinear",
    "QuantizedLinearReLU",
    "QuantizedMaxPool2d",
    "QuantizedReLU",
    "SharedQTensor",
    "choose_qparams_dynamic",
    "convert",
    "default_dynamic_qconfig",
    "default_fake_quant",
    "default_histogram_observer",
    "default_observer",
    "default_per_channel_qat_qconfig",
    "default_per_channel_qconfig",
    "default_per_channel_weight_fake_quant",
    "default_per_channel_weight_observer",
    "default_qat_qconfig",
    "default_qconfig",
    "default_weight_fake_quant",
    "default_weight_observer",
    "encrypt_quantized",
    "fake_quantize",
    "fuse_conv_bn_eval",
    "fuse_conv_bn_weights",
    "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
    "fuse_modules",
    "get_default_dynamic_quant_module_mappings",
    "get_default_qat_module_mappings",
    "get_default_qconfig",
    "get_default_qconfig_propagation_list",
    "get_default_static_quant_module_mappings",
    "mpc_qconfig",
    "per_channel_weight_observer_range_neg_127_to_127",
    "prepare",
    "prepare_qat",
    "propagate_qconfig_",
    "qat",
    "qat_backward",
    "quantize",
    "quantize_dynamic",
    "sgd_step",
    "share_quantized",
    "simulate",
    "weight_observer_range_neg_127_to_127",
]
