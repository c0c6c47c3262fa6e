"""L4: protocols on shares. Each function takes a session-like context first."""

from __future__ import annotations

from crypten_lite.protocols import (
    approx_circuits,
    approximations,
    beaver,
    binary,
    comparison,
    conversion,
    maxima,
    truncation,
)
from crypten_lite.protocols.context import ProtocolContext, open_arith, open_binary

__all__ = [
    "ProtocolContext",
    "approx_circuits",
    "approximations",
    "beaver",
    "binary",
    "comparison",
    "conversion",
    "maxima",
    "open_arith",
    "open_binary",
    "truncation",
]
