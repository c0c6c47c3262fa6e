"""Private inference for edge clients: a model held in shares by the compute parties
answers queries that clients upload as seed-compressed shares; each server returns its share
of the output to the client, and no server sees the input or the output. Not federated
learning: it shares only the edge contract (:mod:`crypten_lite.edge`) with :mod:`crypten_lite.fl`.
"""

from __future__ import annotations

from crypten_lite.inference.service import (
    CONTROL_IDLE,
    CONTROL_QUERY,
    InferenceService,
    query_digest,
)

__all__ = ["CONTROL_IDLE", "CONTROL_QUERY", "InferenceService", "query_digest"]
