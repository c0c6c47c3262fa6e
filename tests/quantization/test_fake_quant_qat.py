"""Fake quantization (STE) and quantization-aware training with explicit backward."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite.quantization as Q
from crypten_lite import nn
from crypten_lite.errors import QuantizationError


def _fixed_fq(scale: float, zp: int, qmin: int = 0, qmax: int = 255) -> Q.FakeQuantize:
    fq = Q.FakeQuantize(observer=Q.MinMaxObserver, quant_min=qmin, quant_max=qmax)
    fq.activation_post_process(np.array([0.0, 1.0]))
    fq.disable_observer()
    fq.register_buffer("scale", np.array(scale))
    fq.register_buffer("zero_point", np.array(zp))
    return fq


def test_semantics_example_forward_and_ste() -> None:
    fq = _fixed_fq(0.1, 0)
    y = fq(np.array([-1.0, 0.04, 0.06, 10.0, 30.0]))
    np.testing.assert_allclose(y, [0.0, 0.0, 0.1, 10.0, 25.5], atol=1e-12)
    np.testing.assert_array_equal(fq.backward(np.full(5, 2.0)), [0, 2, 2, 2, 0])


def test_observer_updates_qparams_then_freezes(rng: np.random.Generator) -> None:
    fq = Q.FakeQuantize(observer=Q.MinMaxObserver, quant_min=0, quant_max=255)
    fq(np.array([-1.0, 3.0]))
    s, z = fq.scale, fq.zero_point
    assert float(s) == pytest.approx(4 / 255, rel=1e-6) and int(z) == 64
    fq.disable_observer()
    fq(np.array([-10.0, 30.0]))
    assert fq.scale == s and not np.array_equal(fq.activation_post_process.max_val, 30.0)
    fq.disable_fake_quant()
    x = rng.normal(size=5)
    assert fq(x) is x
    np.testing.assert_array_equal(fq.backward(np.ones(5)), np.ones(5))


def test_per_channel_fake_quant() -> None:
    fq = Q.default_per_channel_weight_fake_quant()
    w = np.array([[1.0, -0.5, 0.25], [10.0, 3.0, -20.0]])
    out = fq(w)
    s = np.abs(w).max(axis=1) / 127.5
    np.testing.assert_allclose(fq.scale, s, rtol=1e-6)
    s = fq.scale[:, None]
    np.testing.assert_allclose(out, np.clip(np.rint(w / s), -128, 127) * s, rtol=1e-12)


def test_fake_quant_needs_observation() -> None:
    fq = Q.FakeQuantize()
    fq.disable_observer()
    with pytest.raises(QuantizationError, match="needs qparams"):
        fq(np.ones(3))


def _numeric_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[idx] = eps
        g[idx] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def _no_fake_quant(mod) -> None:
    for m in mod.modules():
        if isinstance(m, Q.FakeQuantize):
            m.disable_fake_quant()


@pytest.mark.parametrize("kind", ["linear", "linear_relu", "conv", "conv_relu"])
def test_qat_backward_matches_numeric_gradient(kind: str, rng: np.random.Generator) -> None:
    qc = Q.default_qat_qconfig
    if kind.startswith("linear"):
        float_mod = nn.Linear(5, 4, rng=rng)
        if kind == "linear_relu":
            float_mod = Q.LinearReLU(float_mod, nn.ReLU())
        x = rng.normal(size=(3, 5))
        cls = Q.qat.LinearReLU if kind == "linear_relu" else Q.qat.Linear
    else:
        float_mod = nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=rng)
        if kind == "conv_relu":
            float_mod = Q.ConvReLU2d(float_mod, nn.ReLU())
        x = rng.normal(size=(2, 2, 5, 5))
        cls = Q.qat.ConvReLU2d if kind == "conv_relu" else Q.qat.Conv2d
    float_mod.qconfig = qc
    mod = cls.from_float(float_mod)
    _no_fake_quant(mod)  # exact gradients of the float op
    gy = rng.normal(size=mod(x).shape)
    gx = mod.backward(gy)
    np.testing.assert_allclose(
        gx, _numeric_grad(lambda v: float(np.sum(mod(v) * gy)), x), atol=1e-5
    )
    w0 = mod.weight.copy()

    def loss_w(w: np.ndarray) -> float:
        mod.register_parameter("weight", w)
        return float(np.sum(mod(x) * gy))

    numeric = _numeric_grad(loss_w, w0)
    mod.register_parameter("weight", w0)
    mod(x)
    mod.backward(gy)
    np.testing.assert_allclose(mod.grads["weight"], numeric, atol=1e-5)
    assert mod.grads["bias"].shape == mod.bias.shape


def test_weight_gradient_is_masked_by_ste(rng: np.random.Generator) -> None:
    lin = nn.Linear(3, 2, rng=rng)
    lin.qconfig = Q.QConfig(
        activation=Q.default_fake_quant,
        weight=Q.FakeQuantize.with_args(
            observer=Q.MinMaxObserver,
            quant_min=-8,
            quant_max=7,
            dtype="qint8",
            qscheme="per_tensor_symmetric",
        ),
    )
    lin.register_parameter("weight", np.array([[1.0, -0.2, 0.3], [0.5, 0.1, -0.4]]))
    mod = Q.qat.Linear.from_float(lin)
    x = rng.normal(size=(4, 3))
    mod(x)
    mod.weight_fake_quant.disable_observer()
    mod.weight_fake_quant.register_buffer("scale", np.array(0.1))
    mod(x)
    mod.backward(np.ones((4, 2)))
    mask = mod.weight_fake_quant._mask
    full = np.ones((4, 2)).T @ x
    np.testing.assert_array_equal(mod.grads["weight"], np.where(mask, full, 0.0))
    # scale 0.1: the weight 1.0 maps to 10 > quant_max = 7, so it gets no gradient
    assert not mask[0, 0] and mask.sum() == 5


def test_prepare_qat_requires_train_mode(rng: np.random.Generator) -> None:
    model = nn.Sequential(Q.QuantStub(), nn.Linear(3, 2, rng=rng), Q.DeQuantStub())
    model.qconfig = Q.default_qat_qconfig
    with pytest.raises(QuantizationError, match="training mode"):
        Q.prepare_qat(model.eval())


def test_qat_backward_unsupported_module(rng: np.random.Generator) -> None:
    model = nn.Sequential(nn.Linear(3, 2, rng=rng), nn.Sigmoid())
    model.qconfig = Q.default_qat_qconfig
    qat_model = Q.prepare_qat(model.train())
    qat_model(rng.normal(size=(2, 3)))
    with pytest.raises(QuantizationError, match=r"Sigmoid.*has no backward"):
        Q.qat_backward(qat_model, np.ones((2, 2)))


def test_qat_finetunes_digits_mlp_and_converts() -> None:
    pytest.importorskip("crypten_lite.quantization.quantized")
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x, y = digits.data / 16.0, digits.target
    xtr, ytr, xte, yte = x[:1400], y[:1400], x[1400:], y[1400:]
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        Q.QuantStub(),
        nn.Linear(64, 32, rng=rng),
        nn.ReLU(),
        nn.Linear(32, 10, rng=rng),
        Q.DeQuantStub(),
    )
    model.qconfig = Q.mpc_qconfig()  # full-range activations, per-channel [-127, 127] weights
    model.qconfig = Q.QConfig(
        activation=Q.FakeQuantize.with_args(
            observer=Q.MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype="quint8"
        ),
        weight=Q.FakeQuantize.with_args(
            observer=Q.MovingAveragePerChannelMinMaxObserver,
            quant_min=-127,
            quant_max=127,
            dtype="qint8",
            qscheme="per_channel_symmetric",
            averaging_constant=1.0,
        ),
    )
    qat_model = Q.prepare_qat(model.train())
    assert type(qat_model[1]) is Q.qat.Linear and type(qat_model[2]) is Q.qat.ReLU

    def loss_and_grad(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(len(labels)), labels] + 1e-12))
        p[np.arange(len(labels)), labels] -= 1
        return loss, p / len(labels)

    losses = []
    for epoch in range(12):
        order = rng.permutation(len(xtr))
        for start in range(0, len(xtr), 100):
            idx = order[start : start + 100]
            loss, grad = loss_and_grad(qat_model(xtr[idx]), ytr[idx])
            Q.qat_backward(qat_model, grad)
            Q.sgd_step(qat_model, lr=0.5)
        losses.append(loss)
        if epoch == 8:  # freeze the activation ranges for the last epochs, as the tutorial
            for m in qat_model.modules():
                if isinstance(m, Q.FakeQuantize):
                    m.disable_observer()
    assert losses[-1] < 0.5 * losses[0]
    fake_acc = np.mean(qat_model(xte).argmax(axis=1) == yte)
    int8 = Q.convert(qat_model.eval())
    assert type(int8[1]).__name__ == "QuantizedLinear"
    int8_pred = np.asarray(int8(xte)).argmax(axis=1)
    assert fake_acc > 0.85
    assert np.mean(int8_pred == yte) > fake_acc - 0.02


@pytest.mark.parametrize("args", [(2,), (3, 2, 1), (2, 1, 0, 2)])
def test_qat_maxpool_backward(args: tuple, rng: np.random.Generator) -> None:
    pool = Q.qat.MaxPool2d(*args)
    x = rng.normal(size=(2, 3, 7, 6))  # continuous values: no ties
    np.testing.assert_array_equal(pool(x), nn.MaxPool2d(*args)(x))
    gy = rng.normal(size=pool(x).shape)
    numeric = _numeric_grad(lambda v: float(np.sum(pool(v) * gy)), x)
    pool(x)
    np.testing.assert_allclose(pool.backward(gy), numeric, atol=1e-6)


def test_qat_small_cnn_trains_and_converts() -> None:
    pytest.importorskip("crypten_lite.quantization.quantized")
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = (digits.images / 16.0)[:, None]
    y = digits.target
    rng = np.random.default_rng(1)
    model = nn.Sequential(
        Q.QuantStub(),
        nn.Conv2d(1, 4, 3, padding=1, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 10, rng=rng),
        Q.DeQuantStub(),
    )
    model = Q.fuse_modules(model.eval(), [["1", "2"]]).train()
    model.qconfig = Q.default_per_channel_qat_qconfig
    qat_model = Q.prepare_qat(model)
    assert [type(m).__name__ for m in qat_model][1:5] == [
        "ConvReLU2d",
        "PassThrough",
        "MaxPool2d",
        "Flatten",
    ]
    assert type(qat_model[1]) is Q.qat.ConvReLU2d
    first = last = 0.0
    for step in range(60):
        idx = rng.choice(1200, size=100, replace=False)
        logits = qat_model(x[idx])
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        p = z / z.sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(100), y[idx]]))
        first = loss if step == 0 else first
        last = loss
        p[np.arange(100), y[idx]] -= 1
        Q.qat_backward(qat_model, p / 100)
        Q.sgd_step(qat_model, lr=2.0)
    assert last < 0.75 * first
    int8 = Q.convert(qat_model.eval())
    assert [type(m).__name__ for m in int8][1:6] == [
        "QuantizedConvReLU2d",
        "PassThrough",
        "QuantizedMaxPool2d",
        "QuantizedFlatten",
        "QuantizedLinear",
    ]
    test = x[1200:]
    agree = np.mean(np.asarray(int8(test)).argmax(1) == qat_model(test).argmax(1))
    assert agree > 0.95
    assert np.mean(np.asarray(int8(test)).argmax(1) == y[1200:]) > 0.7
