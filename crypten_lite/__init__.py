"""crypten_lite: secure multi-party computation for machine learning.

The package namespace holds the safe public API only; importing it has no side effects.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crypten_lite import autograd, encoding, errors, explain, mpc, named, nn, optim, ring
    from crypten_lite.autograd import Parameter, Variable, no_grad
    from crypten_lite.checkpoint import load, load_from_party, save, save_from_party
    from crypten_lite.config import SessionConfig
    from crypten_lite.config_report import show_config
    from crypten_lite.runtime.testing import run_multiprocess
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

#: where each public name lives; imported on first use (PEP 562), so that a light user
#: (the edge client SDK, ``import crypten_lite.client``) loads none of the MPC layers
_LAZY: dict[str, tuple[str, str | None]] = {
    **{m: (f"crypten_lite.{m}", None) for m in (
        "autograd", "encoding", "errors", "explain", "mpc", "named", "nn", "optim", "ring"
    )},
    **{n: ("crypten_lite.autograd", n) for n in ("Parameter", "Variable", "no_grad")},
    **{n: ("crypten_lite.checkpoint", n) for n in ("load", "load_from_party", "save",
                                                   "save_from_party")},
    "SessionConfig": ("crypten_lite.config", "SessionConfig"),
    "show_config": ("crypten_lite.config_report", "show_config"),
    "run_multiprocess": ("crypten_lite.runtime.testing", "run_multiprocess"),
    **{n: ("crypten_lite.session", n) for n in ("Session", "current_session")},
    **{n: ("crypten_lite.tensor", n) for n in ("MPCTensor", "cat", "cryptensor",
                                               "is_encrypted_tensor", "stack", "where")},
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(target[0])
    value = module if target[1] is None else getattr(module, target[1])
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
