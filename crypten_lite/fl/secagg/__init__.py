"""Secure aggregation with a single server (SecAgg / SecAgg+): the round state, the
unmasking and the service (see :mod:`crypten_lite.fl.secagg.service`)."""

from __future__ import annotations

from crypten_lite.fl.secagg.service import (
    SecAggAbortedError,
    SecAggConfig,
    SecAggRoundResult,
    SecAggService,
)
from crypten_lite.fl.secagg.state import SecAggRound
from crypten_lite.fl.secagg.unmask import UnmaskError

__all__ = [
    "SecAggAbortedError",
    "SecAggConfig",
    "SecAggRound",
    "SecAggRoundResult",
    "SecAggService",
    "UnmaskError",
]
