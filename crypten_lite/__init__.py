"""crypten_lite: secure multi-party computation for machine learning.

The package namespace holds the safe public API only; importing it has no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crypten_lite import autograd, encoding, errors, explain, mpc, named, nn, optim, ring
from crypten_lite.autograd import Parameter, Variable, no_grad
from crypten_lite.checkpoint import load, load_from_party, save, save_from_party
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
    "load_from_party",
    "mpc",
    "named",
    "nn",
    "no_grad",
    "optim",
    "ring",
    "run_multiprocess",
    "save",
    "save_from_party",
    "show_config",
    "stack",
    "where",
]

__version__ = "0.1.0"

if TYPE_CHECKING:
    from crypten_lite.runtime.testing import run_multiprocess


def __getattr__(name: str) -> Any:
    # run_multiprocess lives in crypten_lite.runtime, which imports the gRPC transport:
    # imported on first use so that ``import crypten_lite`` stays light.
    if name == "run_multiprocess":
        from crypten_lite.runtime.testing import run_multiprocess

        return run_multiprocess
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
