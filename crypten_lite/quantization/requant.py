"""Requantization in the ring: one public multiplier, one truncation, one batched comparison.

The integer form of ``y = clamp(rint(acc M + bias / s_y), L, H)`` used by the encrypted int8
twin (:mod:`.encrypted`, whose module doc states the protocol and its cost), on shares
(:func:`shared_requant`) and in plaintext (:func:`floor_requant`, :func:`simulate`: exactly
what the shares reveal, for tests and for checking a deployment before encrypting it).
``M = m0 / 2^n`` with ``m0 = rint(M 2^n)``, and the bias enters as ``B = rint(bias / s_y 2^16)``:
``f = floor((acc m0 + B 2^(n-16) + 2^(n-1)) / 2^n)``, then clamped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from crypten_lite import ring
from crypten_lite.errors import QuantizationError
from crypten_lite.nn import Module
from crypten_lite.protocols import beaver, comparison, truncation
from crypten_lite.quantization import quantized as qm
from crypten_lite.session import Session

__all__ = [
    "BIAS_BITS",
    "LayerQParams",
    "RequantParams",
    "budget_bits",
    "floor_requant",
    "requant_shift",
    "shared_requant",
    "simulate",
]

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
#: sub-step bits of the shared bias term ``B = rint(bias / s_y * 2^16)``
BIAS_BITS = 16
MAX_SHIFT = 40


def requant_shift(acc_bound: float, mult_max: float, bias_bound: float, budget_bits: int) -> int:
    """Largest ``n <= 40`` with ``(acc_bound mult_max + bias_bound + 1) 2^n < 2^(budget_bits-1)``
    (all public); QuantizationError if that leaves fewer than 16 bits of multiplier precision."""
    total = acc_bound * mult_max + bias_bound + 1.0
    n = min(MAX_SHIFT, int(np.floor(budget_bits - np.log2(total))) - 1)
    if n < BIAS_BITS:
        raise QuantizationError(
            f"requantization: accumulators up to {acc_bound:.3g} leave a shift of {n} < "
            f"{BIAS_BITS} bits below 2^{budget_bits}; use 3 parties (dealer truncation)"
        )
    return n


def _budget(local_truncation: bool) -> int:
    """``|v| < 2^40`` for 2-party local truncation (SecureML's local truncation, Mohassel and
    Zhang, IEEE S&P 2017), else ``2^60``."""
    return 40 if local_truncation else 60


def budget_bits(session: Session) -> int:
    """The pre-truncation magnitude budget (in bits) of ``session``'s truncation."""
    return _budget(truncation.truncation_method(session) == "local")


@dataclass(frozen=True)
class RequantParams:
    """Public constants of one layer for one input scale."""

    m0: I64  # per output channel
    shift: int
    low: int | None  # clamp bounds on f = q - z_y (None: no clamp on that side)
    high: int | None


@dataclass(frozen=True)
class LayerQParams:
    """The public metadata of a weighted int8 layer that requantization needs."""

    w_scale: F64
    scale: float
    zero_point: int
    quant_min: int
    quant_max: int
    relu_fused: bool
    bias_bound: float  # a power of two >= max |bias / s_y| (0 without bias)
    weight_bound: int  # >= max |w_q - z_w|
    fan_in: int

    @classmethod
    def of(cls, layer: qm._QWeighted) -> LayerQParams:
        """From a plaintext layer (the model owner's side)."""
        ratio = 0.0 if layer.bias is None else float(np.max(np.abs(layer.bias))) / layer.scale
        return cls(
            np.asarray(layer.w_scale, dtype=np.float64),
            layer.scale,
            layer.zero_point,
            layer.quant_min,
            layer.quant_max,
            layer.relu_fused,
            float(2.0 ** np.ceil(np.log2(ratio))) if ratio > 0 else 0.0,
            128 + int(np.max(np.abs(layer.w_zero_point))),
            int(np.prod(layer.weight_q.shape[1:])),
        )

    def requant(
        self, x_scale: float, x_dtype: np.dtype[np.integer], budget: int, saturate: bool
    ) -> RequantParams:
        """``m0``, ``n`` and the clamp bounds for inputs of scale ``x_scale`` / ``x_dtype``."""
        info = np.iinfo(x_dtype)
        acc_bound = float(self.fan_in) * float(int(info.max) - int(info.min)) * self.weight_bound
        mult = x_scale * self.w_scale / self.scale
        n = requant_shift(acc_bound, float(mult.max()), self.bias_bound, budget)
        low = (self.zero_point if self.relu_fused else self.quant_min) - self.zero_point
        return RequantParams(
            np.rint(mult * 2.0**n).astype(np.int64),
            n,
            low if (saturate or self.relu_fused) else None,
            self.quant_max - self.zero_point if saturate else None,
        )


def bias_term(bias: F64, scale: float) -> I64:
    """``B = rint(bias / s_y * 2^16)``, the bias as the twin shares it."""
    return np.rint(bias / scale * 2.0**BIAS_BITS).astype(np.int64)


def floor_requant(acc: I64, bias: I64 | None, r: RequantParams, axis_shape: tuple[int, ...]) -> I64:
    """Plaintext ``clamp(floor((acc m0 + B 2^(n-16) + 2^(n-1)) / 2^n), L, H)`` (exact ints)."""
    v = acc.astype(object) * r.m0.reshape(axis_shape).astype(object) + (1 << (r.shift - 1))
    if bias is not None:
        v = v + bias.reshape(axis_shape).astype(object) * (1 << (r.shift - BIAS_BITS))
    f = np.asarray(v // (1 << r.shift)).astype(np.int64)
    if r.low is not None:
        f = np.maximum(f, r.low)
    if r.high is not None:
        f = np.minimum(f, r.high)
    return f


def shared_requant(
    session: Session,
    acc: U64,
    bias: U64 | None,
    r: RequantParams,
    axis_shape: tuple[int, ...],
    exact: bool,
) -> U64:
    """Steps 2-5 of :mod:`.encrypted`'s protocol on raw shares: shares of the clamped ``f``.
    Rounds: truncation (0 local / 1 dealer) + 3 (one batched ``ltz``) + 1 (clamp product)."""
    rank0 = session.rank == 0
    n = r.shift
    v = acc * ring.from_signed(r.m0).reshape(axis_shape)
    if bias is not None:
        v = v + bias.reshape(axis_shape) * np.uint64(1 << (n - BIAS_BITS))
    if rank0 and exact:  # exact: floor(x + 1/2); stochastic: floor(x) + Bernoulli(frac x)
        v = v + np.uint64(1 << (n - 1))
    shape = v.shape
    t = truncation.truncate(session, v.reshape(-1), n).reshape(shape)
    base, unit = (v, 1 << n) if exact else (t, 1)
    pieces: list[U64] = [v - (t << np.uint64(n))] if exact else []
    for bound in (r.low, None if r.high is None else r.high + 1):
        if bound is not None:
            pieces.append(base - ring.from_signed(bound * unit) if rank0 else base.copy())
    if not pieces:
        return t
    bits = comparison.ltz(session, np.concatenate([p.reshape(-1) for p in pieces]))
    bits = bits.reshape(len(pieces), *shape)
    f = t - bits[0] if exact else t
    rest = list(bits[1:] if exact else bits)
    zero, one = np.uint64(0), np.uint64(1)
    lefts, rights = [], []
    if r.low is not None:
        lefts.append(rest.pop(0))  # [f < L]
        rights.append((ring.from_signed(r.low) if rank0 else zero) - f)
    if r.high is not None:
        below = rest.pop(0)  # [f < H + 1]; [f > H] = 1 - below
        lefts.append((one if rank0 else zero) - below)
        rights.append((ring.from_signed(r.high) if rank0 else zero) - f)
    if not lefts:  # exact rounding of a layer without clamps
        return f
    prods = beaver.mul(session, np.stack(lefts), np.stack(rights))
    out: U64 = f + prods.sum(axis=0, dtype=np.uint64)
    return out


def simulate(model: Module, x: Any, *, local_truncation: bool = True) -> Any:
    """Run a plaintext converted ``Sequential`` ``model`` on float ``x`` with the encrypted
    twin's integer requantization (``exact=True, saturate=True``) instead of float rounding:
    exactly what the twin computes (barring 2-party truncation failures). ``local_truncation``:
    size shifts for the 2^40 budget of 2-party local truncation, else for the dealer's 2^60."""
    budget = _budget(local_truncation)
    out: Any = x
    for mod in _leaves(model):
        if isinstance(mod, qm.QuantizedLinear | qm.QuantizedConv2d) and isinstance(out, qm.QTensor):
            out = _simulate_weighted(mod, out, budget)
        else:
            out = mod(out)
    return out


def _leaves(model: Module) -> list[Module]:
    kids = list(model.children())
    if not kids:
        return [model]
    return [leaf for kid in kids for leaf in _leaves(kid)]


def _simulate_weighted(
    mod: qm.QuantizedLinear | qm.QuantizedConv2d, x: qm.QTensor, budget: int
) -> qm.QTensor:
    r = LayerQParams.of(mod).requant(x.scale, x.dtype, budget, True)
    bias = None if mod.bias is None else bias_term(mod.bias, mod.scale)
    f = floor_requant(mod.accumulate(x), bias, r, mod.axis_shape)
    return qm.QTensor((f + mod.zero_point).astype(mod.dtype), mod.scale, mod.zero_point)
