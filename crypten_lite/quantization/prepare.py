"""The eager flow: ``prepare`` -> calibrate -> ``convert``; ``quantize``, ``quantize_dynamic``,
``prepare_qat`` (``torch.ao.quantization.prepare``/``prepare_qat``), on ``crypten_lite.nn`` models.

``prepare`` propagates ``qconfig`` (a module's own ``.qconfig`` wins over its parent's, as in
torch), attaches ``activation_post_process`` (a fresh ``qconfig.activation()``) to each leaf
whose type is in the propagation list, and makes the module's forward pass its output through
that observer (crypten_lite has no forward hooks, so a small callable is stored as the
instance's ``forward``). ``convert`` checks every observer saw data, then swaps modules with
``Mapped.from_float(observed_module)``. All of this is plaintext model surgery: no
communication; encrypt the converted model afterwards.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from crypten_lite.errors import QuantizationError
from crypten_lite.nn import Module
from crypten_lite.quantization.intrinsic import _FusedModule, float_layer
from crypten_lite.quantization.mappings import (
    ModuleMapping,
    get_default_dynamic_quant_module_mappings,
    get_default_qat_module_mappings,
    get_default_qconfig_propagation_list,
    get_default_static_quant_module_mappings,
    no_observer_types,
)
from crypten_lite.quantization.qconfig import QConfig, default_dynamic_qconfig

__all__ = [
    "convert",
    "prepare",
    "prepare_qat",
    "propagate_qconfig_",
    "quantize",
    "quantize_dynamic",
]

M = TypeVar("M", bound=Module)
APP = "activation_post_process"


def _label(path: str, mod: Module) -> str:
    return f"module '{path or '<root>'}' ({type(mod).__name__})"


class _ObservedForward:
    """Instance-level ``forward``: the class forward, then the output observer."""

    def __init__(self, module: Module) -> None:
        self.module = module

    def __call__(self, *args: Any) -> Any:
        mod = self.module
        out = type(mod).forward(mod, *args)
        return mod.activation_post_process(out)


class _ObservedBackward:
    """Instance-level ``backward`` (QAT): the observer's straight-through backward first."""

    def __init__(self, module: Module) -> None:
        self.module = module

    def __call__(self, grad_output: Any) -> Any:
        mod = self.module
        grad = mod.activation_post_process.backward(grad_output)
        return type(mod).backward(mod, grad)  # type: ignore[attr-defined]


def _is_leaf(mod: Module) -> bool:
    if isinstance(mod, _FusedModule):
        return True
    return all(name in (APP, "weight_fake_quant") for name, _ in mod.named_children())


def propagate_qconfig_(
    module: Module,
    qconfig_dict: Mapping[Any, QConfig | None] | None = None,
) -> None:
    """Set ``.qconfig`` on every sub-module (in place): the module's own, else by name in
    ``qconfig_dict``, else by type in ``qconfig_dict``, else its parent's."""
    spec = dict(qconfig_dict or {})

    def visit(mod: Module, parent: QConfig | None, prefix: str) -> None:
        qconfig = spec.get(type(mod), parent)
        qconfig = spec.get(prefix, qconfig)
        qconfig = mod.__dict__.get("qconfig", qconfig)
        if qconfig is not None and not isinstance(qconfig, QConfig):
            raise QuantizationError(f"{_label(prefix, mod)}: qconfig must be a QConfig")
        object.__setattr__(mod, "qconfig", qconfig)
        for name, child in mod.named_children():
            if name not in (APP, "weight_fake_quant"):
                visit(child, qconfig, f"{prefix}.{name}" if prefix else name)

    visit(module, None, "")


def _check_model(fn: str, model: object) -> Module:
    if not isinstance(model, Module):
        raise TypeError(f"{fn}: model must be a crypten_lite.nn.Module, got {type(model).__name__}")
    if model.encrypted:
        raise QuantizationError(f"{fn}: the model is encrypted; quantize the plaintext model")
    return model


def _float_weight(mod: Module) -> Any:
    """The float weight a ``from_float`` will quantize (fused modules: the first module's)."""
    return float_layer(mod).__dict__["_parameters"].get("weight")


def _check_weight_observer(path: str, mod: Module, qconfig: QConfig) -> None:
    """Fail at ``prepare`` time (naming the module) if the weight observer's ``ch_axis`` does
    not fit the weight, instead of deep inside ``convert``."""
    weight = _float_weight(mod)
    if weight is None or not hasattr(weight, "ndim"):
        return
    axis = getattr(qconfig.weight(), "ch_axis", None)
    if axis is not None and not -weight.ndim <= axis < weight.ndim:
        raise QuantizationError(
            f"prepare: {_label(path, mod)}: the weight observer's ch_axis {axis} is out of range "
            f"for its {weight.ndim}-D weight of shape {tuple(weight.shape)}"
        )


def _attach_observers(model: Module, observe: set[type[Module]], skip: set[type[Module]]) -> int:
    count = 0
    for path, mod in list(model.named_modules()):
        if APP in dict(mod.named_children()) or type(mod) in skip or type(mod) not in observe:
            continue
        qconfig = getattr(mod, "qconfig", None)
        if qconfig is None or not _is_leaf(mod):
            continue
        _check_weight_observer(path, mod, qconfig)
        obs = qconfig.activation()
        if not isinstance(obs, Module) or not hasattr(obs, "calculate_qparams"):
            raise QuantizationError(
                f"{_label(path, mod)}: qconfig.activation() must build an observer"
            )
        target = getattr(obs, "activation_post_process", obs)  # a FakeQuantize's observer
        for o in {id(obs): obs, id(target): target}.values():
            object.__setattr__(o, "name", path)
            object.__setattr__(o, "owner", type(mod).__name__)
        mod.activation_post_process = obs
        object.__setattr__(mod, "forward", _ObservedForward(mod))
        if hasattr(type(mod), "backward"):
            object.__setattr__(mod, "backward", _ObservedBackward(mod))
        count += 1
    return count


def prepare(model: M, inplace: bool = False) -> M:
    """Propagate ``qconfig`` and attach output observers; returns the prepared model (a deep
    copy unless ``inplace``). Run representative float data through it, then ``convert``."""
    _check_model("prepare", model)
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    if not any(getattr(m, "qconfig", None) is not None for m in model.modules()):
        warnings.warn(
            "prepare: no module has a qconfig (set model.qconfig); nothing will be observed",
            stacklevel=2,
        )
    _attach_observers(model, get_default_qconfig_propagation_list(), no_observer_types())
    return model


def _uncalibrated(model: Module) -> None:
    for path, mod in model.named_modules():
        obs = dict(mod.named_children()).get(APP)
        if obs is not None and not obs.has_observed:
            raise QuantizationError(
                f"convert: {_label(path, mod)} has not been calibrated: run representative "
                "data through the prepared model first"
            )


def _strip(mod: Module) -> None:
    """Remove the observer, the instance forward/backward and the qconfig of a module."""
    mod._tables()[2].pop(APP, None)
    for attr in ("forward", "backward", "qconfig"):
        mod.__dict__.pop(attr, None)


def _swap(mod: Module, mapping: ModuleMapping, build: Callable[[Any, Module], Module]) -> Module:
    if getattr(mod, "qconfig", None) is not None and type(mod) in mapping:
        return build(mapping[type(mod)], mod)
    return mod


def _convert_children(
    mod: Module, mapping: ModuleMapping, build: Callable[[Any, Module], Module]
) -> None:
    for name, child in list(mod.named_children()):
        if name in (APP, "weight_fake_quant"):
            continue
        if hasattr(child, "to_float"):  # QAT module: its float twin (with qconfig + observer)
            child = child.to_float()
        new = _swap(child, mapping, build)
        if new is child:
            if not _is_leaf(child):
                _convert_children(child, mapping, build)
            _strip(child)
        setattr(mod, name, new)


def convert(model: M, mapping: ModuleMapping | None = None, inplace: bool = False) -> M:
    """Swap each observed module for its int8 twin (``mapping[type].from_float(module)``,
    default :func:`get_default_static_quant_module_mappings`). Raises QuantizationError naming
    the first module whose observer saw no data. QAT modules convert through ``to_float()``."""
    _check_model("convert", model)
    _uncalibrated(model)
    if not inplace:
        model = copy.deepcopy(model)
    table = get_default_static_quant_module_mappings() if mapping is None else dict(mapping)
    _convert_children(model, table, lambda cls, mod: cls.from_float(mod))
    _strip(model)
    return model


def quantize(
    model: M,
    run_fn: Callable[..., Any],
    run_args: Any = (),
    mapping: ModuleMapping | None = None,
    inplace: bool = False,
) -> M:
    """Post-training static quantization in one call: ``eval()``, ``prepare``,
    ``run_fn(prepared, *run_args)`` (calibration), ``convert``."""
    _check_model("quantize", model)
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    prepare(model, inplace=True)
    args = run_args if isinstance(run_args, tuple | list) else (run_args,)
    run_fn(model, *args)
    return convert(model, mapping, inplace=True)


def quantize_dynamic(
    model: M,
    qconfig_spec: Any = None,
    dtype: str = "qint8",
    mapping: ModuleMapping | None = None,
    inplace: bool = False,
    *,
    reduce_range: bool = False,
) -> M:
    """Dynamic quantization (semantics §1.5): ``Linear`` (and fused ``LinearReLU``) become
    int8-weight modules whose activations are quantized per call from the batch's min/max.

    ``qconfig_spec``: None (every Linear), a set of module types, or a dict mapping types or
    dotted names to a QConfig (or None to skip). Only ``dtype="qint8"`` is supported.
    ``reduce_range=True`` reproduces torch's x86/fbgemm activation range (0..127); the default
    uses the full 0..255 (crypten_lite extension: torch decides by engine).
    """
    _check_model("quantize_dynamic", model)
    if dtype not in ("qint8", "torch.qint8"):
        raise QuantizationError(f"quantize_dynamic: only dtype 'qint8' is supported, got {dtype!r}")
    table = get_default_dynamic_quant_module_mappings() if mapping is None else dict(mapping)
    if qconfig_spec is None:
        spec: dict[Any, QConfig | None] = dict.fromkeys(table, default_dynamic_qconfig)
    elif isinstance(qconfig_spec, set | frozenset | list | tuple):
        spec = dict.fromkeys(qconfig_spec, default_dynamic_qconfig)
    elif isinstance(qconfig_spec, Mapping):
        spec = dict(qconfig_spec)
    else:
        raise TypeError("quantize_dynamic: qconfig_spec must be None, a set or a dict")
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model, spec)
    _convert_children(model, table, lambda cls, mod: cls.from_float(mod, reduce_range=reduce_range))
    _strip(model)
    return model


def prepare_qat(model: M, mapping: ModuleMapping | None = None, inplace: bool = False) -> M:
    """Quantization-aware training: swap float modules for their :mod:`.qat` twins (weights
    fake-quantized by ``qconfig.weight()``), then attach ``qconfig.activation()`` fake-quant
    observers. The model must be in training mode. Train with :func:`~.qat.qat_backward` and
    :func:`~.qat.sgd_step`; ``convert(model.eval())`` gives the int8 model."""
    _check_model("prepare_qat", model)
    if not model.training:
        raise QuantizationError("prepare_qat: the model must be in training mode (model.train())")
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    table = get_default_qat_module_mappings() if mapping is None else dict(mapping)
    _convert_qat(model, table)
    _attach_observers(model, get_default_qconfig_propagation_list(), no_observer_types())
    return model


def _convert_qat(mod: Module, table: ModuleMapping) -> None:
    for name, child in list(mod.named_children()):
        new = _swap(child, table, lambda cls, m: cls.from_float(m))
        if new is child and not _is_leaf(child):
            _convert_qat(child, table)
        setattr(mod, name, new)
