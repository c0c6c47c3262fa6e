"""Eval-mode module fusion (``torch.ao.quantization.fuse_modules``), as in PyTorch's eager-mode
quantization workflow (pytorch.org/docs/stable/quantization.html).

Patterns (module types, in order): Conv2d+BatchNorm2d, Conv2d+BatchNorm2d+ReLU, Conv2d+ReLU,
Linear+BatchNorm1d, Linear+ReLU, BatchNorm2d+ReLU. Batch norm is folded into the preceding
weights with torch's ``fuse_conv_bn_weights`` / ``fuse_linear_bn_weights`` formula (float64
here): ``w' = w * gamma / sqrt(var + eps)`` per output channel and
``b' = (b - mean) * gamma / sqrt(var + eps) + beta``. The fused module takes the first name;
the others become ``Identity``. Plaintext only, no communication.

QAT fusion with batch norm (torch's ``fuse_modules_qat`` / ``ConvBn2d``) is not provided.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import QuantizationError
from crypten_lite.nn import BatchNorm1d, BatchNorm2d, Conv2d, Identity, Linear, Module, ReLU
from crypten_lite.quantization.intrinsic import BNReLU2d, ConvReLU2d, LinearReLU

__all__ = [
    "fuse_conv_bn_eval",
    "fuse_conv_bn_weights",
    "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
    "fuse_modules",
    "get_submodule",
    "set_submodule",
]

F64 = npt.NDArray[np.float64]
M = TypeVar("M", bound=Module)


def _bn_scale(bn: Module) -> tuple[F64, F64]:
    """``(gamma / sqrt(var + eps), beta - mean * that)`` of an eval-mode batch norm."""
    var = np.asarray(bn.running_var, dtype=np.float64)
    mean = np.asarray(bn.running_mean, dtype=np.float64)
    gamma = np.ones_like(var) if bn.weight is None else np.asarray(bn.weight, dtype=np.float64)
    beta = np.zeros_like(var) if bn.bias is None else np.asarray(bn.bias, dtype=np.float64)
    scale = gamma / np.sqrt(var + bn.eps)
    return scale, beta - mean * scale


def fuse_conv_bn_weights(conv_w: F64, conv_b: F64 | None, bn: Module) -> tuple[F64, F64]:
    """Folded ``(weight, bias)`` of ``bn(conv(x))`` (weights ``(out, in/g, kh, kw)``)."""
    scale, shift = _bn_scale(bn)
    bias = np.zeros_like(scale) if conv_b is None else np.asarray(conv_b, dtype=np.float64)
    shape = (-1,) + (1,) * (np.ndim(conv_w) - 1)
    return np.asarray(conv_w, dtype=np.float64) * scale.reshape(shape), bias * scale + shift


def fuse_linear_bn_weights(linear_w: F64, linear_b: F64 | None, bn: Module) -> tuple[F64, F64]:
    """Folded ``(weight, bias)`` of ``bn(linear(x))``."""
    return fuse_conv_bn_weights(linear_w, linear_b, bn)


def _check_eval(where: str, *mods: Module) -> None:
    if any(m.training for m in mods):
        raise QuantizationError(
            f"fuse_modules: {where}: batch norm folding needs eval mode; call model.eval() "
            "first (QAT fusion with batch norm is not supported)"
        )
    if any(getattr(m, "encrypted", False) for m in mods):
        raise QuantizationError(f"fuse_modules: {where}: fusion needs a plaintext model")


def _fold(where: str, layer: M, bn: Module) -> M:
    _check_eval(where, layer, bn)
    channels = layer.weight.shape[0]
    if bn.num_features != channels:
        raise QuantizationError(
            f"fuse_modules: {where}: batch norm has {bn.num_features} features, the layer "
            f"has {channels} output channels"
        )
    fused = copy.deepcopy(layer)
    w, b = fuse_conv_bn_weights(layer.weight, layer.bias, bn)
    fused.register_parameter("weight", w)
    fused.register_parameter("bias", b)
    return fused


def fuse_conv_bn_eval(conv: Conv2d, bn: BatchNorm2d) -> Conv2d:
    """A new Conv2d computing ``bn(conv(x))`` with eval-mode statistics."""
    return _fold("Conv2d+BatchNorm2d", conv, bn)


def fuse_linear_bn_eval(linear: Linear, bn: BatchNorm1d) -> Linear:
    """A new Linear computing ``bn(linear(x))`` with eval-mode statistics."""
    return _fold("Linear+BatchNorm1d", linear, bn)


def _fuse(names: Sequence[str], mods: list[Module]) -> Module:
    kinds = tuple(type(m) for m in mods)
    where = "+".join(f"'{n}' ({type(m).__name__})" for n, m in zip(names, mods, strict=True))
    if kinds == (Conv2d, BatchNorm2d):
        return _fold(where, mods[0], mods[1])
    if kinds == (Conv2d, BatchNorm2d, ReLU):
        return ConvReLU2d(_fold(where, mods[0], mods[1]), mods[2])
    if kinds == (Conv2d, ReLU):
        return ConvReLU2d(mods[0], mods[1])
    if kinds == (Linear, BatchNorm1d):
        return _fold(where, mods[0], mods[1])
    if kinds == (Linear, ReLU):
        return LinearReLU(mods[0], mods[1])
    if kinds == (BatchNorm2d, ReLU):
        _check_eval(where, mods[0])
        return BNReLU2d(mods[0], mods[1])
    raise QuantizationError(
        f"fuse_modules: cannot fuse {where}; supported: Conv2d+BatchNorm2d(+ReLU), "
        "Conv2d+ReLU, Linear+BatchNorm1d, Linear+ReLU, BatchNorm2d+ReLU"
    )


def get_submodule(model: Module, path: str) -> Module:
    """The sub-module at dotted ``path`` (``""``: the model), else QuantizationError."""
    mod = model
    for part in path.split(".") if path else []:
        children = dict(mod.named_children())
        if part not in children:
            raise QuantizationError(f"no sub-module named {path!r} in {type(model).__name__}")
        mod = children[part]
    return mod


def set_submodule(model: Module, path: str, new: Module) -> None:
    """Replace the sub-module at dotted ``path`` (keeping its position among siblings)."""
    parent_path, _, name = path.rpartition(".")
    parent = get_submodule(model, parent_path)
    if name not in dict(parent.named_children()):
        raise QuantizationError(f"no sub-module named {path!r} in {type(model).__name__}")
    setattr(parent, name, new)


def fuse_modules(model: M, modules_to_fuse: Sequence[Any], inplace: bool = False) -> M:
    """Fuse each group of dotted module names (``[["0", "1", "2"], ["3", "4"]]``, or one
    group ``["conv", "bn"]``) in an eval-mode model. Returns the fused model (a deep copy
    unless ``inplace``)."""
    if not isinstance(model, Module):
        raise TypeError(f"fuse_modules: model must be a crypten_lite.nn.Module, got {model!r}")
    groups = list(modules_to_fuse)
    if groups and all(isinstance(g, str) for g in groups):
        groups = [groups]
    if not inplace:
        model = copy.deepcopy(model)
    for group in groups:
        if isinstance(group, str) or not all(isinstance(n, str) for n in group) or len(group) < 2:
            raise QuantizationError(
                f"fuse_modules: each group must list two or more module names, got {group!r}"
            )
        mods = [get_submodule(model, name) for name in group]
        fused = _fuse(group, mods)
        set_submodule(model, group[0], fused)
        for name in group[1:]:
            identity = Identity()
            identity.training = mods[0].training
            set_submodule(model, name, identity)
    return model
