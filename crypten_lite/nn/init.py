"""torch.nn.init: in-place initialisers for PLAINTEXT parameters (numpy float arrays, or
autograd Variables/Parameters holding one), torch's names, arguments and formulas.

Weights are not secret randomness, so each function draws from a numpy ``Generator``
(``rng=``, default ``np.random.default_rng()``). Encrypted tensors are refused: initialise
the plaintext model, then ``encrypt(src=)`` it. Every function returns its argument.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from crypten_lite.autograd import Variable
from crypten_lite.tensor import MPCTensor

__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "sigmoid")


def _array(tensor: Any, where: str) -> np.ndarray[Any, Any]:
    """The float numpy array to write into, or a clear error."""
    value = tensor.data if isinstance(tensor, Variable) else tensor
    if isinstance(value, MPCTensor):
        raise TypeError(
            f"nn.init.{where}: cannot initialise an encrypted tensor in place; initialise the "
            "plaintext parameter, then encrypt(src=) the module"
        )
    if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
        kind = type(value).__name__ if not isinstance(value, np.ndarray) else f"{value.dtype}"
        raise TypeError(f"nn.init.{where}: expected a numpy float array or Parameter, got {kind}")
    return value


def _fill(tensor: Any, values: Any, where: str) -> Any:
    target = _array(tensor, where)
    target[...] = values
    return tensor


def _gen(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch.nn.init.calculate_gain."""
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, int | float):
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a number")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fans(array: np.ndarray[Any, Any], where: str) -> tuple[int, int]:
    if array.ndim < 2:
        raise ValueError(
            f"nn.init.{where}: fan in and fan out need a tensor of at least 2 dims, "
            f"got shape {array.shape}"
        )
    receptive = math.prod(array.shape[2:]) if array.ndim > 2 else 1
    return int(array.shape[1]) * receptive, int(array.shape[0]) * receptive


def uniform_(
    tensor: Any, a: float = 0.0, b: float = 1.0, *, rng: np.random.Generator | None = None
) -> Any:
    """Fill with ``U(a, b)``."""
    if not a <= b:
        raise ValueError(f"nn.init.uniform_: a ({a}) must not exceed b ({b})")
    shape = _array(tensor, "uniform_").shape
    return _fill(tensor, _gen(rng).uniform(a, b, size=shape), "uniform_")


def normal_(
    tensor: Any, mean: float = 0.0, std: float = 1.0, *, rng: np.random.Generator | None = None
) -> Any:
    """Fill with ``N(mean, std^2)``."""
    if std < 0:
        raise ValueError(f"nn.init.normal_: std must be non-negative, got {std}")
    shape = _array(tensor, "normal_").shape
    return _fill(tensor, _gen(rng).normal(mean, std, size=shape), "normal_")


def constant_(tensor: Any, val: float) -> Any:
    """Fill with ``val``."""
    return _fill(tensor, float(val), "constant_")


def zeros_(tensor: Any) -> Any:
    return _fill(tensor, 0.0, "zeros_")


def ones_(tensor: Any) -> Any:
    return _fill(tensor, 1.0, "ones_")


def xavier_uniform_(
    tensor: Any, gain: float = 1.0, *, rng: np.random.Generator | None = None
) -> Any:
    """Glorot uniform: ``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(_array(tensor, "xavier_uniform_"), "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, rng=rng)


def xavier_normal_(
    tensor: Any, gain: float = 1.0, *, rng: np.random.Generator | None = None
) -> Any:
    """Glorot normal: ``N(0, std^2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(_array(tensor, "xavier_normal_"), "xavier_normal_")
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal_(tensor, 0.0, std, rng=rng)


def _kaiming_std(tensor: Any, a: float, mode: str, nonlinearity: str, where: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"nn.init.{where}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(_array(tensor, where), where)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Any,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng: np.random.Generator | None = None,
) -> Any:
    """He uniform: ``U(-b, b)``, ``b = gain * sqrt(3 / fan)`` (torch's default for Linear and
    Conv weights is ``a=sqrt(5)``)."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    return uniform_(tensor, -bound, bound, rng=rng)


def kaiming_normal_(
    tensor: Any,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng: np.random.Generator | None = None,
) -> Any:
    """He normal: ``N(0, std^2)``, ``std = gain / sqrt(fan)``."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_")
    return normal_(tensor, 0.0, std, rng=rng)
