"""QConfig, prepare -> calibrate -> convert on crypten_lite.nn models, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite.quantization as Q
from crypten_lite import nn
from crypten_lite.errors import QuantizationError


def _mlp(rng: np.random.Generator) -> nn.Sequential:
    return nn.Sequential(
        Q.QuantStub(),
        nn.Linear(12, 16, rng=rng),
        nn.ReLU(),
        nn.Linear(16, 3, rng=rng),
        Q.DeQuantStub(),
    ).eval()


def test_qconfig_needs_constructors() -> None:
    with pytest.raises(ValueError, match="observer instance for activation"):
        Q.QConfig(activation=Q.MinMaxObserver(), weight=Q.MinMaxObserver)
    with pytest.raises(ValueError, match="observer instance for weight"):
        Q.QConfig(activation=Q.MinMaxObserver, weight=Q.default_weight_observer())
    qc = Q.QConfig(Q.MinMaxObserver, Q.default_weight_observer)
    assert qc.activation is Q.MinMaxObserver and qc.weight().dtype == np.int8


def test_default_qconfigs() -> None:
    x86 = Q.get_default_qconfig("x86")
    act, w = x86.activation(), x86.weight()
    assert isinstance(act, Q.HistogramObserver) and act.quant_max == 127
    assert isinstance(w, Q.PerChannelMinMaxObserver) and w.qscheme == "per_channel_symmetric"
    qnn = Q.get_default_qconfig("qnnpack")
    assert qnn.activation().quant_max == 255 and qnn.weight().ch_axis is None
    with pytest.raises(ValueError, match="backend"):
        Q.get_default_qconfig("arm")
    mpc = Q.mpc_qconfig()
    w = mpc.weight()
    assert (w.quant_min, w.quant_max, w.qscheme) == (-127, 127, "per_channel_symmetric")
    act = mpc.activation()
    assert (act.dtype, act.quant_min, act.quant_max) == (np.uint8, 0, 255)
    assert isinstance(Q.mpc_qconfig("histogram").activation(), Q.HistogramObserver)
    assert Q.default_qat_qconfig.activation().quant_max == 127  # reduce_range, as torch
    assert Q.weight_observer_range_neg_127_to_127().eps == 2**-12


def test_prepare_attaches_observers_and_keeps_float_outputs(rng: np.random.Generator) -> None:
    model = _mlp(rng)
    model.qconfig = Q.mpc_qconfig()
    prepared = Q.prepare(model)
    assert "activation_post_process" not in dict(model[1].named_children())  # copy
    observed = [n for n, m in prepared.named_modules() if n.endswith("activation_post_process")]
    assert observed == [f"{i}.activation_post_process" for i in (0, 1, 2, 3)]
    x = rng.normal(size=(20, 12))
    np.testing.assert_array_equal(prepared(x), model(x))
    obs = prepared[1].activation_post_process
    assert obs.has_observed and obs.name == "1" and obs.owner == "Linear"
    h = model[1](x)
    assert obs.min_val == np.float32(h.min()) and obs.max_val == np.float32(h.max())


def test_pooling_and_flatten_get_no_observer(rng: np.random.Generator) -> None:
    model = nn.Sequential(
        Q.QuantStub(),
        nn.Conv2d(1, 2, 3, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8, 2, rng=rng),
        Q.DeQuantStub(),
    ).eval()
    model.qconfig = Q.mpc_qconfig()
    prepared = Q.prepare(model)
    has = [
        i for i, m in enumerate(prepared) if "activation_post_process" in dict(m.named_children())
    ]
    assert has == [0, 1, 2, 5]


def test_submodule_qconfig_overrides_parent(rng: np.random.Generator) -> None:
    model = _mlp(rng)
    model.qconfig = Q.mpc_qconfig()
    model[3].qconfig = None  # keep the last layer float
    prepared = Q.prepare(model)
    assert "activation_post_process" not in dict(prepared[3].named_children())
    assert prepared[1].qconfig is prepared.qconfig and prepared[3].qconfig is None


def test_convert_before_calibration_names_the_module(rng: np.random.Generator) -> None:
    model = _mlp(rng)
    model.qconfig = Q.mpc_qconfig()
    prepared = Q.prepare(model)
    with pytest.raises(
        QuantizationError,
        match=r"convert: module '0' \(QuantStub\) has not been calibrated: run representative",
    ):
        Q.convert(prepared)


def test_nan_during_calibration_names_the_module(rng: np.random.Generator) -> None:
    model = _mlp(rng)
    model.qconfig = Q.mpc_qconfig()
    prepared = Q.prepare(model)
    x = rng.normal(size=(4, 12))
    x[0, 0] = np.nan
    with pytest.raises(QuantizationError, match=r"of module '0' \(QuantStub\).*NaN or infinity"):
        prepared(x)
    with pytest.raises(QuantizationError, match=r"of module '1' \(Linear\)"):
        prepared[1](x)


def test_per_channel_axis_error_inside_model(rng: np.random.Generator) -> None:
    model = nn.Sequential(Q.QuantStub(), nn.Linear(4, 2, rng=rng)).eval()
    model.qconfig = Q.QConfig(
        activation=Q.PerChannelMinMaxObserver.with_args(ch_axis=3), weight=Q.default_weight_observer
    )
    prepared = Q.prepare(model)
    with pytest.raises(
        QuantizationError, match=r"module '0' \(QuantStub\): ch_axis 3 is out of range"
    ):
        prepared(rng.normal(size=(2, 4)))


def test_end_to_end_digits_mlp_argmax_agreement() -> None:
    pytest.importorskip("crypten_lite.quantization.quantized")
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = digits.data / 16.0
    y = digits.target
    rng = np.random.default_rng(0)
    # a least-squares trained 64-256-10 MLP: random ReLU features + ridge read-out
    hidden = nn.Linear(64, 256, rng=rng)
    feats = np.maximum(hidden(x[:1200]), 0)
    onehot = np.eye(10)[y[:1200]]
    a = np.hstack([feats, np.ones((1200, 1))])
    sol = np.linalg.solve(a.T @ a + 1e-2 * np.eye(257), a.T @ onehot)
    out = nn.Linear(256, 10, rng=rng)
    out.register_parameter("weight", sol[:-1].T.copy())
    out.register_parameter("bias", sol[-1].copy())
    model = nn.Sequential(Q.QuantStub(), hidden, nn.ReLU(), out, Q.DeQuantStub()).eval()
    model = Q.fuse_modules(model, [["1", "2"]])
    model.qconfig = Q.mpc_qconfig()
    prepared = Q.prepare(model)
    prepared(x[:1200])
    int8 = Q.convert(prepared)
    test = x[1200:]
    float_pred = model(test).argmax(axis=1)
    int8_pred = np.asarray(int8(test)).argmax(axis=1)
    assert np.mean(float_pred == y[1200:]) > 0.8
    assert np.mean(int8_pred == float_pred) >= 0.99
    assert type(int8[1]).__name__ == "QuantizedLinearReLU"


def test_quantize_one_call_and_inplace(rng: np.random.Generator) -> None:
    pytest.importorskip("crypten_lite.quantization.quantized")
    model = _mlp(rng)
    model.qconfig = Q.mpc_qconfig()
    calib = rng.normal(size=(64, 12))
    int8 = Q.quantize(model, lambda m, data: m(data), (calib,))
    assert type(model[1]) is nn.Linear  # not in place
    assert np.abs(np.asarray(int8(calib)) - model(calib)).max() < 0.1
    prepared = Q.prepare(model, inplace=True)
    assert prepared is model
    model(calib)
    assert Q.convert(model, inplace=True) is model
    assert "qconfig" not in model.__dict__


def test_prepare_rejects_non_modules() -> None:
    with pytest.raises(TypeError, match=r"crypten_lite\.nn\.Module"):
        Q.prepare(object())  # type: ignore[type-var]
    with pytest.raises(QuantizationError, match="qconfig must be a QConfig"):
        m = nn.Sequential(nn.Linear(2, 2))
        m.qconfig = "x86"
        Q.prepare(m)


def test_weight_observer_axis_checked_at_prepare(rng: np.random.Generator) -> None:
    model = nn.Sequential(Q.QuantStub(), nn.Linear(4, 2, rng=rng)).eval()
    model.qconfig = Q.QConfig(
        activation=Q.MinMaxObserver,
        weight=Q.PerChannelMinMaxObserver.with_args(ch_axis=2, dtype="qint8"),
    )
    with pytest.raises(
        QuantizationError,
        match=r"prepare: module '1' \(Linear\): the weight observer's ch_axis 2 is out of range",
    ):
        Q.prepare(model)


def test_secret_shared_data_is_refused(rng: np.random.Generator) -> None:
    from crypten_lite.runtime.testing import run_parties
    from crypten_lite.tensor import cryptensor

    x = rng.normal(size=(2, 4))

    def job(session) -> list[str]:
        shared = cryptensor(x if session.rank == 0 else None, src=0, session=session)
        errors = []
        for call in (
            lambda: Q.MinMaxObserver()(shared),
            lambda: Q.quantize_dynamic(nn.Sequential(nn.Linear(4, 2, rng=rng)))(shared),
        ):
            try:
                call()
            except QuantizationError as err:
                errors.append(str(err))
        model = nn.Sequential(nn.Linear(4, 2, rng=np.random.default_rng(0)))
        model.encrypt(src=0, session=session)
        try:
            Q.prepare(model)
        except QuantizationError as err:
            errors.append(str(err))
        return errors

    errors = run_parties(job, 2)[0]
    assert len(errors) == 3
    assert "cannot observe an MPCTensor" in errors[0]
    assert "static quantization" in errors[1]
    assert "encrypted" in errors[2]
