"""Dynamic quantization of Linear (per-batch activation qparams)."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite.quantization as Q
from crypten_lite import nn
from crypten_lite.encoding import quantize
from crypten_lite.errors import QuantizationError


def test_choose_qparams_dynamic() -> None:
    s, z = Q.choose_qparams_dynamic(-1.0, 3.0, 0, 255)
    assert s == pytest.approx(4 / 255, rel=1e-7) and z == 64
    s, z = Q.choose_qparams_dynamic(0.5, 2.0, 0, 255)  # range extended to contain 0
    assert z == 0 and s == pytest.approx(2 / 255, rel=1e-7)
    s, z = Q.choose_qparams_dynamic(-2.0, -0.5, 0, 127)
    assert z == 127
    s, _ = Q.choose_qparams_dynamic(0.0, 1e-9, 0, 255)  # floored at 6.1e-5
    assert s == pytest.approx(6.1e-5, rel=1e-6)
    assert Q.choose_qparams_dynamic(0.0, 0.0, 0, 255) == (pytest.approx(0.1), 0)


def test_dynamic_linear_semantics(rng: np.random.Generator) -> None:
    model = nn.Sequential(nn.Linear(6, 4, rng=rng), nn.ReLU(), nn.Linear(4, 2, rng=rng))
    dyn = Q.quantize_dynamic(model)
    assert [type(m).__name__ for m in dyn] == [
        "DynamicQuantizedLinear",
        "ReLU",
        "DynamicQuantizedLinear",
    ]
    assert type(model[0]) is nn.Linear  # not in place
    x = rng.normal(size=(3, 6))
    lin = dyn[0]
    s_x, z_x = Q.choose_qparams_dynamic(x.min(), x.max(), 0, 255)
    x_q = quantize(x, s_x, z_x, "quint8").astype(np.int64)
    want = (x_q - z_x) @ lin.weight_q.astype(np.int64).T * (s_x * lin.weight_scale) + lin.bias
    np.testing.assert_allclose(lin(x), want, rtol=1e-12)
    w = model[0].weight
    assert float(lin.weight_scale) == pytest.approx(np.abs(w).max() / 127.5, rel=1e-6)
    assert np.abs(dyn(x) - model(x)).max() < 0.05


def test_qconfig_spec_variants(rng: np.random.Generator) -> None:
    model = nn.Sequential(nn.Linear(6, 4, rng=rng), nn.ReLU(), nn.Linear(4, 2, rng=rng))
    only_last = Q.quantize_dynamic(model, {"2": Q.default_dynamic_qconfig})
    assert type(only_last[0]) is nn.Linear and isinstance(only_last[2], Q.DynamicQuantizedLinear)
    per_channel = Q.QConfig(
        activation=Q.default_dynamic_qconfig.activation,
        weight=Q.per_channel_weight_observer_range_neg_127_to_127,
    )
    pc = Q.quantize_dynamic(model, {nn.Linear: per_channel})
    assert pc[0].weight_scale.shape == (4,) and pc[0].weight_q.min() >= -127
    fused = Q.fuse_modules(model.eval(), [["0", "1"]])
    dyn = Q.quantize_dynamic(fused)
    assert isinstance(dyn[0], Q.DynamicQuantizedLinearReLU)
    x = rng.normal(size=(5, 6))
    assert (dyn[0](x) >= 0).all()


def test_dynamic_bad_input(rng: np.random.Generator) -> None:
    dyn = Q.quantize_dynamic(nn.Sequential(nn.Linear(3, 2, rng=rng)))
    with pytest.raises(QuantizationError, match="finite"):
        dyn(np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match="last dim 3"):
        dyn(np.ones((2, 4)))
    with pytest.raises(QuantizationError, match="only dtype 'qint8'"):
        Q.quantize_dynamic(nn.Sequential(nn.Linear(3, 2)), dtype="float16")
