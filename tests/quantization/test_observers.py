"""Observers without torch: formulas, running statistics, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import crypten_lite.quantization as Q
from crypten_lite.encoding import calculate_qparams
from crypten_lite.errors import QuantizationError


def test_minmax_tracks_running_range_and_uses_torch_formula(rng: np.random.Generator) -> None:
    obs = Q.MinMaxObserver()
    assert not obs.has_observed
    a, b = rng.normal(size=100), rng.normal(size=(3, 7)) * 4
    assert obs(a) is a  # returns its input unchanged
    obs(b)
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    assert obs.min_val == np.float32(lo) and obs.max_val == np.float32(hi)
    s, z = obs.calculate_qparams()
    assert s.shape == () and z.shape == () and s.dtype == np.float64 and z.dtype == np.int64
    assert (float(s), int(z)) == calculate_qparams(lo, hi, "quint8", "per_tensor_affine")


def test_semantics_golden_range_without_torch() -> None:
    obs = Q.MinMaxObserver()
    obs(np.array([-5.8074, 8.7030]))
    s, z = obs.calculate_qparams()
    assert abs(float(s) - 0.056904) < 2e-6 and int(z) == 102
    sym = Q.MinMaxObserver(dtype="qint8", qscheme="per_tensor_symmetric")
    sym(np.array([-5.8074, 8.7030]))
    s, z = sym.calculate_qparams()
    assert abs(float(s) - 0.068259) < 2e-6 and int(z) == 0


def test_ranges_and_dtypes() -> None:
    assert (Q.MinMaxObserver().quant_min, Q.MinMaxObserver().quant_max) == (0, 255)
    obs = Q.MinMaxObserver(reduce_range=True)
    assert (obs.quant_min, obs.quant_max) == (0, 127)
    obs = Q.MinMaxObserver(dtype="qint8", quant_min=-127, quant_max=127)
    assert obs.dtype == np.int8 and (obs.quant_min, obs.quant_max) == (-127, 127)
    assert Q.MinMaxObserver(dtype=np.int32).quant_max == 2**31 - 1


def test_moving_average_formula() -> None:
    obs = Q.MovingAverageMinMaxObserver(averaging_constant=0.5)
    obs(np.array([-1.0, 1.0]))
    obs(np.array([-3.0, 5.0]))
    assert obs.min_val == np.float32(-2.0) and obs.max_val == np.float32(3.0)
    obs(np.array([0.0, 1.0]))
    assert obs.min_val == np.float32(-1.0) and obs.max_val == np.float32(2.0)


def test_per_channel_axes(rng: np.random.Generator) -> None:
    w = rng.normal(size=(4, 6, 3))
    for axis in (0, 1, -1):
        obs = Q.PerChannelMinMaxObserver(
            ch_axis=axis, dtype="qint8", qscheme="per_channel_symmetric"
        )
        obs(w)
        rows = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
        np.testing.assert_array_equal(obs.min_val, rows.min(axis=1).astype(np.float32))
        s, z = obs.calculate_qparams()
        assert s.shape == (w.shape[axis],) and np.all(z == 0)
        np.testing.assert_allclose(s, np.abs(rows).max(axis=1) / 127.5, rtol=1e-6)


def test_moving_average_per_channel() -> None:
    obs = Q.MovingAveragePerChannelMinMaxObserver(averaging_constant=0.5, ch_axis=1)
    obs(np.array([[0.0, -2.0], [1.0, 2.0]]))
    obs(np.array([[0.0, -4.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(obs.min_val, [0.0, -3.0])
    np.testing.assert_array_equal(obs.max_val, [2.0, 3.0])


def test_histogram_invariants(rng: np.random.Generator) -> None:
    x = rng.uniform(-1, 3, size=5000)
    hist = Q.HistogramObserver()
    hist(x[:1000])
    hist(x[1000:] * 2)  # the range grows: the old histogram is re-binned
    assert hist.histogram.sum() == pytest.approx(5000, rel=1e-5)
    assert hist.min_val == np.float32(min(x[:1000].min(), 2 * x[1000:].min()))
    s, z = hist.calculate_qparams()
    minmax = Q.MinMaxObserver()
    minmax(x[:1000])
    minmax(x[1000:] * 2)
    s_mm, _ = minmax.calculate_qparams()
    assert 0 < float(s) <= float(s_mm) * 1.0001 and 0 <= int(z) <= 255
    # the L2 search only narrows the range (torch's greedy search rarely clips much)
    y = rng.standard_t(2, size=5000)
    h2, m2 = Q.HistogramObserver(), Q.MinMaxObserver()
    h2(y)
    m2(y)
    assert float(h2.calculate_qparams()[0]) <= float(m2.calculate_qparams()[0])


def test_with_args_builds_fresh_instances() -> None:
    ctor = Q.MinMaxObserver.with_args(dtype="qint8", qscheme="per_tensor_symmetric")
    a, b = ctor(), ctor()
    assert a is not b and a.dtype == np.int8 and a.qscheme == "per_tensor_symmetric"


def test_unobserved_qparams_warn() -> None:
    with pytest.warns(UserWarning):
        s, z = Q.MinMaxObserver().calculate_qparams()
    assert float(s) == 1.0 and int(z) == 0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(
    "make",
    [
        Q.MinMaxObserver,
        Q.MovingAverageMinMaxObserver,
        Q.HistogramObserver,
        lambda: Q.PerChannelMinMaxObserver(ch_axis=0),
    ],
)
def test_nan_inf_refused(make, bad: float) -> None:
    obs = make()
    with pytest.raises(QuantizationError, match="NaN or infinity"):
        obs(np.array([[1.0, bad], [0.0, 2.0]]))
    assert not obs.has_observed


def test_per_channel_axis_out_of_range_names_observer() -> None:
    obs = Q.PerChannelMinMaxObserver(ch_axis=2)
    with pytest.raises(QuantizationError, match=r"ch_axis 2 is out of range for a 2-D input"):
        obs(np.zeros((3, 4)))
    obs = Q.PerChannelMinMaxObserver(ch_axis=0)
    obs(np.zeros((3, 4)))
    with pytest.raises(QuantizationError, match="saw 5 channels"):
        obs(np.zeros((5, 4)))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(qscheme="per_channel_symmetric"),
        dict(dtype="quint8", qscheme="per_tensor_symmetric", reduce_range=True),
        dict(dtype="float32"),
        dict(quant_min=1, quant_max=10),
        dict(quant_min=0),
        dict(eps=0.0),
    ],
)
def test_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(QuantizationError):
        Q.MinMaxObserver(**kwargs)


def test_placeholder_observer_has_no_qparams() -> None:
    obs = Q.PlaceholderObserver(dtype="quint8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert obs.has_observed
    with pytest.raises(QuantizationError, match="dynamic"):
        obs.calculate_qparams()
