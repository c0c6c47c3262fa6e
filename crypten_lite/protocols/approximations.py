"""Nonlinear functions on raw fixed-point shares: exp, log, sqrt, inv_sqrt, reciprocal (and
division by a private value), integer pow, sigmoid, tanh, erf, gelu, softmax, log_softmax.

Each function takes the context, a share at ``precision`` fractional bits, the knobs
(:class:`~crypten_lite.config.ApproxConfig`) and returns the result's share, at least 1-d
(a 0-d input comes back as shape ``(1,)``). Every function is one circuit of
:mod:`crypten_lite.protocols.approx_circuits` (all products of a level in one round);
comparisons appear only in range reductions. The documented ranges, errors and costs are on
the ``MPCTensor`` methods (:mod:`crypten_lite.tensor.approx`); rounds below are for 2
parties.

With ``debug_range_check`` each function first checks its range (:func:`check_range`: 7
rounds, reveals one bit); with ``saturate`` it clamps its input to the range first (4
rounds; 3 with ``min_rounds``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from crypten_lite.config import ApproxConfig
from crypten_lite.encoding import FixedPointEncoder
from crypten_lite.errors import ShareError
from crypten_lite.protocols import comparison, maxima
from crypten_lite.protocols.approx_circuits import (
    cheb_function,
    exp_nodes,
    pow_nodes,
    power_of_four_nodes,
    reciprocal_guess_levels,
    reciprocal_nodes,
    scale_thresholds,
)
from crypten_lite.protocols.context import ProtocolContext, open_arith
from crypten_lite.protocols.polynomial import Circuit

__all__ = [
    "check_range",
    "erf",
    "exp",
    "gelu",
    "gelu_derivative",
    "inv_sqrt",
    "log",
    "log_softmax",
    "log_with_reciprocal",
    "power",
    "reciprocal",
    "saturated",
    "sigmoid",
    "softmax",
    "sqrt",
    "sqrt_with_inverse",
    "tanh",
]

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


# -- plumbing ------------------------------------------------------------------------------
def _lift(share: U64) -> U64:
    """The share, 0-d as shape (1,) (array arithmetic wraps silently)."""
    return share.reshape(1) if share.ndim == 0 else share


def _add_public(ctx: ProtocolContext, share: U64, precision: int, value: Any) -> U64:
    """``[x] + value`` for a public number (party 0 adds its encoding)."""
    encoded = FixedPointEncoder(precision).encode(np.asarray(value))
    return share + encoded if ctx.rank == 0 else share.copy()


def _minus(ctx: ProtocolContext, share: U64, precision: int, value: Any) -> U64:
    """``[x] - value`` for a public number (party 0 subtracts its encoding)."""
    encoded = FixedPointEncoder(precision).encode(np.asarray(value))
    return share - encoded if ctx.rank == 0 else share.copy()


def _ltz(ctx: ProtocolContext, shares: U64) -> U64:
    """``[v < 0]`` (0/1 integers) for every element of ``shares``, one call: 3 rounds."""
    return comparison.ltz(ctx, np.ascontiguousarray(shares).reshape(-1)).reshape(shares.shape)


def _circuit(ctx: ProtocolContext, x: U64, precision: int) -> tuple[Circuit, int]:
    circ = Circuit(precision, fuse=ctx.config.min_rounds)
    return circ, circ.input(_lift(x), precision)


def _run(ctx: ProtocolContext, circ: Circuit, node: int) -> U64:
    (out,) = circ.run(ctx, [node])
    return out


def check_range(
    ctx: ProtocolContext,
    x: U64,
    precision: int,
    name: str,
    low: float | None,
    high: float | None,
    *,
    absolute: bool = False,
    reason: str = "an input lies outside the documented range",
    hint: str = "see SessionConfig.approx",
) -> None:
    """With ``debug_range_check``: raise :class:`ShareError` naming ``name`` (and ``reason``,
    ``hint``) unless every element lies in ``[low, high]`` (``|x|`` in it when ``absolute``).
    Reveals one bit (whether some element is outside); 7 rounds. Nothing without
    ``debug_range_check``."""
    if not ctx.config.debug_range_check:
        return
    flat = _lift(x).reshape(-1)
    diffs: list[U64] = []  # ltz of each is 1 exactly for the violations it detects
    sign: list[int] = []
    if high is not None:
        diffs.append(np.negative(_minus(ctx, flat, precision, high)))  # x > high
        sign.append(1)
        if absolute:
            diffs.append(_minus(ctx, flat, precision, -high))  # x < -high
            sign.append(1)
    if low is not None:
        diffs.append(_minus(ctx, flat, precision, low))  # x < low
        sign.append(1)
        if absolute:
            diffs.append(_minus(ctx, flat, precision, -low))  # minus [x < -low]: [-low <= x < low]
            sign.append(-1)
    bits = _ltz(ctx, np.stack([np.broadcast_to(d, flat.shape) for d in diffs]))
    count = np.sum(bits * np.array(sign, dtype=np.int64).view(np.uint64)[:, None], dtype=np.uint64)
    clear = comparison.eqz(ctx, np.asarray(count, dtype=np.uint64).reshape(1))
    (flag,) = open_arith(ctx, clear)
    if int(flag[0]) != 1:
        if absolute and low is None:
            span = f"|x| <= {high:g}"
        else:
            span = f"|x| in [{low}, {high}]" if absolute else f"[{low}, {high}]"
        raise ShareError(f"{name}: {reason} {span} (debug_range_check; {hint})")


def saturated(
    ctx: ProtocolContext,
    x: U64,
    precision: int,
    cfg: ApproxConfig,
    low: float | None,
    high: float | None,
) -> U64:
    """With ``cfg.saturate``: ``x`` clamped to ``[low, high]`` (:func:`maxima.clamp`: 4 rounds,
    3 with ``min_rounds``); else ``x`` itself."""
    if not cfg.saturate:
        return x
    x = _lift(x)
    below = None if low is None else _add_public(ctx, np.negative(x), precision, low)
    above = None if high is None else _minus(ctx, x, precision, high)
    return maxima.clamp(ctx, x, below, above)


# -- exp and log ---------------------------------------------------------------------------
def exp(ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig) -> U64:
    """``e^x`` as ``q(x)^(2^s)`` (see ``MPCTensor.exp``). ``ceil(log2 d) + s`` rounds."""
    lo, hi = cfg.exp_range
    x = _lift(x)
    check_range(ctx, x, precision, "exp", lo, hi)
    circ, node = _circuit(ctx, saturated(ctx, x, precision, cfg, lo, hi), precision)
    return _run(ctx, circ, exp_nodes(circ, node, lo, hi, cfg.exp_degree, cfg.exp_squarings))


def _pow4(
    ctx: ProtocolContext, x: U64, precision: int, low: float, high: float
) -> tuple[Circuit, int, list[int], list[int]]:
    """Comparisons ``b_k = [x >= 4^k]`` for the powers of four spanning ``[low, high]`` (one
    batched call, 3 rounds) and a circuit holding ``x`` and the bits."""
    ks = scale_thresholds(low, high)
    lifted = _lift(x)
    below = _ltz(ctx, np.stack([_minus(ctx, lifted, precision, 4.0**k) for k in ks]))
    bits = np.negative(below)
    if ctx.rank == 0:
        bits = bits + np.uint64(1)
    circ, node = _circuit(ctx, lifted, precision)
    return circ, node, ks, [circ.input(b, 0) for b in bits]


def _log_nodes(
    ctx: ProtocolContext, x: U64, precision: int, degree: int, low: float, high: float
) -> tuple[Circuit, int]:
    circ, node, ks, bits = _pow4(ctx, x, precision, low, high)
    z = circ.mul(node, power_of_four_nodes(circ, bits, ks, lambda m: 4.0**-m))
    log_z = cheb_function(circ, z, np.log, 1.0, 4.0, degree)
    m_ln4 = power_of_four_nodes(circ, bits, ks, lambda m: m * _LN4)
    return circ, circ.lin([(1, log_z), (1, m_ln4)])


def log(ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig) -> U64:
    """``ln x``: normalization by powers of four (3 rounds), then ``m ln 4 + p(z)``. 7
    rounds."""
    low, high = cfg.scale_range
    x = _lift(x)
    check_range(ctx, x, precision, "log", low, high)
    clamped = saturated(ctx, x, precision, cfg, low, high)
    return _run(ctx, *_log_nodes(ctx, clamped, precision, cfg.log_degree, low, high))


def log_with_reciprocal(
    ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig
) -> tuple[U64, U64]:
    """``(ln x, 1 / x)`` from ONE normalization: ``1/x = 4^-m q(z)`` with ``q`` the Chebyshev
    interpolant of ``1/z`` on ``[1, 4]`` (degree ``log_degree``) beside ``log``'s, in the same
    product levels, and one more for the product with ``4^-m``: 8 rounds (:func:`log`: 7;
    a separate reciprocal: 11)."""
    low, high = cfg.scale_range
    x = _lift(x)
    check_range(ctx, x, precision, "log", low, high)
    clamped = saturated(ctx, x, precision, cfg, low, high)
    circ, node, ks, bits = _pow4(ctx, clamped, precision, low, high)
    inv_scale = power_of_four_nodes(circ, bits, ks, lambda m: 4.0**-m)
    z = circ.mul(node, inv_scale)
    log_z = cheb_function(circ, z, np.log, 1.0, 4.0, cfg.log_degree)
    m_ln4 = power_of_four_nodes(circ, bits, ks, lambda m: m * _LN4)
    inv_z = cheb_function(circ, z, lambda v: 1.0 / v, 1.0, 4.0, cfg.log_degree)
    log_x, inv_x = circ.run(ctx, [circ.lin([(1, log_z), (1, m_ln4)]), circ.mul(inv_z, inv_scale)])
    return log_x, inv_x


def sqrt_with_inverse(
    ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig
) -> tuple[U64, U64]:
    """``(sqrt x, 1 / sqrt x)`` from one circuit (``sqrt = x 2^-m q(z)``, ``inv_sqrt = 2^-m
    q(z)``): 8 rounds, as :func:`sqrt`."""
    low, high = cfg.scale_range
    x = _lift(x)
    check_range(ctx, x, precision, "sqrt", low, high)
    x_in = saturated(ctx, x, precision, cfg, low, high)
    circ, node, ks, bits = _pow4(ctx, x_in, precision, low, high)
    z = circ.mul(node, power_of_four_nodes(circ, bits, ks, lambda m: 4.0**-m))
    q = cheb_function(circ, z, lambda v: v**-0.5, 1.0, 4.0, cfg.sqrt_degree)
    half = power_of_four_nodes(circ, bits, ks, lambda m: 2.0**-m)
    inverse = circ.mul(half, q)
    root, inv = circ.run(ctx, [circ.mul(circ.mul(node, half), q), inverse])
    return root, inv


# -- roots -------------------------------------------------------------------------------
def _root(
    ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig, name: str, inverse: bool
) -> U64:
    low, high = cfg.scale_range
    x = _lift(x)
    check_range(ctx, x, precision, name, low, high)
    x_in = saturated(ctx, x, precision, cfg, low if inverse else None, high)
    circ, node, ks, bits = _pow4(ctx, x_in, precision, low, high)
    z = circ.mul(node, power_of_four_nodes(circ, bits, ks, lambda m: 4.0**-m))
    q = cheb_function(circ, z, lambda v: v**-0.5, 1.0, 4.0, cfg.sqrt_degree)
    half = power_of_four_nodes(circ, bits, ks, lambda m: 2.0**-m)
    scaled = half if inverse else circ.mul(node, half)  # 2^-m, or x 2^-m = 2^m z
    return _run(ctx, circ, circ.mul(scaled, q))


def sqrt(ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig) -> U64:
    """``sqrt x = x 2^-m q(z)``. 8 rounds."""
    return _root(ctx, x, precision, cfg, "sqrt", inverse=False)


def inv_sqrt(ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig) -> U64:
    """``1 / sqrt x = 2^-m q(z)``. 8 rounds."""
    return _root(ctx, x, precision, cfg, "inv_sqrt", inverse=True)


# -- reciprocal, division, pow -------------------------------------------------------------
def _sign_node(ctx: ProtocolContext, circ: Circuit, x: U64) -> int:
    """``s = 1 - 2 [x < 0]`` as an integer node (one comparison: 3 rounds)."""
    return circ.lin([(-2, circ.input(_ltz(ctx, _lift(x)), 0))], 1.0)


def reciprocal(
    ctx: ProtocolContext,
    x: U64,
    precision: int,
    cfg: ApproxConfig,
    *,
    all_pos: bool = False,
    numerator: U64 | None = None,
) -> U64:
    """``numerator / x`` (``1 / x`` when None; shapes broadcast): sign (3 rounds, none with
    ``all_pos``), optimal polynomial guess and Newton steps, ``numerator`` folded into the
    last product. 11 rounds (8 with ``all_pos``)."""
    low, high = cfg.reciprocal_range
    x = _lift(x)
    check_range(ctx, x, precision, "reciprocal", low, high, absolute=not all_pos)
    divisor = saturated(ctx, x, precision, cfg, None if all_pos else -high, high)
    circ, node = _circuit(ctx, divisor, precision)
    sign = None if all_pos else _sign_node(ctx, circ, divisor)
    num = None if numerator is None else circ.input(_lift(numerator), precision)
    iters = cfg.reciprocal_iterations
    k = reciprocal_guess_levels(low, high, iters, _RECIPROCAL_TOLERANCE)
    return _run(
        ctx, circ, reciprocal_nodes(circ, node, low, high, iters, k, sign=sign, numerator=num)
    )


def power(ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig, n: int) -> U64:
    """``x^n`` for an integer ``n``: ``ceil(log2 n)`` product levels; negative ``n`` on the
    reciprocal (one circuit); ``n`` in ``{0, 1}`` local."""
    x = _lift(x)
    if n == 1:
        return x.copy()
    if n == 0:
        return _add_public(ctx, np.zeros_like(x), precision, 1.0)
    if n > 0:
        circ, node = _circuit(ctx, x, precision)
        return _run(ctx, circ, pow_nodes(circ, node, n))
    low, high = cfg.reciprocal_range
    check_range(ctx, x, precision, "pow", low, high, absolute=True)
    base = saturated(ctx, x, precision, cfg, -high, high)
    circ, node = _circuit(ctx, base, precision)
    sign = _sign_node(ctx, circ, base)
    iters = cfg.reciprocal_iterations
    k = reciprocal_guess_levels(low, high, iters, _RECIPROCAL_TOLERANCE)
    y = reciprocal_nodes(circ, node, low, high, iters, k, sign=sign)
    return _run(ctx, circ, pow_nodes(circ, y, -n))


# -- sigmoid, tanh, erf, gelu --------------------------------------------------------------
def _chebyshev_fn(
    ctx: ProtocolContext,
    x: U64,
    precision: int,
    cfg: ApproxConfig,
    name: str,
    fn: Callable[[F64], F64],
    bound: float,
    degree: int,
    parity: int,
) -> U64:
    x = _lift(x)
    check_range(ctx, x, precision, name, -bound, bound)
    circ, node = _circuit(ctx, saturated(ctx, x, precision, cfg, -bound, bound), precision)
    return _run(ctx, circ, cheb_function(circ, node, fn, -bound, bound, degree, parity))


def sigmoid(ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig) -> U64:
    """``1 / (1 + e^-x)``: one Chebyshev interpolant (odd about 1/2). 5 rounds."""
    bound, degree = cfg.sigmoid_range, cfg.sigmoid_degree
    return _chebyshev_fn(ctx, x, precision, cfg, "sigmoid", _sigmoid, bound, degree, 1)


def tanh(ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig) -> U64:
    """``tanh x``: one odd Chebyshev interpolant. 6 rounds."""
    bound, degree = cfg.tanh_range, cfg.tanh_degree
    return _chebyshev_fn(ctx, x, precision, cfg, "tanh", np.tanh, bound, degree, 1)


def erf(ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig) -> U64:
    """Gauss error function: one odd Chebyshev interpolant. 4 rounds."""
    bound, degree = cfg.erf_range, cfg.erf_degree
    return _chebyshev_fn(ctx, x, precision, cfg, "erf", _erf, bound, degree, 1)


def gelu(ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig) -> U64:
    """``x Phi(x)``: one Chebyshev interpolant on ``[-R, R]`` (5 rounds); with ``saturate``
    ``gelu(clamp(x)) + relu(x - R)``, both relus in one call (4 more rounds)."""
    bound = cfg.gelu_range
    if not cfg.saturate:
        return _chebyshev_fn(ctx, x, precision, cfg, "gelu", _gelu, bound, cfg.gelu_degree, -1)
    check_range(ctx, x, precision, "gelu", -bound, bound)
    lifted = _lift(x)
    flat = lifted.reshape(-1)
    low = np.negative(_minus(ctx, flat, precision, -bound))  # -bound - x
    relus = maxima.relu(ctx, np.concatenate([low, _minus(ctx, flat, precision, bound)]))
    above = relus[flat.size :].reshape(lifted.shape)
    clamped = (flat + relus[: flat.size]).reshape(lifted.shape) - above
    circ, node = _circuit(ctx, clamped, precision)
    out = _run(ctx, circ, cheb_function(circ, node, _gelu, -bound, bound, cfg.gelu_degree))
    return out + above


def _gelu_derivative(x: F64) -> F64:
    return np.asarray(
        0.5 * (1.0 + _erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    )


def gelu_derivative(ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig) -> U64:
    """``d gelu / dx = Phi(x) + x phi(x)``: one Chebyshev interpolant on ``[-R, R]`` of
    gelu's degree (constant + odd part): 5 rounds, as :func:`gelu` (``saturate``: ``x``
    clamped first, where the derivative is 0 or 1 within 1e-4)."""
    bound = cfg.gelu_range
    return _chebyshev_fn(
        ctx, x, precision, cfg, "gelu", _gelu_derivative, bound, cfg.gelu_degree, 1
    )


# -- softmax -------------------------------------------------------------------------------
def _shifted(
    ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig, axis: int
) -> tuple[U64, float]:
    """``u = x - max`` along ``axis`` (``x - softmax_shift`` when set) and the least value of
    ``sum e^u``; with ``saturate``, ``u`` clamped below at ``exp_range[0]``."""
    if cfg.softmax_shift is None:
        top = maxima.tournament(ctx, x, axis, True)
        u, least = x - np.expand_dims(top, axis), 1.0
    else:
        u, least = _minus(ctx, x, precision, cfg.softmax_shift), math.exp(-4.0)
    check_range(ctx, u, precision, "softmax", cfg.exp_range[0], 0.0)
    return saturated(ctx, u, precision, cfg, cfg.exp_range[0], None), least


def _exp_sum(
    ctx: ProtocolContext, u: U64, precision: int, cfg: ApproxConfig, axis: int, least: float
) -> tuple[Circuit, int, int, float, float]:
    """A circuit with ``e = exp(u)`` and ``S = sum e`` along ``axis``, and the range ``[low,
    high]`` of ``S`` the reciprocal or log is built for."""
    circ, node = _circuit(ctx, u, precision)
    e = exp_nodes(circ, node, *cfg.exp_range, cfg.exp_degree, cfg.exp_squarings)
    total = circ.map(e, lambda s: np.sum(s, axis=axis, keepdims=True, dtype=np.uint64))
    return circ, e, total, 0.9 * least, 1.1 * u.shape[axis]


def softmax(ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig, axis: int) -> U64:
    """``e^u / sum e^u`` along ``axis`` (``x`` at least 1-d; ``u = x - max``: a tournament),
    exp, sum and reciprocal in one circuit."""
    u, least = _shifted(ctx, x, precision, cfg, axis)
    circ, e, total, low, high = _exp_sum(ctx, u, precision, cfg, axis, least)
    iters = cfg.reciprocal_iterations
    k = reciprocal_guess_levels(low, high, iters, _SOFTMAX_TOLERANCE)
    return _run(ctx, circ, reciprocal_nodes(circ, total, low, high, iters, k, numerator=e))


def log_softmax(ctx: ProtocolContext, x: U64, precision: int, cfg: ApproxConfig, axis: int) -> U64:
    """``u - log(sum e^u)`` along ``axis``: :func:`softmax`'s ``u`` and sums, then
    :func:`log`'s circuit on the sums."""
    u, least = _shifted(ctx, x, precision, cfg, axis)
    circ, _, total, low, high = _exp_sum(ctx, u, precision, cfg, axis, least)
    sums = _run(ctx, circ, total)
    log_sums = _run(ctx, *_log_nodes(ctx, sums, precision, cfg.log_degree, low, high))
    return u - log_sums
