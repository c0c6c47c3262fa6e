"""Gradient rules of arithmetic with broadcasting: add, sub, neg, mul, div, matmul, pow.

Cost of each backward (rounds, 2 parties / 3+ parties with the dealer's truncation):
add, sub, neg: local. mul: one Beaver product per private operand that needs a gradient
(1 round each + truncation), the same as the forward. div by a public value: local + one
truncation. matmul: one Beaver matmul per operand that needs a gradient. A public operand
(numpy array, number, or a Variable that does not require grad) gets no gradient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from crypten_lite.autograd.graph import record
from crypten_lite.autograd.values import Value, as_value, sum_to

if TYPE_CHECKING:
    from crypten_lite.autograd.variable import Variable

__all__ = ["add", "div", "matmul", "mul", "neg", "pow_int", "sub", "unpack"]


def unpack(x: Any, where: str) -> tuple[Value, Variable | None]:
    """The value of an operand and the Variable it came from (None for a constant)."""
    from crypten_lite.autograd.variable import Variable

    if isinstance(x, Variable):
        return x.data, x
    return as_value(x, where), None


def _shape(v: Value) -> tuple[int, ...]:
    return tuple(v.shape)


def add(a: Any, b: Any) -> Variable:
    va, xa = unpack(a, "add")
    vb, xb = unpack(b, "add")
    out = va + vb
    sa, sb = _shape(va), _shape(vb)

    def backward(g: Value) -> tuple[Value | None, Value | None]:
        return sum_to(g, sa), sum_to(g, sb)

    return record(out, (xa, xb), backward, "Add")


def sub(a: Any, b: Any) -> Variable:
    va, xa = unpack(a, "sub")
    vb, xb = unpack(b, "sub")
    out = va - vb
    sa, sb = _shape(va), _shape(vb)

    def backward(g: Value) -> tuple[Value | None, Value | None]:
        return sum_to(g, sa), (sum_to(-g, sb) if xb is not None and xb.requires_grad else None)

    return record(out, (xa, xb), backward, "Sub")


def neg(a: Any) -> Variable:
    va, xa = unpack(a, "neg")

    def backward(g: Value) -> tuple[Value]:
        return (-g,)

    return record(-va, (xa,), backward, "Neg")


def _wants(x: Variable | None) -> bool:
    return x is not None and x.requires_grad


def mul(a: Any, b: Any) -> Variable:
    """``a * b``. Backward: ``g * b`` and ``g * a`` (one product each, for the operands that
    need a gradient)."""
    va, xa = unpack(a, "mul")
    vb, xb = unpack(b, "mul")
    out = va * vb
    sa, sb = _shape(va), _shape(vb)

    def backward(g: Value) -> tuple[Value | None, Value | None]:
        ga = sum_to(g * vb, sa) if _wants(xa) else None
        gb = sum_to(g * va, sb) if _wants(xb) else None
        return ga, gb

    return record(out, (xa, xb), backward, "Mul")


def div(a: Any, b: Any) -> Variable:
    """``a / b``: by a public ``b`` one truncation each way; by a private ``b``,
    ``a * reciprocal(b)`` (the reciprocal's rule applies)."""
    from crypten_lite.autograd import ops_unary

    vb, xb = unpack(b, "div")
    if _wants(xb) or not isinstance(vb, np.ndarray):
        return mul(a, ops_unary.reciprocal(b if xb is not None else vb))
    va, xa = unpack(a, "div")
    if np.any(vb == 0):
        raise ZeroDivisionError("division by zero")
    inverse = 1.0 / vb
    sa = _shape(va)

    def backward(g: Value) -> tuple[Value | None, None]:
        return sum_to(g * inverse, sa), None

    return record(va * inverse, (xa, None), backward, "Div")


def _swap_last(v: Value) -> Value:
    if v.ndim < 2:
        return v
    if isinstance(v, np.ndarray):
        return np.swapaxes(v, -1, -2)
    return v.transpose(-1, -2)


def matmul(a: Any, b: Any) -> Variable:
    """numpy/torch matmul semantics (1-D operands promoted and the added dim removed, batch
    dims broadcast). Backward: ``g @ b^T`` and ``a^T @ g`` (one Beaver matmul each)."""
    va, xa = unpack(a, "matmul")
    vb, xb = unpack(b, "matmul")
    out = va @ vb
    sa, sb = _shape(va), _shape(vb)

    a2 = va.reshape(1, -1) if len(sa) == 1 else va  # 1-D operands promoted as matmul does
    b2 = vb.reshape(-1, 1) if len(sb) == 1 else vb
    batch = tuple(np.broadcast_shapes(_shape(a2)[:-2], _shape(b2)[:-2]))
    out2 = (*batch, _shape(a2)[-2], _shape(b2)[-1])

    def backward(g: Value) -> tuple[Value | None, Value | None]:
        g2 = g.reshape(out2)
        ga = sum_to(g2 @ _swap_last(b2), _shape(a2)).reshape(sa) if _wants(xa) else None
        gb = sum_to(_swap_last(a2) @ g2, _shape(b2)).reshape(sb) if _wants(xb) else None
        return ga, gb

    return record(out, (xa, xb), backward, "Matmul")


def pow_int(a: Any, exponent: int) -> Variable:
    """``a ** n`` for an integer ``n >= 1`` by products (backward ``n a^(n-1) g``)."""
    if isinstance(exponent, bool) or not isinstance(exponent, int) or exponent < 1:
        raise ValueError(f"pow: only integer exponents >= 1 are differentiable, got {exponent!r}")
    from crypten_lite.autograd.variable import Variable

    result: Variable | None = None
    base = a if isinstance(a, Variable) else Variable(as_value(a, "pow"))
    for _ in range(exponent):
        result = base if result is None else mul(result, base)
    if result is None:  # exponent >= 1 was checked
        raise ValueError("pow: exponent must be >= 1")
    return result
