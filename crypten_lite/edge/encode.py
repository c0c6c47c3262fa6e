"""Encoding a float model update into the ring before sharing, and decoding the sum.

Schemes (:data:`crypten_lite.edge.messages.SCHEMES`): ``int8``/``int16`` quantize
``clip(x, -clip, clip)`` symmetrically with scale ``clip / 127`` or ``clip / 32767`` and round
half to even (``crypten_lite.encoding.quantize`` with the range ``[-qmax, qmax]``);
``fixed16`` is ``FixedPointEncoder(16)`` of the clipped value. Negative values wrap into the
ring (two's complement), so the sum of the clients' encodings read as a signed integer times
the scale is the sum of their quantized updates — as long as ``num_clients * qmax`` fits in
``ring_bits - 1`` bits (:func:`max_clients`). Cost: local only, O(m).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from crypten_lite.edge.messages import SCHEMES, QuantSpec
from crypten_lite.edge.shares import ring_dtype
from crypten_lite.encoding import FixedPointEncoder, quantize
from crypten_lite.errors import EncodingError, EncodingRangeError

__all__ = ["check_capacity", "decode_aggregate", "encode_update", "max_clients", "quant_params"]

_QMAX = {"int8": 127, "int16": 32767}
_FIXED_BITS = 16


def quant_params(quant: QuantSpec) -> tuple[float, int]:
    """``(scale, qmax)`` of ``quant``: one ring unit's real value and the largest encoded
    magnitude."""
    if not isinstance(quant, QuantSpec):
        raise TypeError(f"quant must be a QuantSpec, got {type(quant).__name__}")
    if quant.scheme not in SCHEMES:
        raise EncodingError(f"quant.scheme must be one of {SCHEMES}, got {quant.scheme!r}")
    clip = quant.clip
    if isinstance(clip, bool) or not isinstance(clip, int | float) or not math.isfinite(clip):
        raise EncodingError(f"quant.clip must be a finite number, got {clip!r}")
    if clip <= 0:
        raise EncodingError(f"quant.clip must be > 0, got {clip}")
    if quant.scheme in _QMAX:
        qmax = _QMAX[quant.scheme]
        return float(clip) / qmax, qmax
    scale = 2.0**-_FIXED_BITS
    return scale, round(float(clip) / scale)


def max_clients(quant: QuantSpec, ring_bits: int) -> int:
    """How many clients' updates can be summed without wrapping: ``(2^(bits-1) - 1) // qmax``."""
    ring_dtype(ring_bits)
    _, qmax = quant_params(quant)
    capacity: int = (1 << (int(ring_bits) - 1)) - 1
    return max(0, capacity // max(qmax, 1))


def check_capacity(quant: QuantSpec, ring_bits: int, num_clients: int) -> None:
    """Raise EncodingRangeError if the sum of ``num_clients`` updates could wrap the ring."""
    limit = max_clients(quant, ring_bits)
    if num_clients > limit:
        raise EncodingRangeError(
            f"a {ring_bits}-bit ring holds the sum of at most {limit} {quant.scheme} updates "
            f"with clip {quant.clip:g}; got {num_clients} clients (use a 64-bit ring, a smaller "
            "clip or fewer clients)"
        )


def encode_update(
    x: npt.ArrayLike, quant: QuantSpec, ring_bits: int
) -> npt.NDArray[np.unsignedinteger]:
    """The flattened float update ``x`` as ring elements (``uint32``/``uint64``)."""
    dtype = ring_dtype(ring_bits)
    scale, qmax = quant_params(quant)
    if max_clients(quant, ring_bits) < 1:
        raise EncodingRangeError(
            f"clip {quant.clip:g} does not fit a {ring_bits}-bit ring with {quant.scheme}"
        )
    try:
        arr = np.asarray(x, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise TypeError("x must be a real array") from err
    if not np.isfinite(arr).all():
        raise EncodingError("the update x contains NaN or infinity")
    clipped = np.clip(arr, -quant.clip, quant.clip)
    if quant.scheme in _QMAX:
        q = quantize(clipped, scale, 0, np.int32, quant_min=-qmax, quant_max=qmax)
        return q.astype(dtype)  # two's complement wrap into the ring
    ring = FixedPointEncoder(_FIXED_BITS).encode(clipped)
    return ring.astype(dtype)  # low ring_bits bits


def decode_aggregate(
    sum_ring: npt.NDArray[np.unsignedinteger],
    quant: QuantSpec,
    ring_bits: int,
    num_clients: int | None = None,
) -> npt.NDArray[np.float64]:
    """The sum of the clients' (quantized) updates as float64: the ring sum read as a signed
    integer times the scale. With ``num_clients``, first check the sum cannot have wrapped."""
    dtype = ring_dtype(ring_bits)
    scale, _ = quant_params(quant)
    if num_clients is not None:
        check_capacity(quant, ring_bits, num_clients)
    if not isinstance(sum_ring, np.ndarray) or sum_ring.dtype.kind != "u":
        raise TypeError("sum_ring must be an unsigned integer numpy array")
    if sum_ring.dtype.itemsize * 8 > ring_bits:
        sum_ring = sum_ring.astype(dtype)  # reduce mod 2^ring_bits
    signed = np.ascontiguousarray(sum_ring, dtype=dtype).view(
        np.int32 if ring_bits == 32 else np.int64
    )
    return signed.astype(np.float64) * scale
