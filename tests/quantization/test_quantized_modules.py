"""Plaintext int8 modules: kernels against explicit integer formulas, the prepare -> calibrate ->
convert flow, bad input, and torch's quantized kernels (golden, when torch is installed)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from crypten_lite import nn
from crypten_lite import quantization as Q
from crypten_lite.errors import QuantizationError
from crypten_lite.quantization import quantized as qm
from crypten_lite.runtime.testing import run_parties


def _requant_ref(acc, sx, sw, bias, sy, zy, lo, hi, axis_shape):
    real = acc * (sx * sw).reshape(axis_shape) + bias.reshape(axis_shape)
    return np.clip(np.rint(real / sy) + zy, lo, hi).astype(np.int64)


def _mlp(rng):
    return nn.Sequential(
        Q.QuantStub(),
        nn.Linear(12, 16, rng=rng),
        nn.ReLU(),
        nn.Linear(16, 5, rng=rng),
        Q.DeQuantStub(),
    ).eval()


def _cnn(rng):
    return nn.Sequential(
        Q.QuantStub(),
        nn.Conv2d(2, 4, 3, padding=1, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 5, rng=rng),
        Q.DeQuantStub(),
    ).eval()


def convert_model(model, x, activation="minmax"):
    """fuse (layer, ReLU) at "1","2", prepare with mpc_qconfig, calibrate on x, convert."""
    fused = Q.fuse_modules(model, [["1", "2"]])
    fused.qconfig = Q.mpc_qconfig(activation)
    prepared = Q.prepare(fused)
    prepared(x)
    return Q.convert(prepared)


def test_convert_builds_int8_modules_and_tracks_float_model():
    rng = np.random.default_rng(0)
    model = _mlp(rng)
    x = rng.uniform(-1, 1, size=(64, 12))
    qmodel = convert_model(model, x)
    kinds = [type(m).__name__ for m in qmodel]
    assert kinds == [
        "Quantize",
        "QuantizedLinearReLU",
        "PassThrough",
        "QuantizedLinear",
        "DeQuantize",
    ]
    lin = qmodel[1]
    assert lin.weight_q.dtype == np.int8 and lin.weight_q.shape == (16, 12)
    assert np.abs(lin.weight_q).max() == 127  # per-channel symmetric: each row reaches 127
    assert (np.abs(lin.weight_q).max(axis=1) == 127).all()
    assert np.all(lin.w_zero_point == 0) and lin.w_scale.shape == (16,)
    np.testing.assert_allclose(lin.weight_dequantized(), model[1].weight, atol=lin.w_scale.max())
    out = qmodel(x)
    ref = model(x)
    assert np.abs(out - ref).max() < 6 * qmodel[3].scale
    assert np.mean(out.argmax(1) == ref.argmax(1)) > 0.9


def test_linear_kernel_is_the_integer_reference():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(32, 12))
    qmodel = convert_model(_mlp(rng), x)
    quant, lin_relu, lin = qmodel[0], qmodel[1], qmodel[3]
    xq = quant(x)
    assert isinstance(xq, qm.QTensor) and xq.dtype == np.uint8
    for layer, inp in ((lin_relu, xq), (lin, lin_relu(xq))):
        acc = (inp.int_repr.astype(np.int64) - inp.zero_point) @ (
            layer.weight_q.astype(np.int64) - layer.w_zero_point[:, None]
        ).T
        lo = layer.zero_point if layer.relu_fused else layer.quant_min
        want = _requant_ref(
            acc,
            inp.scale,
            layer.w_scale,
            layer.bias,
            layer.scale,
            layer.zero_point,
            lo,
            layer.quant_max,
            (-1,),
        )
        got = layer(inp)
        np.testing.assert_array_equal(got.int_repr.astype(np.int64), want)
        assert got.scale == layer.scale and got.zero_point == layer.zero_point


def test_conv_pool_flatten_kernels():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, size=(6, 2, 6, 6))
    qmodel = convert_model(_cnn(rng), x)
    quant, conv = qmodel[0], qmodel[1]
    assert type(conv).__name__ == "QuantizedConvReLU2d"
    xq = quant(x)
    xc = np.pad(xq.int_repr.astype(np.int64) - xq.zero_point, ((0, 0), (0, 0), (1, 1), (1, 1)))
    wc = conv.weight_q.astype(np.int64)
    acc = np.zeros((6, 4, 6, 6), dtype=np.int64)
    for i in range(6):
        for j in range(6):
            acc[:, :, i, j] = np.einsum("nchw,ochw->no", xc[:, :, i : i + 3, j : j + 3], wc)
    want = _requant_ref(
        acc,
        xq.scale,
        conv.w_scale,
        conv.bias,
        conv.scale,
        conv.zero_point,
        conv.zero_point,
        conv.quant_max,
        (-1, 1, 1),
    )
    y = conv(xq)
    np.testing.assert_array_equal(y.int_repr.astype(np.int64), want)
    pooled = qmodel[3](y)
    np.testing.assert_array_equal(
        pooled.int_repr, y.int_repr.reshape(6, 4, 3, 2, 3, 2).max(axis=(3, 5))
    )
    flat = qmodel[4](pooled)
    assert flat.shape == (6, 36) and flat.scale == y.scale
    r = qm.QuantizedReLU()(qm.QTensor(np.array([3, 7, 10], np.uint8), 0.5, 7))
    np.testing.assert_array_equal(r.int_repr, [7, 7, 10])


def test_qtensor_checks_and_dequantize():
    q = qm.QTensor(np.array([0, 128, 255], dtype=np.uint8), 0.5, 128)
    np.testing.assert_array_equal(q.dequantize(), [-64.0, 0.0, 63.5])
    assert "scale=0.5" in repr(q) and "128, 255" not in repr(q)
    with pytest.raises(TypeError, match="int_repr"):
        qm.QTensor(np.array([1.0]), 0.5, 0)
    with pytest.raises(QuantizationError, match="scale"):
        qm.QTensor(np.array([1], np.uint8), 0.0, 0)


def test_uncalibrated_and_misused_modules_raise_naming_the_module():
    rng = np.random.default_rng(3)
    fused = Q.fuse_modules(_mlp(rng), [["1", "2"]])
    fused.qconfig = Q.mpc_qconfig()
    prepared = Q.prepare(fused)
    with pytest.raises(QuantizationError, match="calibrat"):
        Q.convert(prepared)
    # from_float directly on an observed-but-empty module names the observer's module
    with pytest.raises(QuantizationError, match=r"LinearReLU.*has not observed"):
        qm.QuantizedLinearReLU.from_float(prepared[1])
    qmodel = convert_model(_mlp(rng), rng.uniform(size=(8, 12)))
    with pytest.raises(QuantizationError, match=r"QuantizedLinearReLU.*expected a QTensor"):
        qmodel[1](np.zeros((2, 12)))
    with pytest.raises(QuantizationError, match="expected last dim 12"):
        qmodel[1](qmodel[0](np.zeros((2, 11))))
    with pytest.raises(QuantizationError, match="has no qconfig"):
        qm.QuantizedLinear.from_float(nn.Linear(3, 2))

    def generic_encrypt(session):
        mine = copy.deepcopy(qmodel).encrypt(src=0)  # shares the float bias, not the int8 weight
        with pytest.raises(QuantizationError, match="encrypt_quantized"):
            mine(np.zeros((1, 12)))

    run_parties(generic_encrypt, world_size=2)


# -- golden: torch's quantized eager kernels (x86 engine) --------------------------------------
def _torch_linear(torch, layer, xq, relu):
    tq = torch.ao.nn.intrinsic.quantized if relu else torch.ao.nn.quantized
    cls = tq.LinearReLU if relu else tq.Linear
    mod = cls(layer.in_features, layer.out_features)
    w = torch._make_per_channel_quantized_tensor(
        torch.from_numpy(layer.weight_q.copy()),
        torch.from_numpy(layer.w_scale.copy()),
        torch.from_numpy(layer.w_zero_point.copy()),
        0,
    )
    mod.set_weight_bias(w, torch.from_numpy(layer.bias).float())
    mod.scale, mod.zero_point = layer.scale, layer.zero_point
    tx = torch._make_per_tensor_quantized_tensor(
        torch.from_numpy(xq.int_repr.copy()), xq.scale, xq.zero_point
    )
    return mod(tx).int_repr().numpy().astype(np.int64)


def test_golden_against_torch_quantized_linear():
    torch = pytest.importorskip("torch")
    torch.backends.quantized.engine = "x86"
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, size=(64, 12))
    qmodel = convert_model(_mlp(rng), x)
    xq = qmodel[0](x)
    for layer, inp in ((qmodel[1], xq), (qmodel[3], qmodel[1](xq))):
        got = layer(inp).int_repr.astype(np.int64)
        want = _torch_linear(torch, layer, inp, layer.relu_fused)
        # float32 (torch) vs float64 (ours) requantization: at most one step, rarely
        assert np.abs(got - want).max() <= 1
        assert np.mean(got != want) < 0.01


def test_golden_against_torch_quantized_conv():
    torch = pytest.importorskip("torch")
    torch.backends.quantized.engine = "x86"
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, size=(6, 2, 6, 6))
    conv = convert_model(_cnn(rng), x)[1]
    xq = convert_model(_cnn(np.random.default_rng(5)), x)[0](x)
    mod = torch.ao.nn.intrinsic.quantized.ConvReLU2d(2, 4, 3, padding=1)
    w = torch._make_per_channel_quantized_tensor(
        torch.from_numpy(conv.weight_q.copy()),
        torch.from_numpy(conv.w_scale.copy()),
        torch.from_numpy(conv.w_zero_point.copy()),
        0,
    )
    mod.set_weight_bias(w, torch.from_numpy(conv.bias).float())
    mod.scale, mod.zero_point = conv.scale, conv.zero_point
    tx = torch._make_per_tensor_quantized_tensor(
        torch.from_numpy(xq.int_repr.copy()), xq.scale, xq.zero_point
    )
    want = mod(tx).int_repr().numpy().astype(np.int64)
    got = conv(xq).int_repr.astype(np.int64)
    assert np.abs(got - want).max() <= 1
    assert np.mean(got != want) < 0.01
