"""Server-side FedAvg on the revealed aggregate.

Client weights travel **inside the shared vector**, so a client's data size stays private
and only the total weight is revealed: a client uploads ``[w·Δ, w]`` (its model delta times
its weight, then the weight itself) with ``w = n_examples / weight_cap`` in ``(0, 1]``
(``weight_cap`` is public, e.g. an upper bound on a client's data set size) so that the
weight and the weighted delta fit the quantization clip. The revealed aggregate is
``[Σ w_k Δ_k, Σ w_k]`` and the update is ``model + server_lr · Σ w_k Δ_k / Σ w_k``. With
``weighted=False`` the vector is the delta alone and clients count equally (mean over the
agreed clients). The client side of the format is
:func:`crypten_lite.client.pack_weighted_update`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["FedAvgStep", "fedavg_update", "update_length"]

F64 = npt.NDArray[np.float64]


def update_length(num_params: int, weighted: bool) -> int:
    """Length of the shared vector for a model of ``num_params`` parameters."""
    if isinstance(num_params, bool) or not isinstance(num_params, int) or num_params < 1:
        raise ValueError(f"num_params must be a positive int, got {num_params!r}")
    return num_params + (1 if weighted else 0)


class FedAvgStep:
    """The result of one FedAvg step: the new model and the (public) total weight."""

    __slots__ = ("model", "total_weight")

    def __init__(self, model: npt.NDArray[np.float32], total_weight: float) -> None:
        self.model = model
        self.total_weight = total_weight


def fedavg_update(
    model: npt.ArrayLike,
    aggregate: npt.ArrayLike,
    *,
    num_clients: int,
    weighted: bool = True,
    server_lr: float = 1.0,
) -> FedAvgStep:
    """Apply the revealed ``aggregate`` (sum over ``num_clients`` clients, decoded to float)
    to ``model``. Raises ``ValueError`` on a length mismatch or a non-positive total weight."""
    params = np.asarray(model, dtype=np.float64).reshape(-1)
    total = np.asarray(aggregate, dtype=np.float64).reshape(-1)
    if total.size != update_length(params.size, weighted):
        raise ValueError(
            f"aggregate has {total.size} elements, expected "
            f"{update_length(params.size, weighted)} for {params.size} parameters"
        )
    if isinstance(num_clients, bool) or not isinstance(num_clients, int) or num_clients < 1:
        raise ValueError(f"num_clients must be a positive int, got {num_clients!r}")
    if weighted:
        weight = float(total[-1])
        if not weight > 0:
            raise ValueError(f"the aggregated client weight must be positive, got {weight}")
        delta = total[:-1] / weight
    else:
        weight = float(num_clients)
        delta = total / weight
    new = (params + server_lr * delta).astype(np.float32)
    return FedAvgStep(new, weight)
