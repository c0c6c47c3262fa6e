"""Layer attributions of Captum 0.9: :class:`LayerIntegratedGradients` and
:class:`LayerConductance`, on encrypted or public models and inputs.

``layer`` is a sub-module of ``model`` (the module object, as in Captum, or its dotted name
from ``model.named_modules()``); its OUTPUT (one tensor) is attributed. The layer is
temporarily replaced in its parent's table (every place it is used; restored in a
``finally``) by a wrapper:

* LayerIntegratedGradients: one forward of ``[x; baseline]`` under ``no_grad`` captures the
  layer's outputs ``y_x``, ``y_b`` (the rest of the model is skipped unless the convergence
  delta needs ``F(x)``, ``F(b)``); then the model runs on the inputs repeated ``n_steps``
  times (ONE batch, row ``k N + i``) with the wrapper returning the rows of the leaf
  ``a_k = y_b + alpha_k (y_x - y_b)`` instead of the layer's output; one backward of the
  target outputs gives ``d F / d a_k``; ``attr = (y_x - y_b) * sum_k w_k grad_k`` (Captum's
  definition; without the factor when ``multiply_by_inputs=False``).
* LayerConductance: the model runs once on the ``n_steps + 1`` scaled inputs
  ``b + alpha_k (x - b)`` (``alphas`` of ``method`` at ``n_steps + 1`` points, as Captum;
  one batch); the wrapper returns the layer's output as a fresh leaf ``Variable``; after one
  backward, ``attr = sum_{k < n_steps} (E_{k+1} - E_k) * G_k`` with ``E`` the layer's
  outputs and ``G`` the gradients of the target output w.r.t. them (Captum's
  ``layer_conductance``: the step weights are not used).

``return_convergence_delta`` adds Captum's ``sum(attr) - (F(x)_t - F(baseline)_t)``
(LayerIG: from the first forward, run to the end; Conductance: ``x`` and the baseline ride
in the same batch).

Cost (on shares): LayerIG = a forward at ``2N`` up to the layer (to the end with the
delta) + one forward and one backward at ``n_steps N`` + 1 truncation for the path points
(0 rounds with 2 parties, 1 with 3+) + 1 truncation for the weighted step sum + 1 product
round for ``(y_x - y_b) * grads`` (+1 truncation round with 3+). Conductance = one forward
and one backward at ``(n_steps + 1) N`` (``+ 2N`` rows with the delta) + 1 truncation for
the path points + 1 product round (+1 truncation with 3+) for the differences times the
gradients. Both are independent of ``n_steps`` (tested). ``dst=k``: + 1 round.

Differences from Captum: only ``attribute_to_layer_input=False`` (the layer's output), one
input tensor and one output tensor per layer, no ``internal_batch_size`` (everything is one
batch, which is what makes the rounds independent of ``n_steps``); the root module cannot
be the layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from crypten_lite.autograd import Variable, no_grad
from crypten_lite.explain import _core
from crypten_lite.explain._core import I64, Value
from crypten_lite.explain.approximation import Method, approximation_parameters, check_method
from crypten_lite.explain.deeplift import check_model, run_model, swapped
from crypten_lite.nn import Module
from crypten_lite.tensor import MPCTensor

__all__ = ["LayerConductance", "LayerIntegratedGradients", "resolve_layer"]


class _Stop(Exception):
    """Raised by the capturing wrapper once the layer's output is known."""


def resolve_layer(model: Module, layer: Any, where: str) -> Module:
    """The sub-module ``layer`` (a module of ``model`` or its dotted name); ValueError
    naming it and the available names otherwise."""
    named = list(model.named_modules())
    names = [name for name, _ in named if name]
    if isinstance(layer, str):
        found = dict(named).get(layer) if layer else None
        if found is None:
            raise ValueError(
                f"{where}: the model has no layer named {layer!r}; available: {names}"
            )
        return found
    if not isinstance(layer, Module):
        raise TypeError(
            f"{where}: layer must be a sub-module of the model or its name, got "
            f"{type(layer).__name__}"
        )
    for name, module in named:
        if module is layer and name:
            return layer
    if layer is model:
        raise ValueError(f"{where}: the layer must be a sub-module, not the model itself")
    raise ValueError(
        f"{where}: layer {layer.describe()} is not a sub-module of the model; available: "
        f"{names}"
    )


class _Wrapper(Module):
    """Stands in for the layer; ``fn(original, input)`` gives the output."""

    def __init__(self, original: Module, fn: Callable[[Module, Any], Any]) -> None:
        super().__init__()
        object.__setattr__(self, "_original", original)
        object.__setattr__(self, "_fn", fn)

    def describe(self) -> str:
        return self.__dict__["_original"].describe()  # type: ignore[no-any-return]

    def forward(self, *args: Any) -> Any:
        if len(args) != 1:
            raise TypeError(f"{self.describe()}: layer attributions need one input")
        return self.__dict__["_fn"](self.__dict__["_original"], args[0])


def _sum_steps(v: Value, steps: int) -> Value:
    """``(steps * N, ...)`` -> ``(N, ...)``: the sum over the leading step axis (local)."""
    shape = (v.shape[0] // steps, *v.shape[1:])
    flat = _core.reshape(v, (steps, -1))
    total: Value = flat.sum(0) if isinstance(flat, MPCTensor) else np.sum(flat, axis=0)
    return _core.reshape(total, shape)


def _swap(model: Module, layer: Module, fn: Callable[[Module, Any], Any]) -> Any:
    return swapped(model, lambda child: _Wrapper(child, fn) if child is layer else None)


def _data(out: Any, where: str) -> Value:
    if isinstance(out, Variable):
        return out.data
    if isinstance(out, tuple | list):
        raise TypeError(f"{where}: the layer returned several tensors; only one is supported")
    return _core.check_inputs(out, where)


def _check_common(
    self: _LayerAttribution,
    inputs: Any,
    baselines: Any,
    target: Any,
    n_steps: Any,
    method: Any,
    return_convergence_delta: Any,
    dst: Any,
) -> tuple[Value, Value, I64 | None, Method, int, int | None]:
    where = self._where
    x = _core.check_inputs(inputs, where)
    targets = _core.check_target(target, x.shape[0], where)
    baseline = _core.check_baselines(baselines, x, where)
    try:
        method, n = check_method(method, n_steps)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{where}: {err}") from None
    if not isinstance(return_convergence_delta, bool):
        raise TypeError(f"{where}: return_convergence_delta must be a bool")
    rank = _core.check_dst(dst, where)
    return x, baseline, targets, method, n, rank


class _LayerAttribution:
    def __init__(self, model: Any, layer: Any) -> None:
        name = type(self).__name__
        self.model = check_model(model, name)
        self.layer = resolve_layer(self.model, layer, name)

    @property
    def forward_func(self) -> Module:
        return self.model

    @property
    def _where(self) -> str:
        return f"{type(self).__name__}.attribute"

    def has_convergence_delta(self) -> bool:
        return True

    def _finish(
        self, attr: Value, ends: Value | None, n: int, delta: bool, rank: int | None
    ) -> Any:
        if not delta or ends is None:
            return _core.reveal([attr], rank)[0]
        f_x, f_b = _core.take_rows(ends, 0, n), _core.take_rows(ends, n, 2 * n)
        d = _core.sub(_core.sum_rows(attr, n), _core.sub(f_x, f_b))
        revealed = _core.reveal([attr, d], rank)
        return revealed[0], revealed[1]


class LayerIntegratedGradients(_LayerAttribution):
    """``LayerIntegratedGradients(model, layer, multiply_by_inputs=True).attribute(inputs,
    baselines=None, target=None, n_steps=50, method="gausslegendre",
    return_convergence_delta=False, dst=None)``; see the module doc."""

    def __init__(self, model: Any, layer: Any, multiply_by_inputs: bool = True) -> None:
        super().__init__(model, layer)
        if not isinstance(multiply_by_inputs, bool):
            raise TypeError("LayerIntegratedGradients: multiply_by_inputs must be a bool")
        self.multiplies_by_inputs = multiply_by_inputs

    def attribute(
        self,
        inputs: Any,
        baselines: Any = None,
        target: Any = None,
        n_steps: int = 50,
        method: Method = "gausslegendre",
        return_convergence_delta: bool = False,
        dst: int | None = None,
    ) -> Any:
        where = self._where
        x, baseline, targets, method, n_steps, rank = _check_common(
            self, inputs, baselines, target, n_steps, method, return_convergence_delta, dst
        )
        steps, alphas = approximation_parameters(method, n_steps)
        n = x.shape[0]
        # 1. the layer's outputs at x and the baseline (and F(x), F(b) for the delta)
        captured: list[Value] = []

        def capture(original: Module, inp: Any) -> Any:
            out = original(inp)
            captured.append(_data(out, where))
            if not return_convergence_delta:
                raise _Stop
            return out

        rows2 = None if targets is None else np.concatenate([targets, targets])
        ends: Value | None = None
        with no_grad(), _swap(self.model, self.layer, capture):
            try:
                ends = run_model(
                    self.model, Variable(_core.concat([x, baseline])), rows2, 0, where, False
                )
            except _Stop:
                ends = None
        if len(captured) != 1:
            raise ValueError(
                f"{where}: the layer ran {len(captured)} times in one forward (it must run "
                "exactly once)"
            )
        y = captured[0]
        y_x, y_b = _core.take_rows(y, 0, n), _core.take_rows(y, n, 2 * n)
        # 2. the model on the inputs repeated n_steps times, the layer's output replaced
        path = Variable(_core.path_batch(y_x, y_b, alphas), requires_grad=True)

        def replace(original: Module, inp: Any) -> Any:
            rows = inp.shape[0] if hasattr(inp, "shape") else -1
            if rows != path.shape[0]:
                raise ValueError(f"{where}: the layer got {rows} rows, expected {path.shape[0]}")
            return path

        batch = _core.concat([x] * n_steps)
        rows = None if targets is None else np.tile(targets, n_steps)
        with _swap(self.model, self.layer, replace):
            run_model(self.model, Variable(batch), rows, n_steps * n, where)
        grads = path.grad if path.grad is not None else _core.zeros_like(path.data)
        total = _core.step_sum(grads, steps, n_steps)
        attr = _core.mul(total, _core.sub(y_x, y_b)) if self.multiplies_by_inputs else total
        return self._finish(attr, ends, n, return_convergence_delta, rank)


class LayerConductance(_LayerAttribution):
    """``LayerConductance(model, layer).attribute(inputs, baselines=None, target=None,
    n_steps=50, method="gausslegendre", return_convergence_delta=False, dst=None)``; see
    the module doc."""

    def attribute(
        self,
        inputs: Any,
        baselines: Any = None,
        target: Any = None,
        n_steps: int = 50,
        method: Method = "gausslegendre",
        return_convergence_delta: bool = False,
        dst: int | None = None,
    ) -> Any:
        where = self._where
        x, baseline, targets, method, n_steps, rank = _check_common(
            self, inputs, baselines, target, n_steps, method, return_convergence_delta, dst
        )
        _, alphas = approximation_parameters(method, n_steps + 1)
        n, k = x.shape[0], n_steps + 1
        batch = _core.path_batch(x, baseline, alphas)
        rows = None if targets is None else np.tile(targets, k)
        if return_convergence_delta:
            batch = _core.concat([batch, x, baseline])
            rows = None if targets is None else np.concatenate([rows, targets, targets])
        leaves: list[Variable] = []

        def fresh(original: Module, inp: Any) -> Any:
            leaf = Variable(_data(original(inp), where), requires_grad=True)
            leaves.append(leaf)
            return leaf

        with _swap(self.model, self.layer, fresh):
            outs = run_model(self.model, Variable(batch), rows, k * n, where)
        if len(leaves) != 1:
            raise ValueError(
                f"{where}: the layer ran {len(leaves)} times in one forward (it must run "
                "exactly once)"
            )
        leaf = leaves[0]
        evals = _core.take_rows(leaf.data, 0, k * n)
        grads = leaf.grad if leaf.grad is not None else _core.zeros_like(leaf.data)
        grads = _core.take_rows(grads, 0, n_steps * n)
        diffs = _core.sub(_core.take_rows(evals, n, k * n), _core.take_rows(evals, 0, n_steps * n))
        attr = _sum_steps(_core.mul(diffs, grads), n_steps)
        ends = _core.take_rows(outs, k * n, (k + 2) * n) if return_convergence_delta else None
        return self._finish(attr, ends, n, return_convergence_delta, rank)
