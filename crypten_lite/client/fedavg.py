"""FedAvg packing on the client: a client uploads ``[w·Δ, w]`` with ``w = n_examples /
weight_cap``, so the servers' sum gives ``Σ w Δ`` and ``Σ w`` and only the weighted mean is
revealed (the server side is :mod:`crypten_lite.fl.fedavg`)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["pack_weighted_update"]

F64 = npt.NDArray[np.float64]


def pack_weighted_update(delta: npt.ArrayLike, weight: float) -> F64:
    """``[weight·delta, weight]``: the vector a client shares for weighted FedAvg; ``weight``
    must lie in (0, 1] (``n_examples / weight_cap``) so it fits the quantization clip."""
    if not 0 < weight <= 1:
        raise ValueError(f"weight must lie in (0, 1], got {weight!r}")
    flat = np.asarray(delta, dtype=np.float64).reshape(-1)
    return np.concatenate([weight * flat, [weight]])
