"""Nonlinear functions on MPCTensor: exp, log, reciprocal and division by a private value,
sqrt, inv_sqrt, integer pow, sigmoid, tanh, erf, gelu, softmax and log_softmax.

Every function is one fixed-point circuit (:mod:`crypten_lite.protocols.polynomial`): Chebyshev
interpolants on the documented range evaluated in logarithmic depth (baby-step giant-step),
all products of a depth level in ONE round. Comparisons appear only where a range reduction
needs them: the sign of a divisor, the powers of four that normalize ``log``/``sqrt``/
``inv_sqrt``, the maximum in ``softmax``. Knobs (ranges, degrees, iterations, saturation)
live in ``SessionConfig.approx`` (:class:`crypten_lite.config.ApproxConfig`).

Cost lines give rounds as ``2 parties / 3 parties / 3 parties with min_rounds``: 2 parties
truncate locally (free); with 3 or more (dealer truncation) each product level needs a
truncation round before it, unless ``SessionConfig(min_rounds=True)`` fuses those
truncations into the level's opening (fewer rounds, more traffic and dealer randomness;
slower in-process), plus one final truncation round. Traffic: ring elements (8 bytes) sent
per party to each other party, per element, as measured. CrypTen's numbers (2 parties) in
brackets. Errors are maxima measured against float64 on dense grids of the range, edges
included, at the default 16 fractional bits, for 2 and 3 parties.

Outside the documented range a function is *undefined* unless its docstring says otherwise
(polynomials diverge there). ``SessionConfig(debug_range_check=True)`` checks the inputs
first and raises :class:`~crypten_lite.errors.ShareError` naming the function when any
element lies outside: that costs 7 rounds (comparisons, a zero test of their count, one
opening) and REVEALS ONE BIT to every party, whether some element was out of range.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from crypten_lite.config import ApproxConfig
from crypten_lite.errors import ShareError
from crypten_lite.protocols import comparison
from crypten_lite.protocols.context import open_arith
from crypten_lite.protocols.polynomial import Circuit
from crypten_lite.tensor._stubs import TensorStubs
from crypten_lite.tensor.approx_circuits import (
    cheb_function,
    exp_nodes,
    pow_nodes,
    power_of_four_nodes,
    reciprocal_guess_levels,
    reciprocal_nodes,
    scale_thresholds,
)

if TYPE_CHECKING:
    from crypten_lite.tensor.core import MPCTensor

__all__ = ["ApproxMixin"]

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]
_LN4 = math.log(4.0)
#: Final relative error the reciprocal's guess + Newton steps aim at (before rounding).
_RECIPROCAL_TOLERANCE = 2e-3
_SOFTMAX_TOLERANCE = 2e-4


def _erf(x: F64) -> F64:
    """float64 erf (numpy has none; math.erf is exact to an ulp)."""
    return np.asarray(np.vectorize(math.erf, otypes=[np.float64])(x))


def _gelu(x: F64) -> F64:
    return np.asarray(0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))))


def _sigmoid(x: F64) -> F64:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)))


class ApproxMixin(TensorStubs):
    """Mixed into MPCTensor (see module doc)."""

    __slots__ = ()

    if TYPE_CHECKING:

        def _tournament(self, axis: int, want_max: bool) -> MPCTensor: ...
        def _relu_flat(self, x: U64) -> U64: ...
        def clamp(self, min: Any = None, max: Any = None) -> MPCTensor: ...

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def _approx(self) -> ApproxConfig:
        return self.session.config.approx

    def _lifted(self) -> U64:
        """The share, 0-d as shape (1,) (array arithmetic wraps silently)."""
        self._require_arith()
        return self._share.reshape(1) if self._share.ndim == 0 else self._share

    def _circuit(self) -> tuple[Circuit, int]:
        circ = Circuit(self.precision, fuse=self.session.config.min_rounds)
        return circ, circ.input(self._lifted(), self.precision)

    def _finish(self, circ: Circuit, node: int, shape: tuple[int, ...] | None = None) -> MPCTensor:
        (out,) = circ.run(self.session, [node])
        return self._wrap(out.reshape(self.shape if shape is None else shape))

    def _minus(self, share: U64, value: float) -> U64:
        """``[x] - value`` for a public ``value`` (party 0 subtracts its encoding)."""
        return share - self._encode_public(value) if self.session.rank == 0 else share.copy()

    def _ltz(self, shares: U64) -> U64:
        """``[v < 0]`` (0/1 integers) for every element of ``shares``, one call: 3 rounds."""
        flat = np.ascontiguousarray(shares).reshape(-1)
        return comparison.ltz(self.session, flat).reshape(shares.shape)

    def _debug_range(
        self, name: str, low: float | None, high: float | None, *, absolute: bool = False
    ) -> None:
        """With ``debug_range_check``: raise unless every element lies in ``[low, high]``
        (``|x|`` in it when ``absolute``). Reveals one bit (see module doc); 7 rounds."""
        if not self.session.config.debug_range_check:
            return
        x = self._lifted().reshape(-1)
        diffs: list[U64] = []  # ltz of each is 1 exactly for the violations it detects
        sign: list[int] = []
        if high is not None:
            diffs.append(np.negative(self._minus(x, high)))  # x > high
            sign.append(1)
            if absolute:
                diffs.append(self._minus(x, -high))  # x < -high
                sign.append(1)
        if low is not None:
            diffs.append(self._minus(x, low))  # x < low
            sign.append(1)
            if absolute:
                diffs.append(self._minus(x, -low))  # minus [x < -low]: [-low <= x < low]
                sign.append(-1)
        bits = self._ltz(np.stack([np.broadcast_to(d, x.shape) for d in diffs]))
        count = np.sum(
            bits * np.array(sign, dtype=np.int64).view(np.uint64)[:, None], dtype=np.uint64
        )
        clear = comparison.eqz(self.session, np.asarray(count, dtype=np.uint64).reshape(1))
        (flag,) = open_arith(self.session, clear)
        if int(flag[0]) != 1:
            span = f"|x| in [{low}, {high}]" if absolute else f"[{low}, {high}]"
            raise ShareError(
                f"{name}: an input lies outside the documented range {span} "
                "(debug_range_check; see SessionConfig.approx)"
            )

    def _clamped(self, low: float | None, high: float | None) -> MPCTensor:
        """With ``saturate``: ``clamp(low, high)`` (4 rounds; 3 with ``min_rounds``)."""
        if self._approx.saturate:
            return self.clamp(low, high)
        return self._wrap(self._share)

    # -- exp and log -------------------------------------------------------------------------
    def exp(self) -> MPCTensor:
        """``e^x``.

        Algorithm: ``exp(x) = q(x)^(2^s)``, ``q`` the degree-``d`` Chebyshev interpolant of
        ``exp(x / 2^s)`` on ``exp_range`` (defaults ``[-32, 4]``, ``d = 8``, ``s = 3``):
        ``ceil(log2 d) + s`` product levels, 7 products.
        Range ``[-32, 4]``. Outside: still 0 to 1e-5 down to -48 and within 1% up to 10,
        undefined further out (``saturate``: clamped to the range first).
        Error: relative <= 1% where ``e^x >= 0.01``, absolute <= 1e-4 below; measured on
        ``[-8, 4]``: relative 1.4e-3 (2 and 3 parties; one unit of ``2^-16`` at ``e^x =
        0.01``), absolute 2e-5 [CrypTen: 16%].
        Cost: rounds 6 (2 parties) / 13 (3) / 7 (3, ``min_rounds``) [8]; ring elements per
        element sent to each peer 13 / 21 / 33.
        """
        cfg = self._approx
        lo, hi = cfg.exp_range
        self._debug_range("exp", lo, hi)
        x = self._clamped(lo, hi)
        circ, node = x._circuit()
        return x._finish(circ, exp_nodes(circ, node, lo, hi, cfg.exp_degree, cfg.exp_squarings))

    def _pow4(self, low: float, high: float) -> tuple[Circuit, int, list[int], list[int]]:
        """Comparisons ``b_k = [x >= 4^k]`` for the powers of four spanning ``[low, high]`` (one
        batched call, 3 rounds) and a circuit holding ``x`` and the bits."""
        ks = scale_thresholds(low, high)
        x = self._lifted()
        below = self._ltz(np.stack([self._minus(x, 4.0**k) for k in ks]))
        bits = np.negative(below)
        if self.session.rank == 0:
            bits = bits + np.uint64(1)
        circ, node = self._circuit()
        return circ, node, ks, [circ.input(b, 0) for b in bits]

    def _log_nodes(self, low: float, high: float) -> tuple[Circuit, int]:
        circ, x, ks, bits = self._pow4(low, high)
        z = circ.mul(x, power_of_four_nodes(circ, bits, ks, lambda m: 4.0**-m))
        log_z = cheb_function(circ, z, np.log, 1.0, 4.0, self._approx.log_degree)
        m_ln4 = power_of_four_nodes(circ, bits, ks, lambda m: m * _LN4)
        return circ, circ.lin([(1, log_z), (1, m_ln4)])

    def log(self) -> MPCTensor:
        """Natural logarithm.

        Algorithm: ``m = floor(log4 x)`` from comparisons with the powers of four spanning
        ``scale_range`` (7 for the default, one batched call), ``z = x 4^-m`` in ``[1, 4)``
        (one product; ``4^-m`` and ``m`` are linear in the comparison bits), ``log x = m ln 4 +
        p(z)`` with ``p`` the degree-8 Chebyshev interpolant of ``log`` on ``[1, 4]``.
        Range ``scale_range`` (default ``[2^-8, 2^8]``, which covers ``[0.01, 100]``).
        Outside: below, the result levels off (-6.7 at 1e-3, -7.6 at 0); above, undefined;
        ``x <= 0`` undefined (``saturate``: clamped to the range).
        Error: absolute <= 0.01; measured 1e-4 on ``[0.01, 100]`` [0.044].
        Cost: rounds 7 / 12 / 8 (3 of them the comparison); ring elements per element per
        peer 20 / 26 / 33; the work is dominated by the 7 comparisons per element.
        """
        low, high = self._approx.scale_range
        self._debug_range("log", low, high)
        circ, node = self._clamped(low, high)._log_nodes(low, high)
        return self._finish(circ, node)

    # -- roots -----------------------------------------------------------------------------
    def _root(self, name: str, inverse: bool) -> MPCTensor:
        low, high = self._approx.scale_range
        self._debug_range(name, low, high)
        x_in = self._clamped(low if inverse else None, high)
        circ, x, ks, bits = x_in._pow4(low, high)
        z = circ.mul(x, power_of_four_nodes(circ, bits, ks, lambda m: 4.0**-m))
        q = cheb_function(circ, z, lambda v: v**-0.5, 1.0, 4.0, self._approx.sqrt_degree)
        half = power_of_four_nodes(circ, bits, ks, lambda m: 2.0**-m)
        scaled = half if inverse else circ.mul(x, half)  # 2^-m, or x 2^-m = 2^m z
        return self._finish(circ, circ.mul(scaled, q))

    def sqrt(self) -> MPCTensor:
        """Square root: ``x 2^-m q(z)`` with the normalization of :meth:`log` and ``q`` the
        degree-8 Chebyshev interpolant of ``z^-1/2`` on ``[1, 4]`` (so ``sqrt(0) = 0``).
        Range ``scale_range`` (default ``[2^-8, 2^8]``). Outside: below, the error stays
        under 7e-3 down to 0; above 256 and for ``x < 0`` undefined (``saturate``: clamped
        above).
        Error: absolute <= 0.01 on ``[0.01, 100]``; measured 4e-4 [0.040].
        Cost: rounds 8 / 14 / 9; ring elements per element per peer 23 / 32 / 42.
        """
        return self._root("sqrt", inverse=False)

    def inv_sqrt(self) -> MPCTensor:
        """``1 / sqrt(x)``: ``2^-m q(z)`` (see :meth:`sqrt`).
        Range ``scale_range`` (default ``[2^-8, 2^8]``). Outside: below, saturates (28 at
        1e-3, 38 at 0); above and ``x <= 0`` undefined (``saturate``: clamped).
        Error: relative <= 1% on ``[0.1, 100]``; measured 1.6e-4.
        Cost: rounds 8 / 14 / 9; ring elements per element per peer 22 / 30 / 39.
        """
        return self._root("inv_sqrt", inverse=True)

    # -- reciprocal, division, pow -----------------------------------------------------------
    def _reciprocal(self, numerator: MPCTensor | None, all_pos: bool) -> MPCTensor:
        cfg = self._approx
        low, high = cfg.reciprocal_range
        self._debug_range("reciprocal", low, high, absolute=not all_pos)
        divisor = self._clamped(None if all_pos else -high, high)
        circ, x = divisor._circuit()
        sign = None
        if not all_pos:
            sign = circ.lin([(-2, circ.input(divisor._ltz(divisor._lifted()), 0))], 1.0)
        num, shape = None, self.shape
        if numerator is not None:
            num = circ.input(numerator._lifted(), numerator.precision)
            shape = tuple(np.broadcast_shapes(self.shape, numerator.shape))
        iters = cfg.reciprocal_iterations
        k = reciprocal_guess_levels(low, high, iters, _RECIPROCAL_TOLERANCE)
        y = reciprocal_nodes(circ, x, low, high, iters, k, sign=sign, numerator=num)
        return (self if numerator is None else numerator)._finish(circ, y, shape)

    def reciprocal(self, all_pos: bool = False) -> MPCTensor:
        """``1 / x``.

        Algorithm: ``s = 1 - 2 [x < 0]`` (one comparison; none with ``all_pos=True``), then
        the degree-``2^k - 1`` polynomial ``p`` with the smallest ``max |1 - a p(a)|`` on
        ``reciprocal_range`` (``a = |x| = s x``): ``1 - a p(a) = T_N(t) / T_N(t0)``
        (Chebyshev ``T_N``, ``N = 2^k``, ``t`` the image of ``a`` in ``[-1, 1]``, ``t0`` that
        of 0; error ``1 / T_N(t0)``, 0.035 for ``k = 6`` on the default range), evaluated as
        the product of ``T_(2^j)(t) + T_(2^j)(t0)`` (``T_(2^(j+1)) = 2 T_(2^j)^2 - 1``: ``k``
        levels of 2 products), then ``reciprocal_iterations`` Newton steps ``y (2 - a y)``
        (error squared) with the sign folded into the last product.
        Range ``|x|`` in ``reciprocal_range`` (default ``[0.1, 100]``). Outside: below, the
        magnitude saturates (18 at 0.05, 40 at 0); above, undefined: the guess diverges at
        once (``saturate``: clamped to ``[-100, 100]``).
        Error: relative <= 1%; measured 2.2e-3 (2 and 3 parties) [15%; diverges with 3].
        Cost: rounds 11 / 20 / 12 (8 / 17 / 9 with ``all_pos``) [38]; ring elements per
        element per peer 30 / 48 / 70; one comparison and 15 products per element.
        """
        return self._reciprocal(None, all_pos)

    def _div_private(self, divisor: MPCTensor) -> MPCTensor:
        """``self / divisor`` for a private divisor: :meth:`reciprocal` with ``self`` folded
        into its last product (same rounds; divisor range and relative error as there, plus
        one unit of ``2^-f``)."""
        self._check_other(divisor)
        np.broadcast_shapes(self.shape, divisor.shape)  # shape errors before any triple
        return divisor._reciprocal(self._wrap(self._share), all_pos=False)

    def __rtruediv__(self, other: Any) -> MPCTensor:
        """``public / self = reciprocal() * public``."""
        return self.reciprocal().mul(other)

    def pow(self, exponent: int) -> MPCTensor:
        """``x^n`` for an integer ``n``; negative ``n`` on :meth:`reciprocal` (one circuit).

        Algorithm: ``x^n = x^ceil(n/2) x^floor(n/2)`` memoized: ``ceil(log2 |n|)`` levels, at
        most ``2 log2 |n|`` products.
        Range: ``x^n`` (and the intermediate powers) representable: for 2 parties keep
        ``|x^j|`` below about ``2^(46 - 2f)`` per product (see ``MPCTensor``); negative ``n``:
        ``|x|`` in ``reciprocal_range``.
        Error: about ``n`` units of ``2^-f`` relative to the magnitudes involved (measured
        4e-4 for ``x^3`` on ``[-4, 4]``; 2.8e-3 relative for ``x^-2``).
        Cost: rounds ``ceil(log2 n)`` / ``2 ceil(log2 n)`` / ``ceil(log2 n) + 1`` (0 for ``n``
        in ``{0, 1}``); reciprocal's plus that for ``n < 0``.
        """
        if isinstance(exponent, bool) or not float(exponent).is_integer():
            raise TypeError(f"exponent must be an integer, got {exponent!r} (use exp and log)")
        n = int(exponent)
        if n in (0, 1):
            self._require_arith()
            if n == 1:
                return self._wrap(self._share.copy())
            ones = np.zeros_like(self._share)
            return self._wrap(ones + self._encode_public(1.0) if self.session.rank == 0 else ones)
        if n > 0:
            circ, x = self._circuit()
            return self._finish(circ, pow_nodes(circ, x, n))
        cfg = self._approx
        low, high = cfg.reciprocal_range
        self._debug_range("pow", low, high, absolute=True)
        base = self._clamped(-high, high)
        circ, x = base._circuit()
        sign = circ.lin([(-2, circ.input(base._ltz(base._lifted()), 0))], 1.0)
        k = reciprocal_guess_levels(low, high, cfg.reciprocal_iterations, _RECIPROCAL_TOLERANCE)
        y = reciprocal_nodes(circ, x, low, high, cfg.reciprocal_iterations, k, sign=sign)
        return base._finish(circ, pow_nodes(circ, y, -n))

    def __pow__(self, exponent: int) -> MPCTensor:
        return self.pow(exponent)

    # -- sigmoid, tanh, erf, gelu --------------------------------------------------------------
    def _chebyshev_fn(
        self, name: str, fn: Callable[[F64], F64], bound: float, degree: int, parity: int
    ) -> MPCTensor:
        self._debug_range(name, -bound, bound)
        x = self._clamped(-bound, bound)
        circ, node = x._circuit()
        return x._finish(circ, cheb_function(circ, node, fn, -bound, bound, degree, parity))

    def sigmoid(self) -> MPCTensor:
        """``1 / (1 + e^-x)``: the degree-31 Chebyshev interpolant on ``[-R, R]``
        (``sigmoid_range``, default 12; constant and odd part), 5 levels (baby steps ``T_1 ..
        T_8``, giant steps ``T_8``, ``T_16``; 11 products), no comparison.
        Range ``[-12, 12]``. Outside: undefined, the polynomial diverges at once (-15 at 13;
        ``saturate``: clamped, then 0 or 1 within 1e-4).
        Error: absolute <= 2e-3 on ``[-10, 10]``; measured 2.2e-4 (2 parties), 1.9e-4 (3)
        [2.6e-3].
        Cost: rounds 5 / 11 / 6 [23]; ring elements per element per peer 17 / 30 / 46.
        """
        cfg = self._approx
        return self._chebyshev_fn("sigmoid", _sigmoid, cfg.sigmoid_range, cfg.sigmoid_degree, 1)

    def tanh(self) -> MPCTensor:
        """``tanh x``: the degree-63 Chebyshev interpolant on ``[-R, R]`` (``tanh_range``,
        default 12; odd), 6 levels, 16 products.
        Range ``[-12, 12]``. Outside: undefined (``saturate``: clamped, then +-1 within 2e-4).
        Error: absolute <= 2e-3 on ``[-10, 10]``; measured 6.3e-4 / 4.5e-4 [4.9e-3].
        Cost: rounds 6 / 13 / 7; ring elements per element per peer 21 / 36 / 55.
        """
        cfg = self._approx
        return self._chebyshev_fn("tanh", np.tanh, cfg.tanh_range, cfg.tanh_degree, 1)

    def erf(self) -> MPCTensor:
        """Gauss error function: the degree-15 Chebyshev interpolant on ``[-4, 4]``
        (``erf_range``; odd), 4 levels, 7 products.
        Range ``[-4, 4]``. Outside: undefined (``saturate``: clamped, then +-1 within 2e-3).
        Error: absolute <= 0.01 on ``[-3, 3]``; measured 1.9e-3 [fails past ``|x| = 2``].
        Cost: rounds 4 / 9 / 5; ring elements per element per peer 11 / 19 / 29.
        """
        cfg = self._approx
        return self._chebyshev_fn("erf", _erf, cfg.erf_range, cfg.erf_degree, 1)

    def gelu(self) -> MPCTensor:
        """GELU ``x Phi(x) = x (1 + erf(x / sqrt 2)) / 2`` (the exact form, not the tanh one):
        the degree-32 Chebyshev interpolant on ``[-8, 8]`` (``gelu_range``), 5 levels.
        Range ``[-8, 8]``. Outside: undefined (``saturate``: ``gelu(clamp(x)) + relu(x - 8)``,
        exact to 1e-4 beyond the range).
        Error: absolute <= 0.01 on ``[-6, 6]``; measured 4.3e-4 / 2.3e-4.
        Cost: rounds 5 / 11 / 6; ring elements per element per peer 17 / 30 / 46.
        """
        cfg = self._approx
        bound = cfg.gelu_range
        if not cfg.saturate:
            return self._chebyshev_fn("gelu", _gelu, bound, cfg.gelu_degree, -1)
        self._debug_range("gelu", -bound, bound)
        x = self._lifted().reshape(-1)
        low = np.negative(self._minus(x, -bound))  # -bound - x
        relus = self._relu_flat(np.concatenate([low, self._minus(x, bound)]))
        above = relus[x.size :]
        clamped = self._wrap((x + relus[: x.size] - above).reshape(self.shape))
        circ, node = clamped._circuit()
        out = cheb_function(circ, node, _gelu, -bound, bound, cfg.gelu_degree)
        gelu_c = clamped._finish(circ, out)
        return self._wrap(gelu_c._share + above.reshape(self.shape))

    # -- softmax ---------------------------------------------------------------------------
    def _shifted(self, axis: int) -> tuple[MPCTensor, float]:
        """``u = x - max`` along ``axis`` (``x - softmax_shift`` when set) and the least value
        of ``sum e^u``; with ``saturate``, ``u`` clamped below at ``exp_range[0]``."""
        cfg = self._approx
        if cfg.softmax_shift is None:
            top = self._tournament(axis, True)
            u, least = self._wrap(self._share - np.expand_dims(top._share, axis)), 1.0
        else:
            u, least = self._wrap(self._minus(self._share, cfg.softmax_shift)), math.exp(-4.0)
        u._debug_range("softmax", cfg.exp_range[0], 0.0)
        return u._clamped(cfg.exp_range[0], None), least

    def _exp_sum(self, axis: int, least: float) -> tuple[Circuit, int, int, float, float]:
        """For ``self = u``: a circuit with ``e = exp(u)`` and ``S = sum e`` along ``axis``, and
        the range ``[low, high]`` of ``S`` the reciprocal or log is built for."""
        cfg = self._approx
        circ, node = self._circuit()
        e = exp_nodes(circ, node, *cfg.exp_range, cfg.exp_degree, cfg.exp_squarings)
        total = circ.map(e, lambda s: np.sum(s, axis=axis, keepdims=True, dtype=np.uint64))
        return circ, e, total, 0.9 * least, 1.1 * self.shape[axis]

    def softmax(self, dim: int | str) -> MPCTensor:
        """``e^x / sum e^x`` along ``dim``.

        Algorithm: ``u = x - max`` (a tournament of ``ceil(log2 n)`` relu levels; with
        ``softmax_shift = c``, ``u = x - c`` instead, no comparison), ``e = exp(u)``
        (:meth:`exp`), ``S = sum e`` in ``[1, n]``, and ``e / S`` by the reciprocal of
        :meth:`reciprocal` built for ``[0.9, 1.1 n]`` (guess degree from ``n``: ``k = 7`` for
        ``n = 1000``, 1 Newton step) with ``e`` folded into its last product, all in one
        circuit.
        Range: ``max - x <= 32`` along ``dim`` (``-exp_range[0]``; beyond, that element's
        ``e^u`` is undefined, ``saturate`` clamps ``u``); with ``softmax_shift = c``:
        ``c - 4 <= max(x) <= c`` along ``dim`` (undefined otherwise).
        Error: absolute <= 2e-3; measured 3e-5 for rows of 1000 logits in ``[-10, 10]``
        (uniform, one dominant, all equal) [CrypTen: 2e-3].
        Cost for ``n = 1000``: rounds 55 / 71 / 46, of which the tournament takes 40 / 40 /
        30 (with ``softmax_shift``: 18 / 37 / 19) [137]; ring elements per element per peer
        19 / 29 / 42, of which the tournament's 4 / 4 / 3.
        """
        self._require_arith()
        axis = self._axis(dim)
        u, least = self._shifted(axis)
        circ, e, total, low, high = u._exp_sum(axis, least)
        cfg = self._approx
        k = reciprocal_guess_levels(low, high, cfg.reciprocal_iterations, _SOFTMAX_TOLERANCE)
        out = reciprocal_nodes(circ, total, low, high, cfg.reciprocal_iterations, k, numerator=e)
        return u._finish(circ, out)

    def log_softmax(self, dim: int | str) -> MPCTensor:
        """``x - max - log(sum e^(x - max))`` along ``dim``: ``u`` and ``S = sum e^u`` as in
        :meth:`softmax`, then ``u - log S`` with :meth:`log`'s algorithm built for ``S`` in
        ``[0.9, 1.1 n]`` (comparisons on the ``n``-fold smaller sums only).
        Range as :meth:`softmax`. Error: absolute <= 0.01; measured 1.2e-4 for 1000 logits.
        Cost for ``n = 1000``: rounds 53 / 65 / 45 (with ``softmax_shift``: 13 / 25 / 15).
        """
        self._require_arith()
        axis = self._axis(dim)
        u, least = self._shifted(axis)
        circ, _, total, low, high = u._exp_sum(axis, least)
        (sums,) = circ.run(self.session, [total])
        circ2, node = u._wrap(sums)._log_nodes(low, high)
        (log_sums,) = circ2.run(self.session, [node])
        return u._wrap(u._share - log_sums)
