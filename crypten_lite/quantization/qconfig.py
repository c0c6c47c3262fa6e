"""``QConfig``: which observers ``prepare`` attaches (``torch.ao.quantization.QConfig``,
pytorch.org/docs/stable/quantization.html).

A QConfig is a named tuple of observer *constructors* (classes or ``Cls.with_args(...)``
partials), never instances: ``prepare`` builds one fresh observer per module. The named
defaults reproduce ``torch.ao.quantization.qconfig``; :func:`mpc_qconfig` is the recommended
choice for secret-shared int8 models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from crypten_lite.nn import Module
from crypten_lite.quantization.fake_quantize import (
    default_fake_quant,
    default_per_channel_weight_fake_quant,
    default_weight_fake_quant,
)
from crypten_lite.quantization.histogram import HistogramObserver
from crypten_lite.quantization.observers import (
    MinMaxObserver,
    PerChannelMinMaxObserver,
    PlaceholderObserver,
)

__all__ = [
    "QConfig",
    "default_dynamic_qconfig",
    "default_dynamic_quant_observer",
    "default_histogram_observer",
    "default_observer",
    "default_per_channel_qat_qconfig",
    "default_per_channel_qconfig",
    "default_per_channel_weight_observer",
    "default_qat_qconfig",
    "default_qconfig",
    "default_weight_observer",
    "get_default_qconfig",
    "mpc_qconfig",
    "per_channel_weight_observer_range_neg_127_to_127",
    "weight_observer_range_neg_127_to_127",
]

Constructor = Callable[[], Any]


class _QConfigFields(NamedTuple):
    activation: Constructor
    weight: Constructor


class QConfig(_QConfigFields):
    """``(activation, weight)`` observer constructors; an observer instance raises ValueError
    (as in torch: ``prepare`` needs one fresh observer per module)."""

    __slots__ = ()

    def __new__(cls, activation: Constructor, weight: Constructor) -> QConfig:
        for name, value in (("activation", activation), ("weight", weight)):
            if isinstance(value, Module):
                raise ValueError(
                    f"QConfig received observer instance for {name}, please pass observer "
                    "class instead. Use MyObserver.with_args(x=1) to override arguments to "
                    "constructor if needed"
                )
            if not callable(value):
                raise ValueError(
                    f"QConfig: {name} must be an observer constructor, got {type(value).__name__}"
                )
        return super().__new__(cls, activation, weight)


#: torch's defaults (observer.py)
default_observer = MinMaxObserver.with_args(quant_min=0, quant_max=127)
default_weight_observer = MinMaxObserver.with_args(dtype="qint8", qscheme="per_tensor_symmetric")
default_per_channel_weight_observer = PerChannelMinMaxObserver.with_args(
    dtype="qint8", qscheme="per_channel_symmetric"
)
default_histogram_observer = HistogramObserver.with_args(quant_min=0, quant_max=127)
default_dynamic_quant_observer = PlaceholderObserver.with_args(
    dtype="quint8", quant_min=0, quant_max=255, is_dynamic=True
)
#: exactly symmetric int8 weights (no -128), eps 2^-12: the recommended MPC weights
weight_observer_range_neg_127_to_127 = MinMaxObserver.with_args(
    dtype="qint8", qscheme="per_tensor_symmetric", quant_min=-127, quant_max=127, eps=2**-12
)
per_channel_weight_observer_range_neg_127_to_127 = PerChannelMinMaxObserver.with_args(
    dtype="qint8", qscheme="per_channel_symmetric", quant_min=-127, quant_max=127, eps=2**-12
)

default_qconfig = QConfig(activation=default_observer, weight=default_weight_observer)
default_per_channel_qconfig = QConfig(
    activation=default_observer, weight=default_per_channel_weight_observer
)
default_dynamic_qconfig = QConfig(
    activation=default_dynamic_quant_observer, weight=default_weight_observer
)
default_qat_qconfig = QConfig(activation=default_fake_quant, weight=default_weight_fake_quant)
default_per_channel_qat_qconfig = QConfig(
    activation=default_fake_quant, weight=default_per_channel_weight_fake_quant
)


def get_default_qconfig(backend: str = "x86") -> QConfig:
    """torch's ``get_default_qconfig`` (version 0): ``"x86"``/``"fbgemm"``: Histogram
    activations with reduce_range + per-channel symmetric qint8 weights; ``"qnnpack"``:
    Histogram without reduce_range + per-tensor symmetric weights; ``"onednn"``: Histogram
    without reduce_range + per-channel weights."""
    if backend in ("x86", "fbgemm"):
        return QConfig(
            activation=HistogramObserver.with_args(reduce_range=True),
            weight=default_per_channel_weight_observer,
        )
    if backend == "qnnpack":
        return QConfig(
            activation=HistogramObserver.with_args(reduce_range=False),
            weight=default_weight_observer,
        )
    if backend == "onednn":
        return QConfig(
            activation=HistogramObserver.with_args(reduce_range=False),
            weight=default_per_channel_weight_observer,
        )
    raise ValueError(
        f"get_default_qconfig: backend must be one of 'x86', 'fbgemm', 'qnnpack', 'onednn', "
        f"got {backend!r}"
    )


def mpc_qconfig(activation: str = "minmax") -> QConfig:
    """The recommended qconfig for secret-shared int8 inference: per-channel symmetric qint8
    weights in ``[-127, 127]`` (exactly symmetric, zero points 0, so shares need no weight
    offset) and full-range quint8 ``0..255`` activations (no reduce_range: MPC has no
    ``vpmaddubsw`` saturation). ``activation``: ``"minmax"`` or ``"histogram"`` (slower
    calibration, clips outliers)."""
    if activation == "minmax":
        act: Constructor = MinMaxObserver.with_args(dtype="quint8", quant_min=0, quant_max=255)
    elif activation == "histogram":
        act = HistogramObserver.with_args(dtype="quint8", quant_min=0, quant_max=255)
    else:
        raise ValueError(
            f"mpc_qconfig: activation must be 'minmax' or 'histogram', got {activation!r}"
        )
    return QConfig(activation=act, weight=per_channel_weight_observer_range_neg_127_to_127)
