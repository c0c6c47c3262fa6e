"""The parsed ONNX node and the helpers every family of operator handlers shares
(:mod:`crypten_lite.nn.onnx_ops` holds the dispatch table)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crypten_lite.nn import functional as F
from crypten_lite.tensor import MPCTensor

__all__ = [
    "Handler",
    "OnnxNode",
    "UnsupportedOperatorError",
    "float_input",
    "ints",
    "matmul",
    "public",
    "spatial",
    "transpose",
]


class UnsupportedOperatorError(ValueError):
    """An ONNX node whose op (or attribute setting) crypten_lite cannot evaluate."""


@dataclass(frozen=True)
class OnnxNode:
    """One graph node with its attributes already converted to Python/numpy values."""

    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    opset: int = 17

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def fail(self, detail: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(f"ONNX node {self.name!r} ({self.op_type}): {detail}")


Handler = Callable[[OnnxNode, list[Any]], list[Any]]


# -- shared helpers---------------------------------------------------------------------------
def public(node: OnnxNode, value: Any, what: str) -> np.ndarray[Any, Any]:
    if isinstance(value, MPCTensor) or value is None:
        raise node.fail(f"{what} must be a public constant (initializer, Constant or shape)")
    return np.asarray(value)


def ints(node: OnnxNode, value: Any, what: str) -> list[int]:
    return [int(v) for v in public(node, value, what).reshape(-1)]


def matmul(a: Any, b: Any) -> Any:
    if isinstance(a, MPCTensor):
        return a.matmul(b)
    if isinstance(b, MPCTensor):
        return b.rmatmul(a)
    return np.matmul(a, b)


def transpose(x: Any, perm: Sequence[int]) -> Any:
    if isinstance(x, MPCTensor):
        return x.permute(*perm)
    return np.transpose(x, perm)


def float_input(node: OnnxNode, x: Any) -> Any:
    if isinstance(x, MPCTensor):
        return x
    return F.as_input(x, f"ONNX node {node.name!r} ({node.op_type})")


def spatial(node: OnnxNode, dims: int) -> tuple[list[int], list[int], list[int]]:
    """strides, symmetric pads and dilations for a ``dims``-D conv/pool node."""
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID"):
        raise node.fail(f"auto_pad={auto_pad!r} is not supported (use explicit pads)")
    strides = list(node.attr("strides", [1] * dims))
    dilations = list(node.attr("dilations", [1] * dims))
    pads = list(node.attr("pads", [0] * (2 * dims)))
    if pads[:dims] != pads[dims:]:
        raise node.fail(f"asymmetric pads {pads} are not supported")
    return strides, pads[:dims], dilations
