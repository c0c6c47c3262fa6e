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

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from crypten_lite.config import ApproxConfig
from crypten_lite.protocols import approximations as approx
from crypten_lite.tensor._stubs import TensorStubs

if TYPE_CHECKING:
    from crypten_lite.tensor.core import MPCTensor

__all__ = ["ApproxMixin"]

U64 = npt.NDArray[np.uint64]


class ApproxMixin(TensorStubs):
    """Mixed into MPCTensor (see module doc): thin wrappers over
    :mod:`crypten_lite.protocols.approximations`."""

    __slots__ = ()

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def _approx(self) -> ApproxConfig:
        return self.session.config.approx

    def _out(self, share: U64, shape: tuple[int, ...] | None = None) -> MPCTensor:
        """Wrap a protocol's (at least 1-d) result in this tensor's shape (or ``shape``)."""
        return self._wrap(share.reshape(self.shape if shape is None else shape))

    def _arith(self) -> U64:
        self._require_arith()
        return self._share

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
        return self._out(approx.exp(self.session, self._arith(), self.precision, self._approx))

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
        return self._out(approx.log(self.session, self._arith(), self.precision, self._approx))

    def log_with_reciprocal(self) -> tuple[MPCTensor, MPCTensor]:
        """``(log x, 1 / x)`` (``1/x`` is log's derivative, for autograd) from one
        normalization and one circuit: the rounds of :meth:`log` plus one (8 / 14 with 2 / 3
        parties; a separate reciprocal costs 11 / 20). Range as :meth:`log`; ``1/x``:
        relative error <= 1e-2 on ``scale_range``, measured 2.9e-3 (degree-8 interpolant of
        ``1/z`` on ``[1, 4]``)."""
        log_x, inv_x = approx.log_with_reciprocal(
            self.session, self._arith(), self.precision, self._approx
        )
        return self._out(log_x), self._out(inv_x)

    # -- roots -----------------------------------------------------------------------------
    def sqrt(self) -> MPCTensor:
        """Square root: ``x 2^-m q(z)`` with the normalization of :meth:`log` and ``q`` the
        degree-8 Chebyshev interpolant of ``z^-1/2`` on ``[1, 4]`` (so ``sqrt(0) = 0``).
        Range ``scale_range`` (default ``[2^-8, 2^8]``). Outside: below, the error stays
        under 7e-3 down to 0; above 256 and for ``x < 0`` undefined (``saturate``: clamped
        above).
        Error: absolute <= 0.01 on ``[0.01, 100]``; measured 4e-4 [0.040].
        Cost: rounds 8 / 14 / 9; ring elements per element per peer 23 / 32 / 42.
        """
        return self._out(approx.sqrt(self.session, self._arith(), self.precision, self._approx))

    def sqrt_with_inverse(self) -> tuple[MPCTensor, MPCTensor]:
        """``(sqrt x, 1 / sqrt x)`` from one circuit (for sqrt's derivative): the rounds of
        :meth:`sqrt`; range and errors of :meth:`sqrt` and :meth:`inv_sqrt`."""
        root, inverse = approx.sqrt_with_inverse(
            self.session, self._arith(), self.precision, self._approx
        )
        return self._out(root), self._out(inverse)

    def inv_sqrt(self) -> MPCTensor:
        """``1 / sqrt(x)``: ``2^-m q(z)`` (see :meth:`sqrt`).
        Range ``scale_range`` (default ``[2^-8, 2^8]``). Outside: below, saturates (28 at
        1e-3, 38 at 0); above and ``x <= 0`` undefined (``saturate``: clamped).
        Error: relative <= 1% on ``[0.1, 100]``; measured 1.6e-4.
        Cost: rounds 8 / 14 / 9; ring elements per element per peer 22 / 30 / 39.
        """
        share = approx.inv_sqrt(self.session, self._arith(), self.precision, self._approx)
        return self._out(share)

    # -- reciprocal, division, pow -----------------------------------------------------------
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
        share = approx.reciprocal(
            self.session, self._arith(), self.precision, self._approx, all_pos=all_pos
        )
        return self._out(share)

    def _div_private(self, divisor: MPCTensor) -> MPCTensor:
        """``self / divisor`` for a private divisor: :meth:`reciprocal` with ``self`` folded
        into its last product (same rounds; divisor range and relative error as there, plus
        one unit of ``2^-f``)."""
        self._check_other(divisor)
        shape = tuple(np.broadcast_shapes(self.shape, divisor.shape))  # before any triple
        share = approx.reciprocal(
            self.session, divisor.share, divisor.precision, self._approx, numerator=self._share
        )
        return self._out(share, shape)

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
        share = approx.power(
            self.session, self._arith(), self.precision, self._approx, int(exponent)
        )
        return self._out(share)

    def __pow__(self, exponent: int) -> MPCTensor:
        return self.pow(exponent)

    # -- sigmoid, tanh, erf, gelu --------------------------------------------------------------
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
        share = approx.sigmoid(self.session, self._arith(), self.precision, self._approx)
        return self._out(share)

    def tanh(self) -> MPCTensor:
        """``tanh x``: the degree-63 Chebyshev interpolant on ``[-R, R]`` (``tanh_range``,
        default 12; odd), 6 levels, 16 products.
        Range ``[-12, 12]``. Outside: undefined (``saturate``: clamped, then +-1 within 2e-4).
        Error: absolute <= 2e-3 on ``[-10, 10]``; measured 6.3e-4 / 4.5e-4 [4.9e-3].
        Cost: rounds 6 / 13 / 7; ring elements per element per peer 21 / 36 / 55.
        """
        return self._out(approx.tanh(self.session, self._arith(), self.precision, self._approx))

    def erf(self) -> MPCTensor:
        """Gauss error function: the degree-15 Chebyshev interpolant on ``[-4, 4]``
        (``erf_range``; odd), 4 levels, 7 products.
        Range ``[-4, 4]``. Outside: undefined (``saturate``: clamped, then +-1 within 2e-3).
        Error: absolute <= 0.01 on ``[-3, 3]``; measured 1.9e-3 [fails past ``|x| = 2``].
        Cost: rounds 4 / 9 / 5; ring elements per element per peer 11 / 19 / 29.
        """
        return self._out(approx.erf(self.session, self._arith(), self.precision, self._approx))

    def gelu(self) -> MPCTensor:
        """GELU ``x Phi(x) = x (1 + erf(x / sqrt 2)) / 2`` (the exact form, not the tanh one):
        the degree-32 Chebyshev interpolant on ``[-8, 8]`` (``gelu_range``), 5 levels.
        Range ``[-8, 8]``. Outside: undefined (``saturate``: ``gelu(clamp(x)) + relu(x - 8)``,
        exact to 1e-4 beyond the range).
        Error: absolute <= 0.01 on ``[-6, 6]``; measured 4.3e-4 / 2.3e-4.
        Cost: rounds 5 / 11 / 6; ring elements per element per peer 17 / 30 / 46.
        """
        return self._out(approx.gelu(self.session, self._arith(), self.precision, self._approx))

    def gelu_derivative(self) -> MPCTensor:
        """``Phi(x) + x phi(x)``, gelu's derivative (for autograd): the degree-32 Chebyshev
        interpolant on ``[-8, 8]``, the cost of :meth:`gelu` (5 / 11 / 6 rounds).
        Error: absolute <= 0.01 on ``[-6, 6]``; measured 3.5e-4 / 2.7e-4. Outside: undefined
        (``saturate``: clamped first, then 0 or 1)."""
        return self._out(
            approx.gelu_derivative(self.session, self._arith(), self.precision, self._approx)
        )

    # -- softmax ---------------------------------------------------------------------------
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
        if not self.shape:  # a 0-d tensor: softmax of one element is 1 (CrypTen)
            self._axis(dim)
            one = self._encode_public(np.ones(()))
            return self._wrap(one if self.session.rank == 0 else np.zeros_like(one))
        axis = self._axis(dim)
        return self._out(
            approx.softmax(self.session, self._share, self.precision, self._approx, axis)
        )

    def log_softmax(self, dim: int | str) -> MPCTensor:
        """``x - max - log(sum e^(x - max))`` along ``dim``: ``u`` and ``S = sum e^u`` as in
        :meth:`softmax`, then ``u - log S`` with :meth:`log`'s algorithm built for ``S`` in
        ``[0.9, 1.1 n]`` (comparisons on the ``n``-fold smaller sums only).
        Range as :meth:`softmax`. Error: absolute <= 0.01; measured 1.2e-4 for 1000 logits.
        Cost for ``n = 1000``: rounds 53 / 65 / 45 (with ``softmax_shift``: 13 / 25 / 15).
        """
        self._require_arith()
        if not self.shape:  # a 0-d tensor: log_softmax of one element is 0 (CrypTen)
            self._axis(dim)
            return self._wrap(np.zeros((), dtype=np.uint64))
        axis = self._axis(dim)
        return self._out(
            approx.log_softmax(self.session, self._share, self.precision, self._approx, axis)
        )
