"""The interface shared by every encoder, and input checks used across the encoding layer."""

from __future__ import annotations

import numbers
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import EncodingRangeError, RingDTypeError

__all__ = ["Encoder", "as_real_array", "require_ring"]

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]


@runtime_checkable
class Encoder(Protocol):
    """Maps real arrays to ring elements (``np.uint64``, two's complement) and back.

    A ring value ``v`` stands for the real value ``scale * v`` (for per-channel encoders,
    ``scale`` is an array applied along the encoder's channel axis). Fixed-point and int8
    quantized encoders both implement this, so later layers treat them alike.
    """

    @property
    def scale(self) -> float | F64:
        """Real value of one ring unit."""
        ...

    def encode(self, x: npt.ArrayLike) -> U64:
        """Real array-like to ring elements of the same shape."""
        ...

    def decode(self, r: U64) -> F64:
        """Ring elements to float64 reals of the same shape."""
        ...


def require_ring(name: str, r: object) -> U64:
    """``r`` as a uint64 ndarray (a ``np.uint64`` scalar becomes 0-d), else RingDTypeError."""
    if isinstance(r, np.uint64):
        return np.asarray(r)
    if not isinstance(r, np.ndarray):
        raise RingDTypeError(f"{name} must be a numpy array of uint64, got {type(r).__name__}")
    if r.dtype != np.uint64:
        raise RingDTypeError(f"{name} must have dtype uint64, got {r.dtype}")
    return r


def _object_to_numeric(name: str, arr: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    items = list(arr.flat)
    for item in items:
        if not isinstance(item, numbers.Real | np.integer | np.floating):
            raise TypeError(
                f"{name} must hold real numbers, found an element of type {type(item).__name__}"
            )
    if all(isinstance(item, int | np.integer) for item in items):
        try:
            return arr.astype(np.int64)
        except OverflowError as err:
            raise EncodingRangeError(f"{name} holds an integer outside the int64 range") from err
    try:
        return arr.astype(np.float64)
    except OverflowError as err:
        raise EncodingRangeError(f"{name} holds a number too large for float64") from err


def as_real_array(name: str, x: object) -> npt.NDArray[np.generic]:
    """``x`` as an ndarray of a real numeric dtype (bool, int, uint or float kinds).

    Python scalars, nested lists and numpy arrays are accepted; object arrays of Python
    numbers are converted (integers to int64 when they all are integers, else float64).
    Anything else (strings, complex, None, ragged lists) raises TypeError naming ``name``.
    """
    if isinstance(x, np.ndarray):
        arr: npt.NDArray[np.generic] = x
    else:
        if isinstance(x, str | bytes):
            raise TypeError(f"{name} must be numeric, got {type(x).__name__}")
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a numeric array-like") from err
    kind = arr.dtype.kind
    if kind in "biuf":
        return arr
    if kind == "O":
        return _object_to_numeric(name, arr)
    raise TypeError(f"{name} must have a real numeric dtype, got {arr.dtype}")
