"""L6: torch-style neural-network layers that run on numpy arrays and on MPCTensors.

``model.encrypt(src=k)`` secret-shares every parameter from party ``k``; the same model code
then runs on private inputs (MPCTensor) or public ones (numpy arrays).
"""

from __future__ import annotations

from crypten_lite.nn import functional
from crypten_lite.nn.layers import BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, LayerNorm, Linear
from crypten_lite.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)
from crypten_lite.nn.module import Module, Sequential
from crypten_lite.nn.onnx_import import (
    GraphModule,
    UnsupportedOperatorError,
    from_onnx,
    supported_ops,
)
from crypten_lite.nn.stateless import (
    GELU,
    AdaptiveAvgPool2d,
    AvgPool2d,
    Dropout,
    Flatten,
    Identity,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from crypten_lite.nn.torch_import import from_pytorch

__all__ = [
    "GELU",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "GraphModule",
    "Identity",
    "L1Loss",
    "LayerNorm",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "NLLLoss",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "UnsupportedOperatorError",
    "from_onnx",
    "from_pytorch",
    "functional",
    "supported_ops",
]
