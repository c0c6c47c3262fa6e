"""Fused float modules produced by :func:`~.fuse.fuse_modules` (``torch.ao.nn.intrinsic``).

Each is a two-element ``Sequential`` (``[0]``, ``[1]``) with named accessors; the float forward
runs both in order. ``prepare`` observes only the fused output, and ``convert`` maps
``LinearReLU`` / ``ConvReLU2d`` to one int8 kernel with the ReLU folded into the output clamp.
"""

from __future__ import annotations

from typing import Any, cast

from crypten_lite.errors import QuantizationError
from crypten_lite.nn import BatchNorm2d, Conv2d, Linear, Module, ReLU, Sequential

__all__ = ["BNReLU2d", "ConvReLU2d", "LinearReLU", "float_layer", "qconfig_of"]


class _FusedModule(Sequential):
    """Two float modules run in sequence, fused for quantization."""

    _kinds: tuple[type[Module], type[Module]]

    def __init__(self, first: Module, second: Module) -> None:
        for mod, kind in zip((first, second), self._kinds, strict=True):
            if type(mod) is not kind:
                raise TypeError(
                    f"{type(self).__name__}: expected {kind.__name__}, got {type(mod).__name__}"
                )
        super().__init__(first, second)

    def forward(self, *args: Any) -> Any:
        # only the two fused modules (``prepare`` adds an observer child after them)
        return self[1](self[0](args[0]))


class LinearReLU(_FusedModule):
    """``relu(linear(x))``; ``.linear`` is the ``nn.Linear``, ``.relu`` the ``nn.ReLU``."""

    _kinds = (Linear, ReLU)

    @property
    def linear(self) -> Linear:
        return cast(Linear, self[0])  # the constructor checked the type

    @property
    def relu(self) -> Module:
        return self[1]


class ConvReLU2d(_FusedModule):
    """``relu(conv(x))``; ``.conv`` is the ``nn.Conv2d``, ``.relu`` the ``nn.ReLU``."""

    _kinds = (Conv2d, ReLU)

    @property
    def conv(self) -> Conv2d:
        return cast(Conv2d, self[0])

    @property
    def relu(self) -> Module:
        return self[1]


class BNReLU2d(_FusedModule):
    """``relu(bn(x))`` (float only: there is no int8 kernel for it in crypten_lite)."""

    _kinds = (BatchNorm2d, ReLU)

    @property
    def bn(self) -> BatchNorm2d:
        return cast(BatchNorm2d, self[0])

    @property
    def relu(self) -> Module:
        return self[1]


def float_layer(mod: Module) -> Module:
    """The layer whose weight a ``from_float`` quantizes: ``mod`` itself, or the first module
    of a fused one (``LinearReLU.linear``, ``ConvReLU2d.conv``)."""
    return mod[0] if isinstance(mod, _FusedModule) else mod


def qconfig_of(mod: Module, cls: str) -> Any:
    """``mod.qconfig`` for ``cls.from_float``, or a QuantizationError naming both."""
    qconfig = getattr(mod, "qconfig", None)
    if qconfig is None:
        raise QuantizationError(f"{cls}.from_float({type(mod).__name__}): module has no qconfig")
    return qconfig
