"""Fixed-point encoding of reals into the ring Z_2^64.

A real ``x`` is stored as the two's-complement int64 ``v = round_half_even(x * 2^p)`` viewed as
``np.uint64``; it decodes to ``v * 2^-p``. Unlike CrypTen (which truncates toward zero on
encode and floor-divides on decode) rounding is half-to-even and decoding is exact on the
signed view, so ``decode(encode(-x)) == -decode(encode(x))`` for every encodable ``x``.

Range: an encoding must satisfy ``|v| < 2^62``, so the sum or difference of any two encodings
still lies strictly inside the int64 range (one addition of headroom before wrap-around). The
largest encodable magnitude is therefore ``max_abs = (2^62 - 2^9) * 2^-p``, the largest
float64 below ``2^(62-p)``. Integer inputs are encoded exactly as ``x << p`` (no float
round-trip) when ``|x| <= max_abs``; float inputs are converted to float64 first (exact for
float16/float32, rounding for longdouble).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crypten_lite.encoding.backend import active_kernels
from crypten_lite.encoding.base import as_real_array, require_ring
from crypten_lite.errors import EncodingError, EncodingRangeError

__all__ = ["MAX_ENCODED_BITS", "MAX_PRECISION", "FixedPointEncoder"]

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

#: Encodings satisfy ``|v| < 2**MAX_ENCODED_BITS``.
MAX_ENCODED_BITS = 62
#: Largest allowed ``precision`` (keeps ``2^-p`` and ``max_abs`` far from float64 limits).
MAX_PRECISION = 52


@dataclass(frozen=True)
class FixedPointEncoder:
    """Fixed point with ``precision`` fractional bits (default 16, like CrypTen).

    >>> enc = FixedPointEncoder(precision=16)
    >>> enc.decode(enc.encode([1.5, -0.25])).tolist()
    [1.5, -0.25]
    """

    precision: int = 16

    def __post_init__(self) -> None:
        p = self.precision
        if isinstance(p, bool) or not isinstance(p, int | np.integer):
            raise EncodingError(f"precision must be an int in [0, {MAX_PRECISION}]")
        if not 0 <= int(p) <= MAX_PRECISION:
            raise EncodingError(f"precision must lie in [0, {MAX_PRECISION}], got {int(p)}")
        object.__setattr__(self, "precision", int(p))

    @property
    def scale(self) -> float:
        """Real value of one ring unit, ``2^-precision``."""
        return 2.0**-self.precision

    @property
    def max_abs(self) -> float:
        """Largest encodable magnitude: the largest float64 ``x`` with ``x * 2^p < 2^62``."""
        return float((2**MAX_ENCODED_BITS - 2 ** (MAX_ENCODED_BITS - 53)) * 2.0**-self.precision)

    @property
    def max_int(self) -> int:
        """Largest encodable integer magnitude, ``floor(max_abs)``."""
        return int(self.max_abs)

    def _range_error(self, name: str) -> EncodingRangeError:
        return EncodingRangeError(
            f"{name}: a magnitude exceeds max_abs = {self.max_abs!r} "
            f"(|{name}| * 2^{self.precision} must stay below 2^{MAX_ENCODED_BITS}) "
            f"at precision {self.precision}"
        )

    def encode(self, x: npt.ArrayLike) -> U64:
        """Real array-like to ring elements ``round_half_even(x * 2^p)`` (same shape).

        Raises TypeError for non-numeric input, EncodingError for NaN/infinity and
        EncodingRangeError when ``|x| > max_abs``.
        """
        arr = as_real_array("x", x)
        kernels = active_kernels()
        kind = arr.dtype.kind
        if kind in "biu":
            if kind == "u" and arr.size and int(arr.max()) > self.max_int:
                raise self._range_error("x")
            ints = arr.astype(np.int64, copy=False)
            out = kernels.fixed_encode_int(ints, self.precision, self.max_int)
            if out is None:
                raise self._range_error("x")
            return np.asarray(out, dtype=np.uint64)
        floats = arr.astype(np.float64, copy=False)
        out = kernels.fixed_encode_float(floats, self.precision, self.max_abs)
        if out is None:
            if not np.isfinite(floats).all():
                raise EncodingError("x contains NaN or infinity, which cannot be encoded")
            raise self._range_error("x")
        return np.asarray(out, dtype=np.uint64)

    def decode(self, r: U64) -> F64:
        """Ring elements to float64: the signed view times ``2^-p`` (any uint64 decodes)."""
        ring = require_ring("r", r)
        return np.asarray(active_kernels().fixed_decode(ring, self.precision), dtype=np.float64)
