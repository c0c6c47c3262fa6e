"""Cases of the ``ops`` suite for the nonlinear approximations (``MPCTensor.exp``,
``sigmoid``, ``reciprocal``, ``softmax``, ``gelu``), with CrypTen's times from the issue
(2 parties; insecure local triples / secure dealer, in ms) as ``crypten_ms``.

Inputs lie in each function's documented range: exp on ``[-8, 4]``, sigmoid on ``[-10,
10]``, reciprocal on ``+-[0.1, 100]`` (log-uniform magnitude, random sign), softmax over
1000 logits in ``[-10, 10]`` along ``dim=1``, gelu on ``[-6, 6]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from benchmarks.opcase import OpCase

__all__ = ["approx_cases"]

Array = np.ndarray


def _uniform(shape: tuple[int, ...], low: float, high: float) -> Callable[..., list[Array]]:
    return lambda data: [data.uniform(low, high, size=shape)]


def _reciprocal_inputs(n: int) -> Callable[[np.random.Generator], list[Array]]:
    def make(data: np.random.Generator) -> list[Array]:
        magnitude = np.exp(data.uniform(math.log(0.1), math.log(100.0), size=n))
        return [magnitude * data.choice([-1.0, 1.0], size=n)]

    return make


def _sigmoid(a: Array) -> Array:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * a)))


def _softmax(a: Array) -> Array:
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _gelu(a: Array) -> Array:
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return np.asarray(0.5 * a * (1.0 + erf(a / math.sqrt(2.0))))


def approx_cases(quick: bool) -> list[OpCase]:
    """exp, sigmoid, reciprocal and gelu on 1e5 elements, softmax on 128 x 1000 (``quick``:
    1e3 elements and 2 x 1000, without CrypTen's times)."""
    n = 1_000 if quick else 100_000
    rows = 2 if quick else 128

    def crypten(insecure: float, secure: float) -> tuple[float, float] | None:
        return None if quick else (insecure, secure)  # CrypTen's times are for full sizes

    return [
        OpCase(
            "exp", {"n": n}, _uniform((n,), -8.0, 4.0), lambda x: x.exp(), np.exp, crypten(77, 111)
        ),
        OpCase(
            "sigmoid",
            {"n": n},
            _uniform((n,), -10.0, 10.0),
            lambda x: x.sigmoid(),
            _sigmoid,
            crypten(338, 472),
        ),
        OpCase(
            "reciprocal",
            {"n": n},
            _reciprocal_inputs(n),
            lambda x: x.reciprocal(),
            np.reciprocal,
            crypten(503, 717),
        ),
        OpCase(
            "softmax",
            {"x": [rows, 1000], "dim": 1},
            _uniform((rows, 1000), -10.0, 10.0),
            lambda x: x.softmax(1),
            _softmax,
            crypten(999, 1518),
        ),
        OpCase("gelu", {"n": n}, _uniform((n,), -6.0, 6.0), lambda x: x.gelu(), _gelu),
    ]
