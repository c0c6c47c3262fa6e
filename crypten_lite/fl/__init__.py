"""Secure aggregation for federated learning on the compute parties (issue 9).

Clients share their quantized model updates additively among the servers (seed-compressed:
see :mod:`crypten_lite.edge.messages`); each server runs an :class:`AggregationService`
(an ``AggregationHandler``), the servers agree on the clients that reached all of them, optionally
check a norm bound in MPC, and open only the sum. :func:`fedavg_update` turns the sum into the
next global model.
"""

from __future__ import annotations

from crypten_lite.fl.aggregate import norm_bound_units, norm_check, quant_scale, reveal_sum
from crypten_lite.fl.agreement import Agreement, TooFewClientsError, agree_on_clients, client_hash
from crypten_lite.fl.fedavg import FedAvgStep, fedavg_update, update_length
from crypten_lite.fl.registry import ClosedRound, RoundRegistry, ring_dtype
from crypten_lite.fl.service import AggregationConfig, AggregationService, RoundResult

__all__ = [
    "AggregationConfig",
    "AggregationService",
    "Agreement",
    "ClosedRound",
    "FedAvgStep",
    "RoundRegistry",
    "RoundResult",
    "TooFewClientsError",
    "agree_on_clients",
    "client_hash",
    "fedavg_update",
    "norm_bound_units",
    "norm_check",
    "quant_scale",
    "reveal_sum",
    "ring_dtype",
    "update_length",
]
