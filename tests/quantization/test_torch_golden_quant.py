"""Golden tests against torch.ao.quantization (skipped when torch is not installed)."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite.quantization as Q
from crypten_lite import nn

torch = pytest.importorskip("torch")
tq = pytest.importorskip("torch.ao.quantization")

# torch warns that reduce_range and torch.ao.quantization itself are deprecated
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def _targs(kwargs: dict) -> dict:
    out = {}
    for k, v in kwargs.items():
        out[k] = getattr(torch, v) if k in ("dtype", "qscheme") else v
    return out


def _golden_x() -> np.ndarray:
    torch.manual_seed(0)
    return (torch.randn(1000) * 2 + 0.5).numpy()


def _same(ours: tuple, theirs: tuple) -> None:
    s, z = ours
    ts, tz = theirs
    np.testing.assert_array_equal(s, ts.numpy().astype(np.float64).reshape(s.shape))
    np.testing.assert_array_equal(z, tz.numpy().astype(np.int64).reshape(z.shape))


PER_TENSOR = [
    dict(),
    dict(reduce_range=True),
    dict(dtype="qint8", qscheme="per_tensor_symmetric"),
    dict(dtype="qint8", qscheme="per_tensor_affine", reduce_range=True),
    dict(dtype="quint8", qscheme="per_tensor_symmetric"),
    dict(quant_min=0, quant_max=127),
    dict(dtype="qint8", qscheme="per_tensor_symmetric", quant_min=-127, quant_max=127),
    dict(dtype="qint8", quant_min=-15, quant_max=15, reduce_range=True),
    dict(dtype="qint32", qscheme="per_tensor_symmetric"),
]


@pytest.mark.parametrize("kwargs", PER_TENSOR)
@pytest.mark.parametrize("kind", ["MinMaxObserver", "MovingAverageMinMaxObserver"])
def test_per_tensor_observers_match_torch(kind: str, kwargs: dict) -> None:
    x = _golden_x()
    ours = getattr(Q, kind)(**kwargs)
    theirs = getattr(tq, kind)(**_targs(kwargs))
    for batch in (x, x * 0.5, x * 3 + 1, x[:7] - 4):  # moving average over several batches
        ours(batch)
        theirs(torch.from_numpy(batch))
    np.testing.assert_array_equal(ours.min_val, theirs.min_val.numpy())
    _same(ours.calculate_qparams(), theirs.calculate_qparams())


def test_semantics_golden_values() -> None:
    x = _golden_x()
    obs = Q.MinMaxObserver()
    obs(x)
    obs(x * 0.5)
    s, z = obs.calculate_qparams()
    assert round(float(s), 6) == 0.056904 and int(z) == 102
    hist = Q.HistogramObserver()
    hist(x)
    hist(x * 0.5)
    s, z = hist.calculate_qparams()
    assert round(float(s), 6) == 0.056876 and int(z) == 102


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(reduce_range=True),
        dict(dtype="qint8", qscheme="per_tensor_symmetric"),
        dict(quant_min=0, quant_max=127),
    ],
)
def test_histogram_observer_matches_torch(kwargs: dict) -> None:
    x = _golden_x()
    ours = Q.HistogramObserver(**kwargs)
    theirs = tq.HistogramObserver(**_targs(kwargs))
    for batch in (x, x * 0.5, x * 3 + 1, np.abs(x[:100])):
        ours(batch)
        theirs(torch.from_numpy(batch.astype(np.float32)))
    np.testing.assert_array_equal(ours.histogram, theirs.histogram.numpy())
    _same(ours.calculate_qparams(), theirs.calculate_qparams())


@pytest.mark.parametrize(
    "shape,axis", [((6, 10), 0), ((6, 10), 1), ((4, 3, 3, 3), 0), ((4, 3, 3, 3), 1)]
)
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(dtype="qint8", qscheme="per_channel_symmetric"),
        dict(dtype="quint8", qscheme="per_channel_affine"),
        dict(dtype="qint8", qscheme="per_channel_symmetric", quant_min=-127, quant_max=127),
    ],
)
@pytest.mark.parametrize(
    "kind", ["PerChannelMinMaxObserver", "MovingAveragePerChannelMinMaxObserver"]
)
def test_per_channel_observers_match_torch(
    kind: str, kwargs: dict, shape: tuple, axis: int
) -> None:
    rng = np.random.default_rng(1)
    ours = getattr(Q, kind)(ch_axis=axis, **kwargs)
    theirs = getattr(tq, kind)(ch_axis=axis, **_targs(kwargs))
    for scale in (1.0, 0.3, 2.0):
        w = (rng.normal(size=shape) * scale).astype(np.float32)
        ours(w)
        theirs(torch.from_numpy(w))
    _same(ours.calculate_qparams(), theirs.calculate_qparams())


def test_fake_quantize_forward_backward_semantics_example() -> None:
    fq_t = tq.FakeQuantize(observer=tq.MinMaxObserver, quant_min=0, quant_max=255)
    fq_t.disable_observer()
    fq_t.scale.copy_(torch.tensor([0.1]))
    fq_t.zero_point.copy_(torch.tensor([0], dtype=torch.int32))
    x_t = torch.tensor([-1.0, 0.04, 0.06, 10.0, 30.0], requires_grad=True)
    y_t = fq_t(x_t)
    y_t.sum().backward()

    fq = Q.FakeQuantize(observer=Q.MinMaxObserver, quant_min=0, quant_max=255)
    fq.activation_post_process(np.array([0.0, 25.5]))  # observed: s = 0.1, z = 0
    fq.disable_observer()
    fq.register_buffer("scale", np.array(0.1))
    fq.register_buffer("zero_point", np.array(0))
    y = fq(np.array([-1.0, 0.04, 0.06, 10.0, 30.0]))
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(fq.backward(np.ones(5)), x_t.grad.numpy())
    np.testing.assert_allclose(y, [0, 0, 0.1, 10, 25.5], atol=1e-12)


def test_fake_quantize_default_qat_observer_matches_torch() -> None:
    rng = np.random.default_rng(2)
    ours = Q.default_fake_quant()
    theirs = tq.default_fake_quant()
    for _ in range(3):
        x = rng.normal(size=(8, 5)).astype(np.float32) * 3
        x_t = torch.from_numpy(x).requires_grad_(True)
        y_t = theirs(x_t)
        y_t.backward(torch.ones_like(y_t))
        y = ours(x)
        _same((ours.scale, ours.zero_point), (theirs.scale, theirs.zero_point))
        np.testing.assert_allclose(y, y_t.detach().numpy(), atol=1e-6)
        np.testing.assert_array_equal(ours.backward(np.ones_like(x)), x_t.grad.numpy())


def test_fuse_conv_bn_eval_matches_torch() -> None:
    rng = np.random.default_rng(3)
    conv_t = torch.nn.Conv2d(3, 4, 3, padding=1).double()
    bn_t = torch.nn.BatchNorm2d(4).double()
    with torch.no_grad():
        bn_t.running_mean.copy_(torch.from_numpy(rng.normal(size=4)))
        bn_t.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2, size=4)))
        bn_t.weight.copy_(torch.from_numpy(rng.normal(size=4)))
        bn_t.bias.copy_(torch.from_numpy(rng.normal(size=4)))
    model_t = torch.nn.Sequential(conv_t, bn_t).eval()
    fused_t = tq.fuse_modules(model_t, [["0", "1"]])
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)).eval()
    model.load_state_dict(model_t.state_dict())
    fused = Q.fuse_modules(model, [["0", "1"]])
    np.testing.assert_allclose(fused[0].weight, fused_t[0].weight.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(fused[0].bias, fused_t[0].bias.detach().numpy(), rtol=1e-12)
    assert type(fused[1]).__name__ == "Identity"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dynamic_linear_matches_torch(seed: int) -> None:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    torch.backends.quantized.engine = "x86"
    model_t = torch.nn.Sequential(torch.nn.Linear(20, 7))
    dyn_t = tq.quantize_dynamic(model_t, {torch.nn.Linear}, dtype=torch.qint8)
    model = nn.Sequential(nn.Linear(20, 7))
    model.load_state_dict(model_t.state_dict())
    dyn = Q.quantize_dynamic(model, {nn.Linear}, reduce_range=True)
    w_t = dyn_t[0].weight()
    assert float(dyn[0].weight_scale) == w_t.q_scale()
    # torch multiplies by a float32 1/scale: exact .5 ties may round the other way
    diff = w_t.int_repr().numpy().astype(np.int64) - dyn[0].weight_q
    ratio = np.asarray(model[0].weight) / float(dyn[0].weight_scale)
    assert np.all(np.abs(diff) <= 1)
    assert np.all(np.abs(np.abs(ratio[diff != 0] % 1) - 0.5) < 1e-5)
    twin = Q.DynamicQuantizedLinear(  # same int8 weights as torch: outputs to float32 accuracy
        w_t.int_repr().numpy(), w_t.q_scale(), 0, model[0].bias, reduce_range=True
    )
    for scale in (1.0, 0.01, 30.0, 1e-6):  # 1e-6: fbgemm's small-scale floor (6.1e-5)
        x = (rng.normal(size=(5, 20)) * scale + scale / 3).astype(np.float32)
        want = dyn_t(torch.from_numpy(x)).detach().numpy()
        assert np.abs(twin(x) - want).max() <= 1e-6 * np.abs(want).max()
        got = dyn(x)
        bound = np.abs(diff).sum() * np.abs(x).max() * float(dyn[0].weight_scale)
        assert np.abs(got - want).max() <= bound + 1e-6 * np.abs(want).max()


@pytest.mark.parametrize("seed", [5, 6])
def test_static_flow_matches_torch_eager(seed: int) -> None:
    pytest.importorskip("crypten_lite.quantization.quantized")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    torch.backends.quantized.engine = "x86"
    model_t = torch.nn.Sequential(
        tq.QuantStub(),
        torch.nn.Linear(16, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 5),
        tq.DeQuantStub(),
    ).eval()
    qconfig_t = tq.QConfig(
        activation=tq.MinMaxObserver.with_args(quant_min=0, quant_max=127),
        weight=tq.PerChannelMinMaxObserver.with_args(  # the recommended MPC weights
            dtype=torch.qint8,
            qscheme=torch.per_channel_symmetric,
            quant_min=-127,
            quant_max=127,
            eps=2**-12,
        ),
    )
    model_t.qconfig = qconfig_t
    fused_t = tq.fuse_modules(model_t, [["1", "2"]])
    prep_t = tq.prepare(fused_t)
    model = nn.Sequential(
        Q.QuantStub(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 5), Q.DeQuantStub()
    ).eval()
    model.load_state_dict(model_t.state_dict())
    model.qconfig = Q.QConfig(
        activation=Q.MinMaxObserver.with_args(quant_min=0, quant_max=127),
        weight=Q.per_channel_weight_observer_range_neg_127_to_127,
    )
    prep = Q.prepare(Q.fuse_modules(model, [["1", "2"]]))
    calib = rng.normal(size=(64, 16)).astype(np.float32)
    prep_t(torch.from_numpy(calib))
    prep(calib)
    conv_t = tq.convert(prep_t)
    conv = Q.convert(prep)
    _same(  # the input observer sees identical float32 data: bit-exact
        prep[0].activation_post_process.calculate_qparams(),
        prep_t[0].activation_post_process.calculate_qparams(),
    )
    for i in (1, 3):  # float64 layers vs torch's float32 ones: the observed max may differ 1 ulp
        s, z = prep[i].activation_post_process.calculate_qparams()
        ts, tz = prep_t[i].activation_post_process.calculate_qparams()
        np.testing.assert_allclose(s, ts.numpy()[0], rtol=1e-6)
        assert abs(int(z) - int(tz[0])) <= 1
    # inputs inside the calibrated range: torch clamps int8 outputs to the dtype range (0..255),
    # not to the observer's quant_max (127), so out-of-range inputs would differ by design
    x = calib[:50]
    want = conv_t(torch.from_numpy(x)).numpy()
    got = np.asarray(conv(x))
    out_scale = float(conv_t[3].scale)
    # int8 outputs agree to +-1 LSB (float32 vs float64 requantization near ties)
    assert np.abs(got - want).max() <= out_scale * 1.0001
    assert np.mean(np.abs(got - want) < 1e-6) > 0.95
