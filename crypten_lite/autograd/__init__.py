"""Autograd over secret-shared and public tensors: ``Variable``/``Parameter``, ``backward``,
``no_grad``. A layer above ``tensor``: MPCTensor stays a plain secret-shared tensor, and each
gradient rule is a closure written next to its forward in ``ops_*`` (see ``graph``)."""

from __future__ import annotations

from crypten_lite.autograd.graph import Node
from crypten_lite.autograd.mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from crypten_lite.autograd.ops_shape import cat, stack
from crypten_lite.autograd.variable import Parameter, Variable

__all__ = [
    "Node",
    "Parameter",
    "Variable",
    "cat",
    "enable_grad",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
    "stack",
]
