"""Eval-mode fusion: batch-norm folding and fused modules."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite.quantization as Q
from crypten_lite import nn
from crypten_lite.errors import QuantizationError


def _bn(bn: nn.Module, rng: np.random.Generator) -> nn.Module:
    c = bn.num_features
    bn.register_buffer("running_mean", rng.normal(size=c))
    bn.register_buffer("running_var", rng.uniform(0.5, 2.0, size=c))
    bn.register_parameter("weight", rng.normal(size=c))
    bn.register_parameter("bias", rng.normal(size=c))
    return bn


@pytest.mark.parametrize("bias", [True, False])
def test_conv_bn_relu_fold_is_exact(bias: bool, rng: np.random.Generator) -> None:
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, bias=bias, rng=rng), _bn(nn.BatchNorm2d(3), rng), nn.ReLU()
    ).eval()
    x = rng.normal(size=(2, 2, 5, 5))
    fused = Q.fuse_modules(model, [["0", "1", "2"]])
    assert isinstance(fused[0], Q.ConvReLU2d) and isinstance(fused[0].conv, nn.Conv2d)
    assert type(fused[1]) is nn.Identity and type(fused[2]) is nn.Identity
    np.testing.assert_allclose(fused(x), model(x), rtol=1e-12, atol=1e-12)
    assert type(model[1]) is nn.BatchNorm2d  # not in place


def test_conv_bn_formula(rng: np.random.Generator) -> None:
    conv = nn.Conv2d(1, 2, 1, rng=rng)
    bn = _bn(nn.BatchNorm2d(2), rng).eval()
    conv.eval()
    fused = Q.fuse_conv_bn_eval(conv, bn)
    k = bn.weight / np.sqrt(bn.running_var + bn.eps)
    np.testing.assert_allclose(fused.weight, conv.weight * k[:, None, None, None])
    np.testing.assert_allclose(fused.bias, (conv.bias - bn.running_mean) * k + bn.bias)


def test_linear_bn_and_linear_relu(rng: np.random.Generator) -> None:
    model = nn.Sequential(
        nn.Linear(4, 3, rng=rng), _bn(nn.BatchNorm1d(3), rng), nn.Linear(3, 2, rng=rng), nn.ReLU()
    ).eval()
    fused = Q.fuse_modules(model, [["0", "1"], ["2", "3"]])
    assert type(fused[0]) is nn.Linear and isinstance(fused[2], Q.LinearReLU)
    assert fused[2].linear is fused[2][0] and fused[2].relu is fused[2][1]
    x = rng.normal(size=(5, 4))
    np.testing.assert_allclose(fused(x), model(x), rtol=1e-12, atol=1e-12)


def test_nested_names_and_bn_relu(rng: np.random.Generator) -> None:
    inner = nn.Sequential(_bn(nn.BatchNorm2d(2), rng), nn.ReLU())
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), inner).eval()
    fused = Q.fuse_modules(model, ["1.0", "1.1"])
    assert isinstance(fused[1][0], Q.BNReLU2d)
    x = rng.normal(size=(1, 1, 4, 4))
    np.testing.assert_allclose(fused(x), model(x), rtol=1e-12)


def test_fusion_errors(rng: np.random.Generator) -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.BatchNorm2d(2))
    with pytest.raises(QuantizationError, match="eval mode"):
        Q.fuse_modules(model.train(), [["0", "1"]])
    with pytest.raises(QuantizationError, match=r"cannot fuse '1' \(BatchNorm2d\)\+'0' \(Conv2d\)"):
        Q.fuse_modules(model.eval(), [["1", "0"]])
    with pytest.raises(QuantizationError, match="no sub-module named '7'"):
        Q.fuse_modules(model.eval(), [["0", "7"]])
    bad = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.BatchNorm2d(3)).eval()
    with pytest.raises(QuantizationError, match="3 features"):
        Q.fuse_modules(bad, [["0", "1"]])


def test_fused_model_converts(rng: np.random.Generator) -> None:
    pytest.importorskip("crypten_lite.quantization.quantized")
    model = nn.Sequential(
        Q.QuantStub(),
        nn.Conv2d(1, 4, 3, padding=1, rng=rng),
        _bn(nn.BatchNorm2d(4), rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 3, rng=rng),
        Q.DeQuantStub(),
    ).eval()
    fused = Q.fuse_modules(model, [["1", "2", "3"]])
    fused.qconfig = Q.mpc_qconfig()
    prepared = Q.prepare(fused)
    x = rng.normal(size=(16, 1, 4, 4))
    prepared(x)
    int8 = Q.convert(prepared)
    names = [type(m).__name__ for m in int8]
    assert names == [
        "Quantize",
        "QuantizedConvReLU2d",
        "PassThrough",
        "PassThrough",
        "QuantizedMaxPool2d",
        "QuantizedFlatten",
        "QuantizedLinear",
        "DeQuantize",
    ]
    out = np.asarray(int8(x))
    ref = model(x)
    assert np.abs(out - ref).max() < 0.05 * np.abs(ref).max() + 0.05
