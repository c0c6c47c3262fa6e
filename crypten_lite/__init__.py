"""crypten_lite: secure multi-party computation for machine learning.

The package namespace holds the safe public API only; importing it has no side effects.
"""

from __future__ import annotations

from crypten_lite import autograd, encoding, errors, explain, mpc, named, nn, optim, ring
from crypten_lite.autograd import Parameter, Variable, no_grad
from crypten_lite.checkpoint import load, save
from crypten_lite.config import SessionConfig
from crypten_lite.config_report import show_config
from crypten_lite.session import Session, current_session
from crypten_lite.tensor import MPCTensor, cat, cryptensor, is_encrypted_tensor, stack, where

__all__ = [
    "MPCTensor",
    "Parameter",
    "Session",
    "SessionConfig",
    "Variable",
    "__version__",
    "autograd",
    "cat",
    "cryptensor",
    "current_session",
    "encoding",
    "errors",
    "explain",
    "is_encrypted_tensor",
    "load",
    "mpc",
    "named",
    "nn",
    "no_grad",
    "optim",
    "ring",
    "save",
    "show_config",
    "stack",
    "where",
]

__version__ = "0.1.0"
