"""L6: torch-style neural-network layers that run on numpy arrays and on MPCTensors.

``model.encrypt(src=k)`` secret-shares every parameter from party ``k``; the same model code
then runs on private inputs (MPCTensor) or public ones (numpy arrays).
"""

from __future__ import annotations

from crypten_lite.nn import functional, init
from crypten_lite.nn.layers import (
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    GroupNorm,
    LayerNorm,
    Linear,
)
from crypten_lite.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)
from crypten_lite.nn.module import Module, ModuleDict, ModuleList, Sequential
from crypten_lite.nn.onnx_import import (
    GraphModule,
    UnsupportedOperatorError,
    from_onnx,
    supported_ops,
)
from crypten_lite.nn.stateless import (
    GELU,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    ConstantPad1d,
    ConstantPad2d,
    ConstantPad3d,
    Dropout,
    Dropout2d,
    Flatten,
    Hardtanh,
    Identity,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    ReLU6,
    Sigmoid,
    Softmax,
    Tanh,
)
from crypten_lite.nn.torch_import import from_pytorch

__all__ = [
    "GELU",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "Conv1d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Dropout2d",
    "Flatten",
    "GraphModule",
    "GroupNorm",
    "Hardtanh",
    "Identity",
    "L1Loss",
    "LayerNorm",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ModuleDict",
    "ModuleList",
    "NLLLoss",
    "ReLU",
    "ReLU6",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "UnsupportedOperatorError",
    "from_onnx",
    "from_pytorch",
    "functional",
    "init",
    "supported_ops",
]
