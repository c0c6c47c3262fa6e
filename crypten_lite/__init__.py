"""crypten_lite: secure multi-party computation for machine learning.

The package namespace holds the safe public API only; importing it has no side effects.
"""

from __future__ import annotations

from crypten_lite import encoding, errors, mpc, named, nn, ring
from crypten_lite.config import SessionConfig
from crypten_lite.config_report import show_config
from crypten_lite.session import Session, current_session
from crypten_lite.tensor import MPCTensor, cat, cryptensor, stack

__all__ = [
    "MPCTensor",
    "Session",
    "SessionConfig",
    "__version__",
    "cat",
    "cryptensor",
    "current_session",
    "encoding",
    "errors",
    "mpc",
    "named",
    "nn",
    "ring",
    "show_config",
    "stack",
]

__version__ = "0.1.0"
