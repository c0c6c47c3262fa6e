"""L4: protocols on shares. Each function takes a session-like context first."""

from __future__ import annotations

from crypten_lite.protocols import beaver, binary, comparison, conversion, truncation
from crypten_lite.protocols.context import ProtocolContext, open_arith, open_binary

__all__ = [
    "ProtocolContext",
    "beaver",
    "binary",
    "comparison",
    "conversion",
    "open_arith",
    "open_binary",
    "truncation",
]
