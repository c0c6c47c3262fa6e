"""Checks and derived values shared by the multi-server
(:class:`~crypten_lite.fl.AggregationConfig`) and single-server
(:class:`~crypten_lite.fl.secagg.SecAggConfig`) job configurations."""

from __future__ import annotations

import math

from crypten_lite.edge.encode import quant_params
from crypten_lite.edge.messages import RING_BITS, SCHEMES, QuantSpec
from crypten_lite.errors import ConfigError

__all__ = ["check_job_fields", "weight_units"]


def check_job_fields(
    *,
    job_id: object,
    num_elements: object,
    ring_bits: object,
    quant: QuantSpec,
    timeouts: dict[str, object],
    weight_max: object,
) -> None:
    """ConfigError naming the first bad field: job id, update length, ring width,
    quantization scheme, a non-positive timeout, or a weight bound that is not a positive
    finite number."""
    if not isinstance(job_id, str) or not job_id:
        raise ConfigError("job_id must be a non-empty str")
    if isinstance(num_elements, bool) or not isinstance(num_elements, int):
        raise ConfigError(f"num_elements must be an int, got {num_elements!r}")
    if num_elements < 1:
        raise ConfigError(f"num_elements must be >= 1, got {num_elements}")
    if ring_bits not in RING_BITS:
        raise ConfigError(f"ring_bits must be one of {RING_BITS}, got {ring_bits!r}")
    if quant.scheme not in SCHEMES:
        raise ConfigError(f"quant.scheme must be one of {SCHEMES}, got {quant.scheme!r}")
    for name, value in timeouts.items():
        if not (isinstance(value, int | float) and value > 0):
            raise ConfigError(f"{name} must be positive, got {value!r}")
    if weight_max is not None and (
        isinstance(weight_max, bool)
        or not isinstance(weight_max, int | float)
        or not math.isfinite(weight_max)
        or weight_max <= 0
    ):
        raise ConfigError(f"weight_max must be a positive finite float, got {weight_max!r}")


def weight_units(weight_max: float, quant: QuantSpec) -> int:
    """The FedAvg weight bound in quantization units: ``floor(weight_max / scale + 0.5)``."""
    scale, _ = quant_params(quant)
    return math.floor(weight_max / scale + 0.5)
