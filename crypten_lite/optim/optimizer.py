"""``Optimizer``: the base of :class:`~crypten_lite.optim.SGD`, ``Adam`` and ``AdamW``.

Parameters are autograd leaves that require a gradient (``model.requires_grad_()`` makes
them). ``param_groups`` is torch's list of dicts (``"params"`` plus the hyper-parameters);
``step()`` runs under ``no_grad`` and assigns each updated value to ``p.data`` (the
Parameter object is kept, so the model sees it). Parameters whose ``.grad`` is None are
skipped.

Public (numpy) parameters with public gradients follow torch's float64 formulas exactly.
When the parameter or its gradient is an ``MPCTensor``, the update is private: every
private parameter of a group is flattened into one vector so that each product, truncation
and nonlinear function runs once per group and step, whatever the number of tensors.
Products by public hyper-parameters are local plus one truncation (free with 2 parties,
1 round with 3 or more; factors of similar magnitude share a truncation).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from crypten_lite.autograd import Variable, enable_grad, no_grad
from crypten_lite.autograd.values import Value, rename_like, to_private
from crypten_lite.tensor import MPCTensor, cat

__all__ = ["Optimizer"]

F64: TypeAlias = npt.NDArray[np.float64]
State: TypeAlias = dict[str, Any]


def _is_param(value: object) -> bool:
    return isinstance(value, Variable) and value.is_leaf and value.requires_grad


def _check_param(value: object, index: int) -> Variable:
    if _is_param(value) and isinstance(value, Variable):
        return value
    if isinstance(value, Variable):
        why = "is not a leaf" if not value.is_leaf else "does not require grad"
        kind = f"a Variable that {why}"
    else:
        kind = f"a {type(value).__name__}"
    raise TypeError(
        f"optimizer parameter {index} is {kind}, not a Parameter; call "
        "model.requires_grad_() first and pass model.parameters()"
    )


class Optimizer(abc.ABC):
    """Base class (see module doc). Subclasses set ``defaults`` and implement
    ``_step_group(group, items)``, where ``items`` lists ``(index, parameter, state)``."""

    def __init__(self, params: Any, defaults: Mapping[str, Any]) -> None:
        if isinstance(params, Variable | MPCTensor | np.ndarray):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Parameters "
                f"or dicts, but got {type(params).__name__}"
            )
        self.defaults: dict[str, Any] = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, State] = {}
        self._params: list[Variable] = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group: ``{"params": [...], <hyper-parameter>: value, ...}``; missing
        hyper-parameters take the optimizer's defaults."""
        if not isinstance(param_group, Mapping) or "params" not in param_group:
            raise TypeError("a parameter group must be a dict with a 'params' entry")
        raw = param_group["params"]
        items = [raw] if isinstance(raw, Variable) else list(raw)
        unknown = set(param_group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"unknown hyper-parameters in a parameter group: {sorted(unknown)}")
        seen = {id(p) for p in self._params}
        checked: list[Variable] = []
        for item in items:
            param = _check_param(item, len(self._params) + len(checked))
            if id(param) in seen:
                raise ValueError("some parameters appear in more than one parameter group")
            seen.add(id(param))
            checked.append(param)
        group = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        self._validate(group)
        group["params"] = checked
        self._params.extend(checked)
        self.param_groups.append(group)

    def _validate(self, group: dict[str, Any]) -> None:
        """Check a group's hyper-parameters (ValueError, torch's messages)."""
        lr = group.get("lr")
        if not isinstance(lr, int | float) or lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        wd = group.get("weight_decay", 0.0)
        if wd < 0.0:
            raise ValueError(f"Invalid weight_decay value: {wd}")

    # -- gradients and steps ---------------------------------------------------------------
    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None."""
        for param in self._params:
            param.grad = None

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()`` (run with
        gradients enabled first) when given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            start = 0
            for group in self.param_groups:
                items = []
                for offset, param in enumerate(group["params"]):
                    if param.grad is not None:
                        index = start + offset
                        items.append((index, param, self.state.setdefault(index, {})))
                start += len(group["params"])
                if items:
                    self._step_group(group, items)
        return loss

    @abc.abstractmethod
    def _step_group(self, group: dict[str, Any], items: list[tuple[int, Variable, State]]) -> None:
        """Update the parameters of one group that have a gradient (each optimizer's rule)."""

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {"<index>": {...}}, "param_groups": [{..., "params": [indices]}]}``
        (indices as strings so that ``cl.save`` stores it; numpy values copied)."""
        state = {
            str(i): {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in s.items()}
            for i, s in sorted(self.state.items())
            if s
        }
        groups = []
        start = 0
        for group in self.param_groups:
            count = len(group["params"])
            entry = {k: v for k, v in group.items() if k != "params"}
            entry["params"] = list(range(start, start + count))
            groups.append(entry)
            start += count
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyper-parameters and per-parameter state saved by :meth:`state_dict`
        (possibly through ``cl.save``/``cl.load``); group sizes must match."""
        groups = state_dict.get("param_groups")
        state = state_dict.get("state")
        if not isinstance(groups, Sequence) or not isinstance(state, Mapping):
            raise ValueError("state_dict needs 'state' and 'param_groups' entries")
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for mine, saved in zip(self.param_groups, groups, strict=True):
            if len(saved["params"]) != len(mine["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the "
                    "size of optimizer's group"
                )
        total = len(self._params)
        new_state: dict[int, State] = {}
        for key, value in state.items():
            index = int(key)
            if not 0 <= index < total or not isinstance(value, Mapping):
                raise ValueError(f"state_dict: bad state entry {key!r}")
            new_state[index] = {k: _restore(k, v) for k, v in value.items()}
        for mine, saved in zip(self.param_groups, groups, strict=True):
            for name, value in saved.items():
                if name != "params":
                    mine[name] = tuple(value) if isinstance(value, list) else _scalar(value)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params")
        return "\n".join([*lines, ")"])


def _scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _restore(key: str, value: Any) -> Any:
    if key == "step":
        return int(value)
    return _scalar(value)


# -- helpers of the private updates ---------------------------------------------------------
def template_of(items: Iterable[Variable]) -> MPCTensor | None:
    """The first MPCTensor among the values and gradients (None when all are public)."""
    for param in items:
        for value in (param.data, param.grad):
            if isinstance(value, MPCTensor):
                return value
    return None


def flat_private(values: Sequence[Value], template: MPCTensor) -> MPCTensor:
    """The values (public ones as trivial sharings) flattened and concatenated (local)."""
    return cat([to_private(v, template).reshape(-1) for v in values])


def split_like(flat: MPCTensor, shapes: Sequence[tuple[int, ...]]) -> list[MPCTensor]:
    """Undo :func:`flat_private` (local)."""
    out = []
    start = 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(flat[start : start + size].reshape(*shape))
        start += size
    return out


def per_element(values: Sequence[float], shapes: Sequence[tuple[int, ...]]) -> F64:
    """One public factor per parameter, repeated over its elements."""
    return np.concatenate(
        [np.full(math.prod(s), float(v), dtype=np.float64) for v, s in zip(values, shapes,
                                                                             strict=True)]
    )


def scale_all(terms: Sequence[tuple[MPCTensor, F64]]) -> list[MPCTensor]:
    """``x * f`` for each (flat private ``x``, public per-element ``f``). Terms whose
    factors have the same binary magnitude share one product and one truncation (local with
    2 parties, 1 round with 3+); mixing magnitudes in one truncation would cost the small
    factors their precision, so those get their own."""
    buckets: dict[int, list[int]] = {}
    for i, (_, factor) in enumerate(terms):
        largest = float(np.max(np.abs(factor))) if factor.size else 0.0
        key = math.ceil(math.log2(largest)) if largest > 0 else 0
        buckets.setdefault(key, []).append(i)
    out: list[MPCTensor | None] = [None] * len(terms)
    for members in buckets.values():
        joined = cat([terms[i][0] for i in members])
        factors = np.concatenate([terms[i][1] for i in members])
        product = joined * factors
        start = 0
        for i in members:
            size = terms[i][0].size
            out[i] = product[start : start + size]
            start += size
    return [v for v in out if v is not None]


def assign(param: Variable, value: Value) -> None:
    """Store the new value in the Parameter, keeping the names of a named tensor."""
    old = param.data
    if isinstance(value, MPCTensor) and isinstance(old, MPCTensor):
        value = rename_like(value, old.names)
    param.data = value
