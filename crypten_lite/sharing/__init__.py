"""L2: share and reveal values; pseudo-random zero-sharing."""

from __future__ import annotations

from crypten_lite.sharing.share import ARITHMETIC, BINARY, accumulate, combine, reveal, share_from
from crypten_lite.sharing.zero import PairwiseStreams

__all__ = [
    "ARITHMETIC",
    "BINARY",
    "PairwiseStreams",
    "accumulate",
    "combine",
    "reveal",
    "share_from",
]
