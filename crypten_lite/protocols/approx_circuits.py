"""Circuit builders for the approximations of :mod:`crypten_lite.protocols.approximations`:
each adds the nodes of one function to a :class:`~crypten_lite.protocols.polynomial.Circuit`
and returns its output node, so functions compose without extra rounds (softmax = exp, sum,
reciprocal and product in one circuit). The numeric designs (Chebyshev interpolants, the
reciprocal's product-form guess) are computed here from the documented ranges with numpy,
per call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from crypten_lite.protocols.polynomial import Circuit, chebyshev, chebyshev_fit

__all__ = [
    "affine",
    "cheb_function",
    "exp_nodes",
    "pow_nodes",
    "power_of_four_nodes",
    "reciprocal_guess_levels",
    "reciprocal_nodes",
    "scale_thresholds",
]

F64 = npt.NDArray[np.float64]
RealFn = Callable[[F64], F64]


def affine(circ: Circuit, x: int, lo: float, hi: float) -> int:
    """``t = (2x - lo - hi) / (hi - lo)``: ``[lo, hi]`` onto ``[-1, 1]``."""
    return circ.lin([(2.0 / (hi - lo), x)], -(hi + lo) / (hi - lo))


def cheb_function(
    circ: Circuit, x: int, fn: RealFn, lo: float, hi: float, degree: int, parity: int = -1
) -> int:
    """``fn`` on ``[lo, hi]`` by its degree-``degree`` Chebyshev interpolant (on a symmetric
    interval ``parity`` 1 keeps the constant and the odd coefficients, 0 the even ones).
    Depth ``ceil(log2 degree)`` levels after ``x``."""
    coeffs = chebyshev_fit(fn, lo, hi, degree)
    if parity == 1:
        coeffs[2::2] = 0.0  # odd about the constant term (sigmoid = 1/2 + odd)
    elif parity == 0:
        coeffs[1::2] = 0.0
    return chebyshev(circ, affine(circ, x, lo, hi), coeffs)


# -- exp -------------------------------------------------------------------------------------
def exp_nodes(circ: Circuit, x: int, lo: float, hi: float, degree: int, squarings: int) -> int:
    """``exp(x) = q(x)^(2^k)`` with ``q`` the Chebyshev interpolant of ``exp(x / 2^k)`` on
    ``[lo, hi]``; depth ``ceil(log2 degree) + k``."""
    k = squarings
    out = cheb_function(circ, x, lambda u: np.exp(u / 2.0**k), lo, hi, degree)
    for _ in range(k):
        out = circ.square(out)
    return out


# -- reciprocal ------------------------------------------------------------------------------
def _cheb_t(n: int, t: float) -> float:
    """``T_n(t)`` for any real ``t``."""
    if abs(t) <= 1:
        return math.cos(n * math.acos(t))
    return math.copysign(1.0, t) ** n * math.cosh(n * math.acosh(abs(t)))


def reciprocal_guess_levels(lo: float, hi: float, iterations: int, tolerance: float) -> int:
    """Smallest ``k`` whose guess error ``1 / T_(2^k)(t0)`` becomes at most ``tolerance``
    after ``iterations`` Newton steps (each squares it)."""
    t0 = (hi + lo) / (hi - lo)
    for k in range(1, 16):
        err = 1.0 / _cheb_t(1 << k, t0)
        if err ** (1 << iterations) <= tolerance:
            return k
    return 16


def reciprocal_nodes(
    circ: Circuit,
    x: int,
    lo: float,
    hi: float,
    iterations: int,
    guess_levels: int,
    *,
    sign: int | None = None,
    numerator: int | None = None,
) -> int:
    """``numerator / x`` (``numerator`` 1 when None) for ``|x|`` in ``[lo, hi]``.

    Guess: the degree ``2^k - 1`` polynomial ``p`` minimizing ``max |1 - a p(a)|`` on ``[lo,
    hi]``, ``1 - a p(a) = T_N(t) / T_N(t0)`` (``N = 2^k``, ``t`` the affine image of ``a``
    in ``[-1, 1]``, ``t0`` that of ``a = 0``), evaluated in product form
    ``p(a) = -alpha 2^k prod_(j<k) (T_(2^j)(t) + T_(2^j)(t0)) / T_N(t0)`` with
    ``T_(2^(j+1)) = 2 T_(2^j)^2 - 1``: two products per level, every factor of one sign, the
    running product normalized to ``[16 lo / hi, 16]``. Then Newton ``y <- y (2 - a y)``
    (error squared), the last step multiplied by ``sign * numerator``.

    ``sign``: an integer ``+-1`` node; then ``a = sign * x`` and ``(alpha x)^2`` (one level,
    in parallel) give ``T_2`` without a level of its own. Depth: ``k + 2 iterations`` levels.
    """
    k = guess_levels
    alpha, beta = 2.0 / (hi - lo), -(hi + lo) / (hi - lo)
    t0 = beta  # the image of a = 0
    if sign is not None:
        a = circ.mul(sign, x)
        v = circ.lin([(alpha, x)])  # |v| <= 1 + |beta|: no large values next to small ones
        scaled = circ.mul(sign, v)  # alpha |x|
        t = circ.lin([(1.0, scaled)], beta)
        t_j = circ.lin([(2.0, circ.square(v)), (4 * beta, scaled)], 2 * beta**2 - 1)
    else:
        a = x
        t = circ.lin([(alpha, a)], beta)
        t_j = circ.lin([(2.0, circ.square(t))], -1.0)
    # factor 0 is t + t0 < 0; factor j >= 1 is (T_(2^j)(t) + c_j) / (1 + c_j) in (0, 1]
    scale0 = -16.0 / (1.0 - t0)
    running = circ.lin([(scale0, t)], scale0 * t0)
    norm = scale0
    for j in range(1, k):
        c_j = _cheb_t(1 << j, t0)
        running = circ.mul(running, circ.lin([(1.0 / (1.0 + c_j), t_j)], c_j / (1.0 + c_j)))
        norm /= 1.0 + c_j
        if j + 1 < k:
            t_j = circ.lin([(2.0, circ.square(t_j))], -1.0)
    y = circ.lin([(-alpha * 2.0**k / _cheb_t(1 << k, t0) / norm, running)])
    factor = numerator if sign is None else sign
    if sign is not None and numerator is not None:
        factor = circ.mul(sign, numerator)
    for i in range(iterations):
        correction = circ.lin([(-1, circ.mul(a, y))], 2.0)
        if i == iterations - 1 and factor is not None:
            return circ.mul(circ.mul(factor, y), correction)
        y = circ.mul(y, correction)
    return y if factor is None else circ.mul(factor, y)


# -- powers of four: normalization for log, sqrt, inv_sqrt -------------------------------------
def scale_thresholds(lo: float, hi: float) -> list[int]:
    """Exponents ``k`` of the thresholds ``4^k`` that pin ``m = floor(log4 x)`` for ``x`` in
    ``[4^(k_0 - 1), 4^(k_last + 1))``, a superset of ``[lo, hi]``."""
    first = math.floor(math.log(lo, 4)) + 1
    last = math.ceil(math.log(hi, 4)) - 1
    return list(range(first, max(last, first) + 1))


def power_of_four_nodes(
    circ: Circuit, bits: Sequence[int], ks: Sequence[int], fn: Callable[[int], float]
) -> int:
    """``fn(m)`` for ``m = k_0 - 1 + sum_k [x >= 4^k]``, linear in the (thermometer) bits:
    ``fn(m) = fn(k_0 - 1) + sum_k b_k (fn(k) - fn(k - 1))``. Exact when the values are
    multiples of ``2^-frac``; no product."""
    first = ks[0] - 1
    terms = [(fn(k) - fn(k - 1), b) for k, b in zip(ks, bits, strict=True)]
    return circ.lin(terms, fn(first))


def pow_nodes(circ: Circuit, x: int, n: int) -> int:
    """``x^n`` (``n >= 1``) by splitting ``x^n = x^ceil(n/2) x^floor(n/2)`` (memoized): depth
    ``ceil(log2 n)``, at most ``2 log2 n`` products."""
    memo: dict[int, int] = {1: x}

    def power(m: int) -> int:
        if m not in memo:
            memo[m] = circ.mul(power((m + 1) // 2), power(m // 2))
        return memo[m]

    return power(n)
