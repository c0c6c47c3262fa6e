"""The recorded graph and the backward pass.

An operation on :class:`~crypten_lite.autograd.Variable` inputs computes its value with the
``MPCTensor`` (or numpy) op and, when some input requires a gradient and recording is on,
attaches a :class:`Node`: the inputs that need gradients and a *backward closure* written
next to the forward (it captures exactly what the forward saved: comparison masks, outputs).
There is no registry and no lookup by name: the closure is the rule.

:func:`run_backward` walks the nodes reachable from the root in reverse topological order,
adds up the gradients reaching each node (a value used twice gets the sum), calls each
closure once, and accumulates leaf gradients into ``.grad``. Every party runs the same
program, so every party walks the same nodes in the same order and the protocols inside the
closures line up. Unless ``retain_graph``, each closure is dropped after use (freeing the
forward's saved values); a second backward through it raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from crypten_lite.autograd.mode import is_grad_enabled
from crypten_lite.autograd.values import Value, like, rename_like

if TYPE_CHECKING:
    from crypten_lite.autograd.variable import Variable

__all__ = ["BackwardFn", "Node", "record", "run_backward"]

#: A rule: the gradient of the output -> one gradient (or None) per recorded input.
BackwardFn = Callable[[Value], Sequence[Value | None]]


class Node:
    """One recorded operation: its name (for errors), its differentiable inputs (None where an
    input needs no gradient) and its backward closure (None once freed)."""

    __slots__ = ("backward_fn", "inputs", "name", "sigmoid_of")

    def __init__(
        self, name: str, inputs: tuple[Variable | None, ...], backward_fn: BackwardFn
    ) -> None:
        self.name = name
        self.inputs = inputs
        self.backward_fn: BackwardFn | None = backward_fn
        #: For a sigmoid node, its input: a loss of ``sigmoid(z)`` (BCE) sends its gradient
        #: straight to ``z`` (``p - y``), skipping the sigmoid and its ``1 / p(1-p)``.
        self.sigmoid_of: Variable | None = None

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"


def record(
    value: Value | Variable,
    inputs: Sequence[Variable | None],
    backward_fn: BackwardFn,
    name: str,
) -> Variable:
    """The Variable holding ``value`` (or ``value`` itself when it is a fresh, e.g.
    deferred, Variable); with a node when recording is on and some input requires a gradient
    (inputs that do not are stored as None)."""
    from crypten_lite.autograd.variable import Variable  # the class is built above this module

    out = value if isinstance(value, Variable) else Variable(value)
    needs = tuple(v if v is not None and v.requires_grad else None for v in inputs)
    if is_grad_enabled() and any(v is not None for v in needs):
        out.requires_grad = True
        out.grad_fn = Node(name, needs, backward_fn)
    return out


def _topological(root: Variable) -> list[Variable]:
    """Variables with a node reachable from ``root``, each after every variable it feeds."""
    order: list[Variable] = []
    seen: set[int] = set()
    stack: list[tuple[Variable, bool]] = [(root, False)]
    while stack:
        var, expanded = stack.pop()
        if expanded:
            order.append(var)
            continue
        if id(var) in seen:
            continue
        seen.add(id(var))
        stack.append((var, True))
        if var.grad_fn is not None:
            for parent in var.grad_fn.inputs:
                if parent is not None and id(parent) not in seen:
                    stack.append((parent, False))
    order.reverse()
    return order


def _fresh(grad: Value) -> Value:
    if isinstance(grad, np.ndarray):
        return grad.copy()
    return like(grad, grad.share.copy(), grad.names)


def _accumulate(pending: dict[int, Value], key: int, grad: Value) -> None:
    have = pending.get(key)
    pending[key] = grad if have is None else have + grad


def run_backward(root: Variable, grad: Value | None, retain_graph: bool) -> None:
    """Backpropagate from ``root`` (see module doc). Errors are raised before any protocol
    runs and alike on every party (they depend only on public shapes and the graph)."""
    if not root.requires_grad:
        raise RuntimeError("backward(): the tensor does not require grad and has no grad_fn")
    if grad is None:
        if int(np.prod(root.shape)) != 1:
            raise RuntimeError(
                f"backward(): grad can be implicitly created only for scalar outputs; this "
                f"output has shape {root.shape}: pass a gradient of that shape"
            )
        grad = np.ones(root.shape, dtype=np.float64)
    elif tuple(grad.shape) != root.shape:
        raise ValueError(
            f"backward(): gradient of shape {tuple(grad.shape)} for an output of shape {root.shape}"
        )
    order = _topological(root)
    for var in order:
        if var.grad_fn is not None and var.grad_fn.backward_fn is None:
            raise RuntimeError(
                f"backward(): trying to backward through the graph a second time (the saved "
                f"values of {var.grad_fn.name} were freed); use backward(retain_graph=True) "
                "the first time"
            )
    pending: dict[int, Value] = {id(root): grad}
    for var in order:
        g = pending.pop(id(var), None)
        if g is None:
            continue
        node = var.grad_fn
        if node is None:  # a leaf
            g = rename_like(g, var.names)
            # a fresh object: rules pass gradients through, and two leaves must not share one
            var.grad = _fresh(g) if var.grad is None else var.grad + g
            continue
        fn = node.backward_fn
        if fn is None:  # checked above; kept for the type checker
            raise RuntimeError(f"backward(): the graph of {node.name} was freed")
        grads = fn(g)
        if not retain_graph:
            node.backward_fn = None
        for parent, pg in zip(node.inputs, grads, strict=True):
            if parent is None or pg is None:
                continue
            if tuple(pg.shape) != parent.shape:
                raise RuntimeError(
                    f"{node.name} backward produced a gradient of shape {tuple(pg.shape)} for "
                    f"an input of shape {parent.shape}"
                )
            _accumulate(pending, id(parent), pg)
