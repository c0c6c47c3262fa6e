"""``DeepLift`` (Shrikumar et al. 2017, the rescale rule) with Captum 0.9's conventions, on
encrypted or public models and inputs; plus the module-swapping and forward/backward
helpers that the layer attributions (``explain.layer``) share.

Rule. ``x`` and its baseline run as ONE batch ``[x; baseline]`` (``2N`` rows). Every
``nn.ReLU``, ``nn.Sigmoid`` and ``nn.Tanh`` MODULE of the model is temporarily replaced (in
its parent's table, restored in a ``finally``) by a wrapper computing the same value ``f(v)``
with a different backward: the gradient reaching it is multiplied by

    ``m = (f(v_x) - f(v_b)) / (v_x - v_b)``  where ``|v_x - v_b| >= eps``, else ``f'(v_x)``,

computed once per element of the input half and applied to both halves (Captum concatenates
the same multipliers for both halves; only the input half's gradient reaches ``x``). The
attribution is ``(x - baseline) * d/dx`` of the target output (``multiply_by_inputs``), and
``return_convergence_delta`` adds Captum's ``sum(attr) - (F(x)_t - F(baseline)_t)`` (both
outputs come from the same forward).

On shares the multiplier is one blend, with no data-dependent branch:

* one comparison on ``[dx - eps; -dx - eps]`` (one batch, ``dx = v_x - v_b``) gives the bits
  ``s+ = [dx > eps]``, ``s- = [dx < -eps]``, ``s = s+ + s-`` and the parts ``relu(.)``; from
  them, locally, a divisor ``d`` equal to ``dx`` where ``s = 1`` and to ``2 eps`` elsewhere
  (``|d| >= eps`` everywhere);
* ``r = c dy / (c d)`` (``MPCTensor.div``: the reciprocal with the numerator folded in; ``c``
  an integer scaling ``eps`` into the reciprocal's range ``[lo, hi]``, default
  ``[0.1, 100]``: ``c = ceil(lo / eps)``, so ``|dx|`` must stay below ``hi / c``, 10 for
  ``eps = 1e-2``; larger differences make the reciprocal diverge);
* ``m = f'(v_x) + s (r - f'(v_x))`` (one product with the integer bit ``s``), where
  ``f'(v_x)`` is the forward's comparison bit for ReLU and ``y - y^2`` / ``1 - y^2`` (one
  product) for Sigmoid / Tanh.

Threshold. Captum uses ``eps = 1e-10`` on floats; with 16 fractional bits ``dy`` carries an
absolute error near ``2^-16`` plus the approximation error of ``f``, amplified by ``1/dx``,
so ``eps`` must be much larger on shares. ``eps=None`` (default) means Captum's ``1e-10`` on
public values and :data:`MPC_EPS` ``= 1e-2`` on shares; pass ``eps=`` to use the same
threshold on both (the tests compare the encrypted result with numpy at the same ``eps``).
Measured max |encrypted - numpy| at the same ``eps = 1e-2`` (Linear-act-Linear, 2 and 3
parties): 6e-5 to 2.5e-4 (vs Captum: 4.8e-4), Pearson r >= 0.99 per example (tables in
tests/explain/test_deeplift.py). ``eps = 1e-3`` needs ``c = 100``, so ``|dx|`` must stay
below 1: on the test MLP (differences up to 2) it diverges; and elements with ``|dx|`` near
``1e-3`` get a ratio error of order ``2^-16 / 1e-3 = 0.015``. Measured rounds per
attribution with the delta and ``dst`` (Tanh/ReLU/Sigmoid MLP): 29/26/28 (2 parties),
52/41/50 (3 parties).

Cost (rounds, 2 parties, on shares), on top of one forward + one backward of the model at
batch ``2N`` (whose ReLU/Sigmoid/Tanh backward products are replaced by these): per swapped
activation, the comparison (4), the division (11), the blend product (1), the gradient
product (1), + 1 for ``y^2`` (Sigmoid/Tanh); + 1 product round for ``(x - b) * grad`` when
both are private, + 1 round to reveal with ``dst``. Independent of the values.

Differences from Captum: the threshold (above); only ``ReLU``/``Sigmoid``/``Tanh`` modules
are rescaled (Captum also ELU, LeakyReLU, Softplus, Softmax, MaxPool): every other module,
and every activation called as a function inside a custom ``forward``, keeps its gradient,
as in Captum for modules it does not know. In particular ``MaxPool2d`` keeps its gradient
(Captum uses a special maxpool rule), so on a CNN with max pooling the completeness
``sum(attr) = F(x) - F(baseline)`` holds only approximately (measured in the tests). In the
tiny-difference case the baseline half gets ``f'(v_x)`` (Captum: ``f'(v_b)``); this never
reaches the attribution. The model itself cannot be an activation (it has no parent to be
swapped in): wrap it in a ``Sequential``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any, cast

import numpy as np

from crypten_lite.autograd import Variable
from crypten_lite.autograd.graph import record
from crypten_lite.autograd.values import like, mul_mask, to_private
from crypten_lite.explain import _core
from crypten_lite.explain._core import I64, Value
from crypten_lite.nn import Module, ReLU, Sigmoid, Tanh
from crypten_lite.tensor import MPCTensor

__all__ = ["MPC_EPS", "DeepLift", "rescale_multipliers"]

#: Default threshold ``eps`` of the rescale rule on shares (Captum's 1e-10 on public values).
MPC_EPS = 1e-2
CAPTUM_EPS = 1e-10

_KINDS: dict[type[Module], str] = {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh"}


# -- module swapping and the model's forward/backward (shared with explain.layer) -----------
@contextlib.contextmanager
def swapped(model: Module, replace: Callable[[Module], Module | None]) -> Iterator[int]:
    """Every child ``c`` of every module of ``model`` (the root excluded) for which
    ``replace(c)`` returns a module is replaced by it in its parent's table for the block
    (a module used twice is replaced at both places); restored in a ``finally``. Yields the
    number of replacements."""
    done: list[tuple[dict[str, Module], str, Module]] = []
    try:
        for parent in list(model.modules()):
            table = parent._tables()[2]
            for key, child in list(table.items()):
                new = replace(child)
                if new is not None:
                    done.append((table, key, child))
                    table[key] = new
        yield len(done)
    finally:
        for table, key, child in reversed(done):
            table[key] = child


def run_model(
    model: Module,
    leaf: Variable,
    targets: I64 | None,
    grad_rows: int,
    where: str,
    backward: bool = True,
) -> Value:
    """One forward of ``leaf`` (a batch ``Variable``) and, with ``backward``, one backward of
    the one-hot selected outputs of its first ``grad_rows`` rows (``leaf`` and the swapped
    layers' leaves get ``.grad``); parameters frozen. Returns the selected output of every
    row, shape ``(M,)``. Model errors are re-raised naming ``where`` and the layer."""
    m = leaf.shape[0]
    with _core.frozen_parameters(model):
        try:
            out = model(leaf)
        except _core.MODEL_ERRORS as err:
            raise _core.model_error(where, "forward", model, err) from err
        if not isinstance(out, Variable):
            raise TypeError(f"{where}: the model returned {type(out).__name__}, not a Variable")
        onehot = _core.onehot(tuple(out.shape), targets, grad_rows, m, where)
        if backward and out.requires_grad:
            try:
                out.backward(onehot)
            except _core.MODEL_ERRORS as err:
                raise _core.model_error(where, "backward", model, err) from err
    return _core.select(out.data, targets, 0, m)


def check_model(model: Any, where: str) -> Module:
    if not isinstance(model, Module):
        raise TypeError(
            f"{where}: model must be a crypten_lite.nn.Module (its activation modules are "
            f"swapped), got {type(model).__name__}"
        )
    return model


# -- the rescale rule ----------------------------------------------------------------------
def _integer_scale(t: MPCTensor, factor: int) -> MPCTensor:
    return t if factor == 1 else t.mul(np.asarray(factor, dtype=np.int64))


def rescale_multipliers(dx: Value, dy: Value, deriv: Value, eps: float) -> Value:
    """``dy / dx`` where ``|dx| >= eps``, else ``deriv`` (see module doc for the blend on
    shares and its cost). ``deriv`` may be a fixed-point tensor or a public array."""
    if not isinstance(dx, MPCTensor) and not isinstance(dy, MPCTensor):
        small = np.abs(dx) < eps
        safe = np.where(small, 1.0, dx)
        out = np.where(small, np.asarray(deriv, dtype=np.float64), dy / safe)
        return np.asarray(out, dtype=np.float64)
    template = cast(MPCTensor, dx if isinstance(dx, MPCTensor) else dy)  # one is private
    dx_p = to_private(dx, template)
    dy_p = to_private(dy, template)
    n = dx_p.shape[0]
    pair = cast(MPCTensor, _core.concat([dx_p.sub(eps), dx_p.neg().sub(eps)]))  # private
    parts, bits = pair.relu_with_mask()
    rp, rn = like(parts, parts.share[:n]), like(parts, parts.share[n:])
    sp, sn = like(bits, bits.share[:n]), like(bits, bits.share[n:])
    s = like(bits, sp.share + sn.share)
    f = template.precision
    one = np.uint64(round(eps * 2**f))
    # d = dx where |dx| > eps (r+ + eps or -(r- + eps)), 2 eps elsewhere: local
    d_share = rp.share - rn.share - sp.share * one - sn.share * (one * np.uint64(3))
    d = like(rp, d_share).add(2.0 * eps)
    lo = float(template.session.config.approx.reciprocal_range[0])
    c = max(1, math.ceil(lo / eps - 1e-9))
    ratio = _integer_scale(dy_p, c).div(_integer_scale(d, c))
    base = to_private(deriv, template)
    return base.add(mul_mask(ratio.sub(base), s))


def _fixed_from_bits(bits: MPCTensor, precision: int) -> MPCTensor:
    """A 0/1 integer sharing (precision 0) as a fixed-point one: local."""
    return MPCTensor(bits.session, bits.share << np.uint64(precision), precision)


class _Rescale(Module):
    """The swapped activation: ``f(v)`` forward, the rescale multiplier backward."""

    def __init__(self, kind: str, rows: int, eps: float | None) -> None:
        super().__init__()
        self.kind = kind
        self.rows = rows
        self.eps = eps

    def describe(self) -> str:
        return f"DeepLift({self.kind})"

    def forward(self, *args: Any) -> Any:
        x = args[0]
        if not isinstance(x, Variable):
            x = Variable(x)
        v = x.data
        n = self.rows
        if v.shape[0] != 2 * n:
            raise ValueError(
                f"DeepLift: an activation got {v.shape[0]} rows, expected {2 * n} "
                "(the model must keep the batch dimension)"
            )
        y: Value
        mask: Value | None = None
        if isinstance(v, MPCTensor):
            if self.kind == "relu":
                y, bits = v.relu_with_mask()
                mask = _fixed_from_bits(like(bits, bits.share[:n]), v.precision)
            else:
                y = v.sigmoid() if self.kind == "sigmoid" else v.tanh()
        elif self.kind == "relu":
            y = np.maximum(v, 0.0)
            mask = np.asarray(v[:n] > 0, dtype=np.float64)
        elif self.kind == "sigmoid":
            y = 0.5 * (np.tanh(0.5 * v) + 1.0)
        else:
            y = np.tanh(v)
        eps = self.eps
        if eps is None:
            eps = MPC_EPS if isinstance(v, MPCTensor) else CAPTUM_EPS

        def backward(g: Value) -> tuple[Value]:
            yx = _core.take_rows(y, 0, n)
            deriv: Value
            if mask is not None:
                deriv = mask
            elif self.kind == "sigmoid":
                deriv = _core.sub(yx, _core.square(yx))
            else:
                deriv = _core.sub(np.ones(yx.shape), _core.square(yx))
            dx = _core.sub(_core.take_rows(v, 0, n), _core.take_rows(v, n, 2 * n))
            dy = _core.sub(yx, _core.take_rows(y, n, 2 * n))
            m = rescale_multipliers(dx, dy, deriv, eps)
            return (_core.mul(g, _core.concat([m, m])),)

        return record(y, (x,), backward, f"DeepLift{self.kind.capitalize()}")


class DeepLift:
    """``DeepLift(model, multiply_by_inputs=True, eps=None).attribute(inputs,
    baselines=None, target=None, return_convergence_delta=False, dst=None)``: see module
    doc. ``model`` is a ``crypten_lite.nn.Module`` (private or public), ``inputs`` an
    MPCTensor or a numpy array; ``eps=None``: 1e-10 on public values, :data:`MPC_EPS` on
    shares."""

    def __init__(
        self, model: Any, multiply_by_inputs: bool = True, eps: float | None = None
    ) -> None:
        self.model = check_model(model, "DeepLift")
        if not isinstance(multiply_by_inputs, bool):
            raise TypeError("DeepLift: multiply_by_inputs must be a bool")
        if eps is not None and (
            isinstance(eps, bool) or not isinstance(eps, int | float) or not eps > 0
        ):
            raise ValueError(f"DeepLift: eps must be a positive number or None, got {eps!r}")
        self.multiplies_by_inputs = multiply_by_inputs
        self.eps = None if eps is None else float(eps)

    @property
    def forward_func(self) -> Module:
        return self.model

    def has_convergence_delta(self) -> bool:
        return True

    def attribute(
        self,
        inputs: Any,
        baselines: Any = None,
        target: Any = None,
        return_convergence_delta: bool = False,
        dst: int | None = None,
    ) -> Any:
        where = "DeepLift.attribute"
        x = _core.check_inputs(inputs, where)
        n = x.shape[0]
        targets = _core.check_target(target, n, where)
        baseline = _core.check_baselines(baselines, x, where)
        if not isinstance(return_convergence_delta, bool):
            raise TypeError(f"{where}: return_convergence_delta must be a bool")
        rank = _core.check_dst(dst, where)
        batch = _core.concat([x, baseline])
        rows = None if targets is None else np.concatenate([targets, targets])

        def replace(child: Module) -> Module | None:
            kind = _KINDS.get(type(child))
            return None if kind is None else _Rescale(kind, n, self.eps)

        leaf = Variable(batch, requires_grad=True)
        with swapped(self.model, replace):
            outs = run_model(self.model, leaf, rows, n, where)
        grad = leaf.grad if leaf.grad is not None else _core.zeros_like(batch)
        grad_x = _core.take_rows(grad, 0, n)
        attr = (
            _core.mul(_core.sub(x, baseline), grad_x) if self.multiplies_by_inputs else grad_x
        )
        if not return_convergence_delta:
            return _core.reveal([attr], rank)[0]
        f_x, f_b = _core.take_rows(outs, 0, n), _core.take_rows(outs, n, 2 * n)
        delta = _core.sub(_core.sum_rows(attr, n), _core.sub(f_x, f_b))
        revealed = _core.reveal([attr, delta], rank)
        return revealed[0], revealed[1]
