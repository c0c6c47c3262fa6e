"""Gradient attributions of Captum 0.9 on encrypted or public models and inputs:
:class:`Saliency`, :class:`InputXGradient`, :class:`IntegratedGradients`.

``forward_func`` is a ``crypten_lite.nn.Module`` (encrypted with ``encrypt(src=)`` or
public) or any callable mapping a batch ``Variable`` of shape ``(N, ...)`` to outputs
``(N, C)`` (or ``(N,)`` / ``(N, 1)`` with ``target=None``) through autograd operations.
``inputs`` is an MPCTensor (private) or a numpy array (public); every combination of
private/public model and input works. Only the input gradient is computed: parameters that
are ``Parameter``s requiring a gradient are frozen for the call (no weight-gradient
products are paid and their ``.grad`` is left untouched). Put the model in ``eval()`` mode
first, as with Captum (BatchNorm/Dropout behave as in the mode they are in).

Cost (rounds and bytes, on shares). Everything is ONE forward and ONE backward of the model
on one batch, plus O(1) rounds that do not depend on the batch:

=====================  =================================================================
Saliency               forward + backward at batch ``N``; ``abs=True`` on a private
                       gradient adds one ``MPCTensor.abs`` (a comparison: ``log2`` of the
                       ring size rounds of bit products, plus a product round).
InputXGradient         forward + backward at ``N``, + 1 product round (+1 truncation round
                       with 3+ parties) for ``x * grad`` when both are private.
IntegratedGradients    forward + backward at ``n_steps * N`` (``(n_steps + 2) * N`` with
                       ``return_convergence_delta``: ``x`` and the baseline ride in the same
                       batch), + 1 truncation for the path points ``alpha_k`` (0 rounds with
                       2 parties, 1 round with 3+), + 1 truncation for the weighted sum
                       over the steps (a local public matrix product), + 1 product round
                       (+1 truncation round with 3+) for ``(x - baseline) * grads``.
                       Independent of ``n_steps``: n_steps=4 and 16 cost the same rounds.
=====================  =================================================================

Bytes: those of the model's forward and backward at that batch (linear in the batch), plus
``(W-1)`` ring elements per element of ``x`` for each product/truncation round above (``W``
parties). ``dst=k`` reveals the attributions (and the convergence delta, in the same
message) to party ``k`` in 1 more round.

Errors: every argument is checked before any communication, alike on every party, except
the target's range, which needs the number of classes: it is checked on the forward's
(public) output shape right after the forward and before the backward, alike on every party.
An error of the model's forward or backward (e.g. a layer without a gradient rule) is
re-raised as a ``TypeError``/``ValueError`` naming the attribution method and the layer, with
the original as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from crypten_lite.explain import _core
from crypten_lite.explain._core import I64, Value
from crypten_lite.explain.approximation import Method, approximation_parameters, check_method

__all__ = ["GradientAttribution", "InputXGradient", "IntegratedGradients", "Saliency"]


class GradientAttribution:
    """Base of the gradient methods (see module doc). Subclasses define ``_plan`` (check
    their own arguments, locally) and ``_compute`` (the attribution of a batch of examples,
    unrevealed, and the convergence delta when asked); :class:`NoiseTunnel` calls both."""

    #: Keyword arguments of ``attribute`` besides ``inputs``, ``target`` and ``dst``.
    _options: tuple[str, ...] = ()
    supports_delta = False

    def __init__(self, forward_func: Callable[..., Any]) -> None:
        _core.check_callable(forward_func, type(self).__name__)
        self.forward_func = forward_func

    @property
    def _where(self) -> str:
        return f"{type(self).__name__}.attribute"

    def _plan(self, x: Value, options: dict[str, Any]) -> dict[str, Any]:
        return dict(options)

    def _expand_plan(self, plan: dict[str, Any], times: int) -> dict[str, Any]:
        """The plan for ``times`` copies of every example (NoiseTunnel)."""
        return plan

    def _compute(
        self, x: Value, targets: I64 | None, plan: dict[str, Any]
    ) -> tuple[Value, Value | None]:
        raise NotImplementedError

    def _gradient(self, x: Value, targets: I64 | None) -> Value:
        grad, _ = _core.forward_backward(self.forward_func, x, targets, x.shape[0], self._where)
        return grad

    def has_convergence_delta(self) -> bool:
        return self.supports_delta


class Saliency(GradientAttribution):
    """``|d F_target / d x|`` (``abs=True``, Captum's default) or the signed gradient.
    Cost: one forward + one backward at batch ``N`` (+ one comparison for ``abs`` on a
    private gradient)."""

    _options = ("abs",)

    def attribute(
        self, inputs: Any, target: Any = None, abs: bool = True, dst: int | None = None
    ) -> Any:
        x = _core.check_inputs(inputs, self._where)
        targets = _core.check_target(target, x.shape[0], self._where)
        plan = self._plan(x, {"abs": abs})
        where = _core.check_dst(dst, self._where)
        attr, _ = self._compute(x, targets, plan)
        return _core.reveal([attr], where)[0]

    def _plan(self, x: Value, options: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(options.get("abs", True), bool):
            raise TypeError(f"{self._where}: abs must be a bool")
        return {"abs": options.get("abs", True)}

    def _compute(
        self, x: Value, targets: I64 | None, plan: dict[str, Any]
    ) -> tuple[Value, Value | None]:
        grad = self._gradient(x, targets)
        return (_core.abs_value(grad) if plan["abs"] else grad), None


class InputXGradient(GradientAttribution):
    """``x * d F_target / d x``. Cost: one forward + one backward at batch ``N`` + one
    product round when both are private."""

    def attribute(self, inputs: Any, target: Any = None, dst: int | None = None) -> Any:
        x = _core.check_inputs(inputs, self._where)
        targets = _core.check_target(target, x.shape[0], self._where)
        where = _core.check_dst(dst, self._where)
        attr, _ = self._compute(x, targets, {})
        return _core.reveal([attr], where)[0]

    def _compute(
        self, x: Value, targets: I64 | None, plan: dict[str, Any]
    ) -> tuple[Value, Value | None]:
        return _core.mul(x, self._gradient(x, targets)), None


class IntegratedGradients(GradientAttribution):
    """Integrated Gradients (Sundararajan et al. 2017) with Captum's rules and defaults.

    ``attr = (x - baseline) * sum_k w_k grad F_target(baseline + alpha_k (x - baseline))``
    (``multiply_by_inputs=False``: without the ``(x - baseline)`` factor). All ``n_steps``
    path points of all ``N`` examples run as ONE batch of ``n_steps * N`` rows (row
    ``k * N + i`` is step ``k`` of example ``i``, as in Captum): one forward, one backward
    of the one-hot selected outputs, then a public weighted sum over the step axis. Cost:
    see the module doc (forward + backward at ``n_steps * N`` + O(1) rounds).

    ``return_convergence_delta=True`` returns ``(attributions, delta)`` with Captum's
    ``delta_i = sum(attr_i) - (F(x_i)_t - F(baseline_i)_t)``; ``F(x)`` and ``F(baseline)``
    are computed in the same batch (no extra round).
    """

    _options = ("baselines", "n_steps", "method", "return_convergence_delta")
    supports_delta = True

    def __init__(self, forward_func: Callable[..., Any], multiply_by_inputs: bool = True) -> None:
        super().__init__(forward_func)
        if not isinstance(multiply_by_inputs, bool):
            raise TypeError("IntegratedGradients: multiply_by_inputs must be a bool")
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
        x = _core.check_inputs(inputs, self._where)
        targets = _core.check_target(target, x.shape[0], self._where)
        plan = self._plan(
            x,
            {
                "baselines": baselines,
                "n_steps": n_steps,
                "method": method,
                "return_convergence_delta": return_convergence_delta,
            },
        )
        where = _core.check_dst(dst, self._where)
        attr, delta = self._compute(x, targets, plan)
        if delta is None:
            return _core.reveal([attr], where)[0]
        revealed = _core.reveal([attr, delta], where)
        return revealed[0], revealed[1]

    def _plan(self, x: Value, options: dict[str, Any]) -> dict[str, Any]:
        unknown = set(options) - set(self._options)
        if unknown:
            raise TypeError(f"{self._where}: unexpected arguments {sorted(unknown)}")
        try:
            method, n = check_method(
                options.get("method", "gausslegendre"), options.get("n_steps", 50)
            )
        except (TypeError, ValueError) as err:
            raise type(err)(f"{self._where}: {err}") from None
        delta = options.get("return_convergence_delta", False)
        if not isinstance(delta, bool):
            raise TypeError(f"{self._where}: return_convergence_delta must be a bool")
        steps, alphas = approximation_parameters(method, n)
        baseline = _core.check_baselines(options.get("baselines"), x, self._where)
        return {"baseline": baseline, "steps": steps, "alphas": alphas, "delta": delta}

    def _expand_plan(self, plan: dict[str, Any], times: int) -> dict[str, Any]:
        return {**plan, "baseline": _core.repeat_rows(plan["baseline"], times)}

    def _compute(
        self, x: Value, targets: I64 | None, plan: dict[str, Any]
    ) -> tuple[Value, Value | None]:
        baseline: Value = plan["baseline"]
        steps, alphas = plan["steps"], plan["alphas"]
        n, m = len(alphas), x.shape[0]
        batch = _core.path_batch(x, baseline, alphas)
        rows = None if targets is None else np.tile(targets, n)
        if plan["delta"]:
            batch = _core.concat([batch, x, baseline])
            rows = None if targets is None else np.concatenate([rows, targets, targets])
        grads, ends = _core.forward_backward(self.forward_func, batch, rows, n * m, self._where)
        if plan["delta"]:
            grads = _core.take_rows(grads, 0, n * m)
        total = _core.step_sum(grads, steps, n)
        attr = _core.mul(total, _core.sub(x, baseline)) if self.multiplies_by_inputs else total
        if not plan["delta"] or ends is None:
            return attr, None
        f_x, f_b = _core.take_rows(ends, 0, m), _core.take_rows(ends, m, 2 * m)
        delta = _core.sub(_core.sum_rows(attr, m), _core.sub(f_x, f_b))
        return attr, delta
