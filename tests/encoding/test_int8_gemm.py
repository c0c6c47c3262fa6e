"""int8 GEMM, float requantization and the integer (multiplier, shift) helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypten_lite.encoding import (
    int8_gemm,
    qmin_qmax,
    quantize_multiplier,
    quantized_linear,
    requantize,
    requantize_fixed_point,
)
from crypten_lite.encoding.fixed_multiplier import multiply_by_quantized_multiplier
from crypten_lite.errors import EncodingError, EncodingRangeError, RingShapeError

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "encoding_quant.json").read_text())


def _reference_linear(
    x_q: np.ndarray,
    w_q: np.ndarray,
    bias: np.ndarray,
    sx: float,
    zx: int,
    sw: np.ndarray,
    zw: np.ndarray,
    sy: float,
    zy: int,
    lo: int,
    hi: int,
    relu: bool,
) -> np.ndarray:
    """The reference formula, written independently (int64 GEMM, float64 requantization)."""
    acc = (x_q.astype(np.int64) - zx) @ (w_q.astype(np.int64) - zw[:, None]).T
    real = acc.astype(np.float64) * (sx * sw) + bias
    y = np.rint(real / sy) + zy
    return np.clip(y, zy if relu else lo, hi).astype(np.int64)


@pytest.mark.parametrize("case", VECTORS["int8_gemm"])
def test_int8_gemm_vectors(case: dict) -> None:
    x = np.array(case["x_q"], dtype=case["x_dtype"])
    w = np.array(case["w_q"], dtype=case["w_dtype"])
    acc = int8_gemm(x, w, case["x_zero_point"], case["w_zero_point"])
    assert acc.dtype == np.int32
    assert acc.tolist() == case["expected"]


@pytest.mark.parametrize("case", VECTORS["requantize"], ids=lambda c: c["note"])
def test_requantize_vectors(case: dict) -> None:
    y = requantize(
        np.array(case["acc"], dtype=np.int32),
        case["x_scale"],
        case["w_scale"],
        case["out_scale"],
        case["out_zero_point"],
        case["out_dtype"],
        bias=case["bias"],
        relu=case["relu"],
    )
    assert y.tolist() == case["expected"]


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 40),
    st.integers(1, 7),
    st.booleans(),
    st.sampled_from(["uint8", "int8"]),
    st.integers(0, 2**32 - 1),
)
def test_quantized_linear_bit_exact(
    n: int, k: int, c: int, relu: bool, x_dtype: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    lo_x, hi_x = qmin_qmax(x_dtype)
    x_q = rng.integers(lo_x, hi_x + 1, size=(n, k)).astype(x_dtype)
    w_q = rng.integers(-128, 128, size=(c, k)).astype(np.int8)
    zx = int(rng.integers(lo_x, hi_x + 1))
    zw = rng.integers(-10, 11, size=c)
    sx = float(np.float32(rng.uniform(1e-3, 0.1)))
    sw = rng.uniform(1e-3, 0.05, size=c).astype(np.float32).astype(np.float64)
    sy = float(np.float32(rng.uniform(0.01, 1.0)))
    zy = int(rng.integers(0, 256))
    bias = rng.normal(size=c)
    y = quantized_linear(
        x_q,
        w_q,
        bias,
        x_scale=sx,
        x_zero_point=zx,
        w_scale=sw,
        w_zero_point=zw,
        out_scale=sy,
        out_zero_point=zy,
        out_dtype="quint8",
        relu=relu,
    )
    expected = _reference_linear(x_q, w_q, bias, sx, zx, sw, zw, sy, zy, 0, 255, relu)
    assert y.dtype == np.uint8
    np.testing.assert_array_equal(y.astype(np.int64), expected)
    acc = int8_gemm(x_q, w_q, zx, zw)
    np.testing.assert_array_equal(
        acc, (x_q.astype(np.int64) - zx) @ (w_q.astype(np.int64) - zw[:, None]).T
    )
    y2 = requantize(acc, sx, sw, sy, zy, "quint8", bias=bias, relu=relu)
    np.testing.assert_array_equal(y2, y)


def test_ties_in_requantization_round_half_even() -> None:
    acc = np.array([[1, 3, 5, -1, -3]], dtype=np.int32)
    y = requantize(acc, 0.5, np.ones(5), 1.0, 0, "qint8")
    assert y.tolist() == [[0, 2, 2, 0, -2]]


def test_batched_input_and_axis() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(2, 3, 8)).astype(np.uint8)
    w = rng.integers(-128, 128, size=(4, 8)).astype(np.int8)
    acc = int8_gemm(x, w, 128, 0)
    assert acc.shape == (2, 3, 4)
    np.testing.assert_array_equal(acc.reshape(6, 4), int8_gemm(x.reshape(6, 8), w, 128, 0))
    sw = np.array([0.1, 0.2, 0.3, 0.4])
    y_last = requantize(acc, 0.05, sw, 0.5, 3, "qint8")
    y_axis = requantize(np.moveaxis(acc, 2, 0), 0.05, sw, 0.5, 3, "qint8", axis=0)
    np.testing.assert_array_equal(np.moveaxis(y_axis, 0, 2), y_last)


def test_gemm_errors() -> None:
    x = np.zeros((2, 3), dtype=np.uint8)
    w = np.zeros((4, 3), dtype=np.int8)
    with pytest.raises(TypeError, match="x_q"):
        int8_gemm(x.astype(np.int32), w)
    with pytest.raises(TypeError, match="w_q"):
        int8_gemm(x, w.astype(np.float64))  # type: ignore[arg-type]
    with pytest.raises(RingShapeError, match="inner"):
        int8_gemm(x, np.zeros((4, 5), dtype=np.int8))
    with pytest.raises(EncodingError, match="x_zero_point"):
        int8_gemm(x, w, 300)
    with pytest.raises(EncodingError, match="zero_point"):
        int8_gemm(x, w, 0, [0, 0])
    big_k = 70000
    with pytest.raises(EncodingRangeError, match="int32"):
        int8_gemm(np.zeros((1, big_k), dtype=np.uint8), np.zeros((1, big_k), dtype=np.int8))


def test_requantize_errors() -> None:
    acc = np.zeros((2, 3), dtype=np.int32)
    with pytest.raises(TypeError, match="acc"):
        requantize(acc.astype(np.float64), 1.0, 1.0, 1.0, 0)  # type: ignore[arg-type]
    with pytest.raises(EncodingError, match="scale"):
        requantize(acc, 0.0, 1.0, 1.0, 0)
    with pytest.raises(EncodingError, match="scale"):
        requantize(acc, 1.0, [1.0, -1.0, 1.0], 1.0, 0)
    with pytest.raises(EncodingError, match="out_zero_point"):
        requantize(acc, 1.0, 1.0, 1.0, -1, "quint8")
    with pytest.raises(EncodingError, match="bias"):
        requantize(acc, 1.0, 1.0, 1.0, 0, bias=[1.0, 2.0])
    with pytest.raises(EncodingError, match="bias"):
        requantize(acc, 1.0, 1.0, 1.0, 0, bias=[1.0, np.nan, 0.0])
    with pytest.raises(EncodingError, match="axis"):
        requantize(acc, 1.0, 1.0, 1.0, 0, axis=2)
    with pytest.raises(ValueError, match="out_dtype"):
        requantize(acc, 1.0, 1.0, 1.0, 0, "int16")


@pytest.mark.parametrize("case", VECTORS["quantize_multiplier"])
def test_quantize_multiplier_vectors(case: dict) -> None:
    assert list(quantize_multiplier(case["real"])) == case["expected"]


@pytest.mark.parametrize("case", VECTORS["multiply_by_quantized_multiplier"])
def test_multiply_by_quantized_multiplier_vectors(case: dict) -> None:
    m0, shift = quantize_multiplier(case["real"])
    got = multiply_by_quantized_multiplier(np.array(case["x"]), m0, shift)
    assert got.tolist() == case["expected"]


@settings(max_examples=100, deadline=None)
@given(st.integers(-(2**20), 2**20), st.floats(2.0**-20, 0.99))
def test_fixed_multiplier_close_to_real(x: int, real: float) -> None:
    m0, shift = quantize_multiplier(real)
    assert 2**30 <= m0 < 2**31
    got = int(multiply_by_quantized_multiplier(np.array([x]), m0, shift)[0])
    assert abs(got - x * real) <= 1.0


def test_requantize_fixed_point() -> None:
    m0, shift = quantize_multiplier(0.3)
    y = requantize_fixed_point(np.array([1000, -1000, 7, -40]), m0, shift, 10, "quint8")
    assert y.dtype == np.uint8 and y.tolist() == [255, 0, 12, 0]
    y = requantize_fixed_point(np.array([-40, 7]), m0, shift, 10, "qint8", relu=True)
    assert y.tolist() == [10, 12]
    with pytest.raises(EncodingError):
        quantize_multiplier(-1.0)
    with pytest.raises(EncodingRangeError):
        quantize_multiplier(2.0**31)
    with pytest.raises(EncodingRangeError):
        multiply_by_quantized_multiplier(np.array([2**31]), m0, shift)
    with pytest.raises(EncodingError, match="out_zero_point"):
        requantize_fixed_point(np.array([1]), m0, shift, 300, "quint8")
