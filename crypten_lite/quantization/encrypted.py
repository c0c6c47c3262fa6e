"""The encrypted twin of a converted int8 model: ``encrypt_quantized(model, src)``.

What is secret and what is public. Party ``src`` (the model owner) secret-shares, per weighted
layer, the centered int8 weights ``w_q - z_w`` (sign-extended into Z_2^64, precision 0) and the
bias as an integer ``B = round(bias / s_y * 2^16)`` (the bias at 1/65536 of an output step).
Public, broadcast from ``src``: weight scales, output scale / zero point / range and a power-of-
two bound on ``|bias / s_y|`` (used to size the requantization shift). Activations flow as
:class:`SharedQTensor`: integer shares of ``q - z`` (precision 0) with public ``(s, z)``.

Per weighted layer (Linear / Conv2d, optionally ReLU-fused), with ``M[c] = s_x s_w[c] / s_y``:

1. ``acc = (x_q - z_x) @ (w_q - z_w)^T`` (or the convolution): one Beaver product, 1 round,
   exact in the ring (no truncation);
2. ``v = acc * m0[c] + B[c] * 2^(n-16) + 2^(n-1)`` with the public ``m0[c] = rint(M[c] 2^n)``
   (local). ``n`` is the largest shift keeping ``|v| < 2^40`` (2-party local truncation:
   failure probability below 2^-23 per element, SecureML, Mohassel and Zhang 2017) or
   ``2^60`` (dealer
   truncation), capped at 40;
3. ``t = trunc(v, n)`` (0 rounds local, 1 round dealer): ``t = floor(v / 2^n) + b``, ``b`` in
   {0, 1};
4. one batched comparison (3 rounds) gives ``b = [v - t 2^n < 0]`` (so ``f = t - b`` is the
   exact floor: round half up of ``acc M + bias / s_y``), ``[f < L]`` and ``[f > H]`` from ``v``
   with ``L = (z_y if ReLU-fused else qmin) - z_y``, ``H = qmax - z_y``;
5. one Beaver product round applies the clamp: ``f + [f<L](L - f) + [f>H](H - f)``.

So a layer costs 1 + (0|1) + 3 + 1 = 5 rounds (6 with 3+ parties); the comparisons move
``3 x`` (``2 x`` without the upper clamp) the elements of ``ltz``. ``exact=False`` skips ``b`` and
the ``2^(n-1)`` offset (``f = t``: unbiased stochastic rounding, within one step of the exact
result, different in about a quarter of the elements, errors propagate to later layers);
``saturate=False`` skips the clamps that are not a fused ReLU (no comparison at all for a plain
layer with ``exact=False``). Max pooling uses ``MPCTensor.max_pool2d``, a standalone ReLU
``MPCTensor.relu`` (4 rounds), Flatten is local. ``DeQuantize`` is local and deterministic:
``(q - z) * round(s 2^f)`` at precision ``f`` (argmax ties survive).

Versus the plaintext int8 model (float requantization ``rint(real / s_y)``): the result is
identical except where ``real / s_y`` lies within about ``|acc| 2^-n + 2^-17`` of a half-integer
(a truncation "tie"), where it may differ by one step. :func:`simulate` computes the encrypted
result exactly in plaintext (what tests compare against, bit for bit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from crypten_lite.errors import QuantizationError, ShareError
from crypten_lite.nn import Module
from crypten_lite.quantization import quantized as qm
from crypten_lite.quantization.requant import (
    BIAS_BITS,
    LayerQParams,
    bias_term,
    budget_bits,
    requant_shift,
    shared_requant,
    simulate,
)
from crypten_lite.session import Session, current_session
from crypten_lite.tensor import MPCTensor, cryptensor

__all__ = [
    "BIAS_BITS",
    "EncryptedQuantizedModule",
    "SharedQTensor",
    "encrypt_quantized",
    "requant_shift",
    "share_quantized",
    "simulate",
]


@dataclass(frozen=True)
class SharedQTensor:
    """Integer shares of ``q - zero_point`` (``centered``, precision 0) and public qparams."""

    centered: MPCTensor
    scale: float
    zero_point: int
    dtype: np.dtype[np.integer]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.centered.shape

    def reveal(self, dst: int | None = None) -> qm.QTensor | None:
        """The plaintext :class:`QTensor` on every party (or ``dst`` only). 1 round."""
        ring = self.centered.reveal_ring(dst)
        if ring is None:
            return None
        q = ring.view(np.int64) + np.int64(self.zero_point)
        info = np.iinfo(self.dtype)
        inside = q.size == 0 or (int(q.min()) >= info.min and int(q.max()) <= info.max)
        # saturate=False can leave values outside the dtype: int32 then, never a silent wrap
        return qm.QTensor(q.astype(self.dtype if inside else np.int32), self.scale, self.zero_point)

    def __repr__(self) -> str:
        return f"SharedQTensor(shape={self.shape}, scale={self.scale:.6g}, <hidden>)"


class EncryptedQuantizedModule(Module):
    """Base of the encrypted twins (built by :func:`encrypt_quantized`, not directly)."""

    def _shared(self, x: Any) -> SharedQTensor:
        if not isinstance(x, SharedQTensor):
            raise QuantizationError(
                f"{self.describe()}: expected a SharedQTensor, got {type(x).__name__}; share "
                "the input with share_quantized(model, x, src)"
            )
        return x


class _EncQuantize(EncryptedQuantizedModule):
    """Twin of Quantize: holds the model owner's input qparams (broadcast, 1 round) and checks
    a SharedQTensor's (the input owner quantized locally with :func:`share_quantized`)."""

    def __init__(self, plain: qm.Quantize, session: Session, src: int) -> None:
        super().__init__()
        mine = np.array([plain.scale, plain.zero_point, plain.quant_min, plain.quant_max])
        meta = session.comm.broadcast(mine if session.rank == src else None, src)
        scale, zp, lo, hi = (float(v) for v in np.asarray(meta, dtype=np.float64).reshape(4))
        owner = qm.Quantize(scale, int(zp), plain.dtype, int(lo), int(hi))
        self.scale, self.zero_point, self.dtype = owner.scale, owner.zero_point, owner.dtype
        object.__setattr__(self, "plain", owner)  # not a sub-module

    def forward(self, *args: Any) -> Any:
        x = self._shared(args[0])
        if x.scale != self.scale or x.zero_point != self.zero_point:
            raise QuantizationError(
                f"{self.describe()}: input qparams ({x.scale:.6g}, {x.zero_point}) differ from "
                f"the model's ({self.scale:.6g}, {self.zero_point})"
            )
        return x


class _EncDeQuantize(EncryptedQuantizedModule):
    """``(q - z) * round(s 2^f)`` at the session precision: local, no truncation, 0 rounds."""

    def forward(self, *args: Any) -> Any:
        x = self._shared(args[0])
        p = x.centered.session.config.precision
        factor = np.uint64(int(np.rint(x.scale * 2.0**p)))
        return MPCTensor(x.centered.session, x.centered.share * factor, p)


class _EncWeighted(EncryptedQuantizedModule):
    """Twin of QuantizedLinear(ReLU) / QuantizedConv2d / QuantizedConvReLU2d."""

    def __init__(
        self, plain: qm._QWeighted, session: Session, src: int, exact: bool, saturate: bool
    ) -> None:
        super().__init__()
        self.plain_type = type(plain).__name__
        self.exact, self.saturate = exact, saturate
        self.dtype = plain.dtype
        self.axis_shape = plain.axis_shape
        self.geometry = (
            (plain.stride, plain.padding, plain.dilation, plain.groups)
            if isinstance(plain, qm.QuantizedConv2d)
            else None
        )
        channels, wsize = plain.weight_q.shape[0], plain.weight_q.size
        has_bias = plain.bias is not None
        mine = session.rank == src
        meta = None
        if mine:
            qp = LayerQParams.of(plain)
            head = [qp.scale, qp.zero_point, qp.quant_min, qp.quant_max, qp.bias_bound]
            meta = np.concatenate([qp.w_scale, head, [qp.weight_bound]])
        meta = np.asarray(session.comm.broadcast(meta, src), dtype=np.float64)
        if meta.shape != (channels + 6,):
            raise ShareError(f"{self.plain_type}: the model owner's layer has another shape")
        c = channels
        self.qparams = LayerQParams(
            w_scale=meta[:c].copy(),
            scale=float(meta[c]),
            zero_point=int(meta[c + 1]),
            quant_min=int(meta[c + 2]),
            quant_max=int(meta[c + 3]),
            relu_fused=plain.relu_fused,
            bias_bound=float(meta[c + 4]),
            weight_bound=int(meta[c + 5]),
            fan_in=int(np.prod(plain.weight_q.shape[1:])),
        )
        values = None
        if mine:
            parts = [plain.weight_centered.reshape(-1)]
            if plain.bias is not None:
                parts.append(bias_term(plain.bias, plain.scale))
            values = np.concatenate(parts)
        flat = cryptensor(values, src=src, precision=0, session=session)
        if flat.shape != (wsize + (channels if has_bias else 0),):
            raise ShareError(f"{self.plain_type}: the model owner's weights have another shape")
        self.weight = MPCTensor(session, flat.share[:wsize].reshape(plain.weight_q.shape), 0)
        self.bias = MPCTensor(session, flat.share[wsize:], 0) if has_bias else None

    def describe(self) -> str:
        qp = self.qparams
        return f"Encrypted{self.plain_type}(scale={qp.scale:.6g}, zero_point={qp.zero_point})"

    def forward(self, *args: Any) -> Any:
        x = self._shared(args[0])
        session = x.centered.session
        r = self.qparams.requant(x.scale, x.dtype, budget_bits(session), self.saturate)
        if self.geometry is None:
            acc = x.centered.matmul(self.weight.t())
        else:
            stride, padding, dilation, groups = self.geometry
            acc = x.centered.conv2d(self.weight, None, stride, padding, dilation, groups)
        bias = None if self.bias is None else self.bias.share
        out = shared_requant(session, acc.share, bias, r, self.axis_shape, self.exact)
        qp = self.qparams
        return SharedQTensor(MPCTensor(session, out, 0), qp.scale, qp.zero_point, self.dtype)


class _EncUnary(EncryptedQuantizedModule):
    """Twin of QuantizedReLU / QuantizedMaxPool2d / QuantizedFlatten (qparams unchanged)."""

    def __init__(self, plain: Module) -> None:
        super().__init__()
        object.__setattr__(self, "plain", plain)  # not a sub-module

    def describe(self) -> str:
        return f"Encrypted{self.plain.describe()}"

    def forward(self, *args: Any) -> Any:
        x = self._shared(args[0])
        p, c = self.plain, x.centered
        if isinstance(p, qm.QuantizedReLU):
            out = c.relu()
        elif isinstance(p, qm.QuantizedMaxPool2d):
            out = c.max_pool2d(p.kernel_size, p.stride, p.padding, p.dilation)
        else:  # _twin builds this class for QuantizedFlatten only besides the two above
            flatten = cast(qm.QuantizedFlatten, p)
            out = c.flatten(flatten.start_dim, flatten.end_dim)
        return SharedQTensor(out, x.scale, x.zero_point, x.dtype)


def _twin(mod: Module, session: Session, src: int, exact: bool, saturate: bool) -> Module | None:
    if isinstance(mod, qm.Quantize):
        return _EncQuantize(mod, session, src)
    if isinstance(mod, qm.DeQuantize):
        return _EncDeQuantize()
    if isinstance(mod, qm._QWeighted):
        return _EncWeighted(mod, session, src, exact, saturate)
    if isinstance(mod, qm.QuantizedReLU | qm.QuantizedMaxPool2d | qm.QuantizedFlatten):
        return _EncUnary(mod)
    return None


def encrypt_quantized(
    model: Module,
    src: int = 0,
    *,
    session: Session | None = None,
    exact: bool = True,
    saturate: bool = True,
) -> Module:
    """Replace every converted int8 module of ``model`` (in place) by its encrypted twin and
    return the model (the twin itself when ``model`` is one quantized module). Every party
    calls it on a model of the same architecture; only ``src``'s weights and qparams count.
    Cost: 1 round per Quantize (input qparams), 2 per weighted layer (qparams broadcast,
    weight sharing); ``exact`` and ``saturate`` as in the module doc."""
    session = session or current_session()
    if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < session.world_size:
        raise ShareError(f"encrypt_quantized: src={src!r} is not a party rank")
    root = _twin(model, session, src, exact, saturate)
    if root is not None:
        root._encrypted = True
        return root
    if not any(isinstance(m, qm._QModule) for m in model.modules()):
        raise QuantizationError(
            f"encrypt_quantized: {type(model).__name__} has no quantized modules; run "
            "prepare, calibrate and convert first"
        )
    for parent in list(model.modules()):
        table = parent._tables()[2]
        for name, child in list(table.items()):
            twin = _twin(child, session, src, exact, saturate)
            if twin is not None:
                table[name] = twin
    for mod in model.modules():
        mod._encrypted = True
    return model


def _first_quantize(model: Module) -> Any:
    for mod in model.modules():
        if isinstance(mod, qm.Quantize | _EncQuantize):
            return mod
    raise QuantizationError(f"{type(model).__name__} has no Quantize module (QuantStub)")


def share_quantized(
    model: Module, x: Any, src: int, *, session: Session | None = None
) -> SharedQTensor:
    """Party ``src`` quantizes its float input ``x`` locally with the model's public input
    qparams (its first Quantize) and secret-shares the integers; the others pass ``None``.
    Cost: 1 round (shape announcement); no other traffic."""
    quant = _first_quantize(model)
    session = session or current_session()
    plain = quant.plain if isinstance(quant, _EncQuantize) else quant
    values = None
    if session.rank == src:
        q = plain.quantize(x)
        values = q.int_repr.astype(np.int64) - np.int64(q.zero_point)
    shared = cryptensor(values, src=src, precision=0, session=session)
    return SharedQTensor(shared, quant.scale, quant.zero_point, plain.dtype)
