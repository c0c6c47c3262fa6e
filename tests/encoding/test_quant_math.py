"""qmin_qmax, calculate_qparams, quantize/dequantize and QuantizedEncoder (active backend)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypten_lite.encoding import (
    FLOAT32_EPS,
    PER_CHANNEL_AFFINE,
    PER_TENSOR_SYMMETRIC,
    QSCHEMES,
    Encoder,
    QuantizedEncoder,
    calculate_qparams,
    dequantize,
    qmin_qmax,
    quantize,
)
from crypten_lite.errors import EncodingError, RingDTypeError, RingShapeError

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "encoding_quant.json").read_text())


def _num(v: float | str) -> float:
    return float(v)  # "inf" / "-inf" are stored as strings


def test_round_half_even_vector() -> None:
    case = VECTORS["round_half_even"]
    q = quantize(case["x"], case["scale"], case["zero_point"], case["dtype"])
    assert q.dtype == np.int8
    assert q.tolist() == case["expected"]


@pytest.mark.parametrize("case", VECTORS["qmin_qmax"])
def test_qmin_qmax_table(case: dict) -> None:
    got = qmin_qmax(
        case["dtype"], case["reduce_range"], case.get("quant_min"), case.get("quant_max")
    )
    assert list(got) == case["expected"]


def test_qmin_qmax_numpy_dtypes() -> None:
    assert qmin_qmax(np.int8) == (-128, 127)
    assert qmin_qmax(np.dtype(np.uint8), True) == (0, 127)
    assert qmin_qmax(np.int32) == (-(2**31), 2**31 - 1)
    assert qmin_qmax("torch.quint8") == (0, 255)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"quant_min": 1, "quant_max": 10}, "include 0"),
        ({"quant_min": -10, "quant_max": -1}, "include 0"),
        ({"quant_min": 0, "quant_max": 0}, "strictly less"),
        ({"quant_min": -200, "quant_max": 100}, "range"),
        ({"quant_min": 0}, "together"),
        ({"quant_min": 0.0, "quant_max": 10}, "quant_min"),
    ],
)
def test_qmin_qmax_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(EncodingError, match=match):
        qmin_qmax("qint8", **kwargs)


@pytest.mark.parametrize("bad", [np.int16, np.float32, "int4", "qint16", 8, None])
def test_bad_dtype(bad: object) -> None:
    with pytest.raises(ValueError, match="dtype"):
        qmin_qmax(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dtype"):
        quantize([1.0], 1.0, 0, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", VECTORS["qparams"], ids=lambda c: c["note"])
def test_qparams_vectors(case: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scale, zp = calculate_qparams(
            _num(case["min"]),
            _num(case["max"]),
            case["dtype"],
            case["qscheme"],
            case.get("quant_min"),
            case.get("quant_max"),
            reduce_range=case["reduce_range"],
        )
    assert isinstance(scale, float) and isinstance(zp, int)
    if "scale_digits" in case:
        assert round(scale, 6) == case["scale_digits"]
    else:
        assert scale == case["scale_exact"]
    assert scale == float(np.float32(scale))  # float32 arithmetic, widened exactly
    assert zp == case["zero_point"]


@pytest.mark.parametrize("case", VECTORS["qparams_per_channel"])
def test_qparams_per_channel_vectors(case: dict) -> None:
    scale, zp = calculate_qparams(case["min"], case["max"], case["dtype"], case["qscheme"])
    assert isinstance(scale, np.ndarray) and isinstance(zp, np.ndarray)
    assert scale.tolist() == case["scale_exact"]
    assert zp.dtype == np.int64 and zp.tolist() == case["zero_point"]


def test_unobserved_warns() -> None:
    with pytest.warns(UserWarning, match="no data"):
        assert calculate_qparams(np.inf, -np.inf, "quint8") == (1.0, 0)
    with pytest.warns(UserWarning, match="empty"):
        scale, zp = calculate_qparams([], [], "qint8", PER_CHANNEL_AFFINE)
    assert scale.tolist() == [1.0] and zp.tolist() == [0]  # type: ignore[union-attr]


def test_custom_eps() -> None:
    assert calculate_qparams(0.0, 0.0, "qint8", PER_TENSOR_SYMMETRIC, eps=2.0**-12) == (2.0**-12, 0)
    assert FLOAT32_EPS == 2.0**-23


def test_weight_observer_range_neg_127_to_127() -> None:
    scale, zp = calculate_qparams(-2.54, 1.0, "qint8", PER_TENSOR_SYMMETRIC, -127, 127)
    assert zp == 0 and scale == float(np.float32(2.54) / np.float32(127.0))


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((1.0, 0.0, "quint8"), {}, "min_val must be <="),
        ((np.nan, 1.0, "quint8"), {}, "finite"),
        ((-np.inf, 1.0, "quint8"), {}, "finite"),
        (([0.0, 1.0], [1.0, 2.0], "quint8"), {}, "scalars"),
        ((0.0, 1.0, "quint8", "per_channel_affine"), {}, "1-D"),
        ((0.0, 1.0, "quint8", "per_tensor_float"), {}, "qscheme"),
        ((0.0, 1.0, "quint8", PER_TENSOR_SYMMETRIC), {"reduce_range": True}, "reduce_range"),
        ((0.0, 1.0, "quint8"), {"eps": 0.0}, "eps"),
    ],
)
def test_qparams_errors(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(EncodingError, match=match):
        calculate_qparams(*args, **kwargs)


def test_qscheme_names() -> None:
    assert QSCHEMES == (
        "per_tensor_affine",
        "per_tensor_symmetric",
        "per_channel_affine",
        "per_channel_symmetric",
    )


@pytest.mark.parametrize("case", VECTORS["quantize"], ids=lambda c: c["note"])
def test_quantize_vectors(case: dict) -> None:
    x = [_num(v) for v in case["x"]]
    q = quantize(
        x,
        case["scale"],
        case["zero_point"],
        case["dtype"],
        quant_min=case.get("quant_min"),
        quant_max=case.get("quant_max"),
    )
    assert q.tolist() == case["expected"]


@pytest.mark.parametrize("case", VECTORS["quantize_per_channel"])
def test_quantize_per_channel_vectors(case: dict) -> None:
    q = quantize(case["x"], case["scale"], case["zero_point"], case["dtype"], axis=case["axis"])
    assert q.tolist() == case["expected"]
    back = dequantize(q, case["scale"], case["zero_point"], axis=case["axis"])
    shape = [1, 1]
    shape[case["axis"]] = -1
    expected = (q - np.reshape(case["zero_point"], shape)) * np.reshape(case["scale"], shape)
    np.testing.assert_array_equal(back, expected)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=30),
    st.floats(1e-3, 10.0),
    st.sampled_from([("qint8", -5), ("quint8", 128), ("qint32", 0), ("quint8", 0)]),
)
def test_quantize_matches_formula(xs: list[float], scale: float, dz: tuple[str, int]) -> None:
    dtype, zp = dz
    lo, hi = qmin_qmax(dtype)
    expected = [min(max(round(x / scale) + zp, lo), hi) for x in xs]
    q = quantize(xs, scale, zp, dtype)
    assert q.tolist() == expected
    np.testing.assert_array_equal(
        dequantize(q, scale, zp), (np.array(expected, dtype=np.float64) - zp) * scale
    )


def test_quantize_axis_layouts() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 5))
    scale = np.array([0.1, 0.2, 0.3, 0.4])
    zp = np.array([-3, 0, 2, 5])
    q = quantize(x, scale, zp, np.int8, axis=1)
    for c in range(4):
        np.testing.assert_array_equal(q[:, c], quantize(x[:, c], scale[c], zp[c], np.int8))
    np.testing.assert_array_equal(q, quantize(x, scale, zp, np.int8, axis=-2))
    xt = np.moveaxis(x, 1, 2)  # non-contiguous input
    np.testing.assert_array_equal(np.moveaxis(quantize(xt, scale, zp, np.int8, axis=2), 2, 1), q)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"x": [np.nan]}, EncodingError, "NaN"),
        ({"scale": 0.0}, EncodingError, "scale"),
        ({"scale": -1.0}, EncodingError, "scale"),
        ({"scale": np.inf}, EncodingError, "scale"),
        ({"zero_point": 1.5}, EncodingError, "zero_point"),
        ({"zero_point": 300}, EncodingError, "zero_point"),
        ({"scale": [1.0, 2.0]}, EncodingError, "scalars"),
        ({"axis": 2}, EncodingError, "axis"),
        ({"axis": 1.0}, EncodingError, "axis"),
        ({"axis": 0, "scale": [1.0, 2.0, 3.0]}, EncodingError, "length"),
        ({"x": ["a"]}, TypeError, "x"),
        ({"scale": "a"}, TypeError, "scale"),
    ],
)
def test_quantize_errors(kwargs: dict, exc: type, match: str) -> None:
    args = {"x": [[1.0, 2.0]], "scale": 1.0, "zero_point": 0, "dtype": "quint8"} | kwargs
    axis = args.pop("axis", None)
    with pytest.raises(exc, match=match):
        quantize(args["x"], args["scale"], args["zero_point"], args["dtype"], axis=axis)


def test_dequantize_rejects_bad_q() -> None:
    with pytest.raises(TypeError, match="q"):
        dequantize(np.array([1.0]), 1.0, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="q"):
        dequantize([1, 2], 1.0, 0)  # type: ignore[arg-type]


def test_quantized_encoder_per_tensor() -> None:
    enc = QuantizedEncoder(scale=0.5, zero_point=3, dtype="quint8")
    assert isinstance(enc, Encoder)
    assert enc.scale == 0.5 and enc.zero_point == 3 and enc.dtype == np.uint8
    x = np.array([[1.0, -1.0], [200.0, -200.0]])
    r = enc.encode(x)
    assert r.dtype == np.uint64
    assert r.view(np.int64).tolist() == [[2, -2], [252, -3]]  # clamped to [0, 255] - 3
    np.testing.assert_array_equal(r.view(np.int64), enc.quantize(x).astype(np.int64) - 3)
    np.testing.assert_array_equal(enc.decode(r), enc.dequantize(enc.quantize(x)))
    # decode accepts any ring element, e.g. a sum that left the int8 range
    assert enc.decode(np.array([2**64 - 1000], dtype=np.uint64)).tolist() == [-500.0]
    with pytest.raises(RingDTypeError):
        enc.decode(np.array([1], dtype=np.int64))  # type: ignore[arg-type]
    with pytest.raises(EncodingError, match="NaN"):
        enc.encode([np.nan])
    assert "channels=1" in repr(enc)


def test_quantized_encoder_per_channel() -> None:
    scale = np.array([0.5, 0.25, 2.0])
    zp = np.array([0, -1, 4])
    enc = QuantizedEncoder(scale, zp, np.int8, axis=1)
    x = np.arange(12.0).reshape(4, 3) - 5
    r = enc.encode(x)
    q = quantize(x, scale, zp, np.int8, axis=1)
    np.testing.assert_array_equal(r.view(np.int64), q.astype(np.int64) - zp)
    np.testing.assert_array_equal(enc.decode(r), dequantize(q, scale, zp, axis=1))
    np.testing.assert_array_equal(enc.scale, scale)
    with pytest.raises(RingShapeError, match="channels"):
        enc.encode(np.zeros((3, 4)))
    with pytest.raises(EncodingError, match="axis"):
        enc.encode(np.zeros(3))
    with pytest.raises(EncodingError, match="1-D"):
        QuantizedEncoder(0.5, 0, np.int8, axis=0)
    with pytest.raises(ValueError):
        enc.scale[0] = 1.0  # type: ignore[index]


def test_quantized_encoder_from_min_max() -> None:
    enc = QuantizedEncoder.from_min_max(-5.8074, 8.7030, "quint8")
    assert round(enc.scale, 6) == 0.056904 and enc.zero_point == 102  # type: ignore[arg-type]
    per_channel = QuantizedEncoder.from_min_max(
        [-127.5, -255.0], [1.0, 10.0], "qint8", "per_channel_symmetric", axis=0
    )
    assert per_channel.scale.tolist() == [1.0, 2.0]  # type: ignore[union-attr]
    assert per_channel.axis == 0 and per_channel.qmin_qmax == (-128, 127)


def test_quantized_encoder_errors() -> None:
    with pytest.raises(EncodingError, match="zero_point"):
        QuantizedEncoder(1.0, 200, "qint8")
    with pytest.raises(EncodingError, match="zero_point"):
        QuantizedEncoder(1.0, 100, "qint8", quant_min=-10, quant_max=10)
    with pytest.raises(EncodingError, match="scale"):
        QuantizedEncoder(0.0, 0, "qint8")
    with pytest.raises(EncodingError, match="axis"):
        QuantizedEncoder([1.0], 0, "qint8", axis="0")  # type: ignore[arg-type]
