"""Stochastic gradient descent with momentum, dampening, weight decay and Nesterov (torch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from crypten_lite.autograd import Variable
from crypten_lite.optim.optimizer import (
    Optimizer,
    State,
    assign,
    flat_private,
    per_element,
    scale_all,
    split_like,
    template_of,
)

__all__ = ["SGD"]


class SGD(Optimizer):
    """torch.optim.SGD: ``g += weight_decay p``; with momentum ``buf = momentum buf +
    (1 - dampening) g`` (``buf = g`` the first time), ``g = g + momentum buf`` (Nesterov) or
    ``g = buf``; ``p -= lr g``. State per parameter: ``momentum_buffer``.

    MPC cost per step and group (all private parameters of the group batched): local but
    for the products by public scalars, at most 3 truncations (weight decay, momentum,
    learning rate): 0 rounds with 2 parties (local truncation), at most 3 with 3+.
    Precision: an update ``lr g`` smaller than a few units of ``2^-precision`` (1.5e-5 at
    16 bits) is lost in rounding, as in any fixed-point training.
    """

    def __init__(
        self,
        params: Any,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        if group["momentum"] < 0.0:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _step_group(self, group: dict[str, Any], items: list[tuple[int, Variable, State]]) -> None:
        public = [it for it in items if template_of([it[1]]) is None]
        private = [it for it in items if template_of([it[1]]) is not None]
        for _, param, state in public:
            self._public(group, param, state)
        if private:
            self._private(group, private)

    @staticmethod
    def _public(group: dict[str, Any], param: Variable, state: State) -> None:
        p = np.asarray(param.data, dtype=np.float64)
        g = np.asarray(param.grad, dtype=np.float64)
        wd, mom, damp = group["weight_decay"], group["momentum"], group["dampening"]
        if wd != 0:
            g = g + wd * p
        if mom != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = g.copy()
            else:
                buf = mom * buf + (1 - damp) * g
            state["momentum_buffer"] = buf
            g = g + mom * buf if group["nesterov"] else buf
        assign(param, p - group["lr"] * g)

    @staticmethod
    def _private(group: dict[str, Any], items: list[tuple[int, Variable, State]]) -> None:
        params = [it[1] for it in items]
        template = template_of(params)
        if template is None:  # callers pass private items only
            raise RuntimeError("SGD: no private value in a private update")
        shapes = [p.shape for p in params]
        n = len(params)
        wd, mom, damp = group["weight_decay"], group["momentum"], group["dampening"]
        grads = [p.grad for p in params if p.grad is not None]
        g = flat_private(grads, template)
        p = flat_private([q.data for q in params], template)
        if wd != 0:
            g = g + scale_all([(p, per_element([wd] * n, shapes))])[0]
        if mom != 0:
            have = [it[2].get("momentum_buffer") is not None for it in items]
            if any(have):
                old = [
                    it[2]["momentum_buffer"] if h else np.zeros(s)
                    for it, h, s in zip(items, have, shapes, strict=True)
                ]
                a = per_element([mom if h else 0.0 for h in have], shapes)
                b = per_element([(1 - damp) if h else 1.0 for h in have], shapes)
                kept, fresh = scale_all([(flat_private(old, template), a), (g, b)])
                buf = kept + fresh
            else:
                buf = g
            for it, value in zip(items, split_like(buf, shapes), strict=True):
                it[2]["momentum_buffer"] = value
            if group["nesterov"]:
                lr_g, lr_buf = scale_all([
                    (g, per_element([group["lr"]] * n, shapes)),
                    (buf, per_element([group["lr"] * mom] * n, shapes)),
                ])
                delta = lr_g + lr_buf
            else:
                delta = scale_all([(buf, per_element([group["lr"]] * n, shapes))])[0]
        else:
            delta = scale_all([(g, per_element([group["lr"]] * n, shapes))])[0]
        for param, value in zip(params, split_like(p - delta, shapes), strict=True):
            assign(param, value)
