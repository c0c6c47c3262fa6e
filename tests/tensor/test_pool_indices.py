"""max_pool2d with ceil_mode and CrypTen's one-hot return_indices, and max_unpool2d, against
numpy float64 (torch semantics), 2 and 3 parties."""

from __future__ import annotations

import math

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.runtime.testing import run_parties

RNG = np.random.default_rng(5)


def _out_size(size: int, k: int, s: int, p: int, ceil: bool) -> int:
    span = size + 2 * p - (k - 1) - 1
    out = (math.ceil(span / s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def _reference(x: np.ndarray, k: int, s: int, p: int, ceil: bool):
    """Pooled values, one-hot indices (N, C, oH, oW, k, k) and the argmax positions."""
    n, c, h, w = x.shape
    oh, ow = _out_size(h, k, s, p, ceil), _out_size(w, k, s, p, ceil)
    rows, cols = max((oh - 1) * s + k, h + 2 * p), max((ow - 1) * s + k, w + 2 * p)
    big = np.full((n, c, rows, cols), -np.inf)
    big[:, :, p : p + h, p : p + w] = x
    values = np.empty((n, c, oh, ow))
    hot = np.zeros((n, c, oh, ow, k, k))
    for i in range(oh):
        for j in range(ow):
            win = big[:, :, i * s : i * s + k, j * s : j * s + k].reshape(n, c, k * k)
            arg = np.argmax(win, axis=-1)
            values[:, :, i, j] = np.take_along_axis(win, arg[..., None], -1)[..., 0]
            np.put_along_axis(hot[:, :, i, j].reshape(n, c, k * k), arg[..., None], 1.0, -1)
    return values, hot


def _unpool(values: np.ndarray, hot: np.ndarray, k: int, s: int, p: int, h: int, w: int):
    n, c, oh, ow = values.shape
    out = np.zeros((n, c, h + 2 * p + k, w + 2 * p + k))
    for i in range(oh):
        for j in range(ow):
            block = values[:, :, i, j, None, None] * hot[:, :, i, j]
            out[:, :, i * s : i * s + k, j * s : j * s + k] += block
    return out[:, :, p : p + h, p : p + w]


CASES = [(5, 2, 2, 0), (6, 3, 2, 1), (7, 3, 3, 1)]


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize(("size", "k", "s", "p"), CASES)
def test_ceil_mode_and_indices_match_numpy(world, size, k, s, p):
    x = RNG.permutation(2 * 3 * size * size).reshape(2, 3, size, size) / 10.0  # no ties

    def job(session):
        with session.activate():
            t = cl.cryptensor(x, src=0)
            floor = t.max_pool2d(k, s, p).get_plain_text()
            values, hot = t.max_pool2d(k, s, p, ceil_mode=True, return_indices=True)
            unpooled = values.max_unpool2d(hot, k, s, p, output_size=x.shape)
            return floor, values.get_plain_text(), hot.get_plain_text(), unpooled.get_plain_text()

    floor, values, hot, unpooled = run_parties(job, world)[0]
    ref_floor, _ = _reference(x, k, s, p, ceil=False)
    ref_values, ref_hot = _reference(x, k, s, p, ceil=True)
    np.testing.assert_allclose(floor, ref_floor, atol=1e-4)
    np.testing.assert_allclose(values, ref_values, atol=1e-4)
    np.testing.assert_array_equal(hot, ref_hot)
    expected = _unpool(ref_values, ref_hot, k, s, p, size, size)
    np.testing.assert_allclose(unpooled, expected, atol=1e-3)


def test_indices_on_an_unbatched_input_and_bad_unpool_shapes():
    x = RNG.permutation(3 * 4 * 4).reshape(3, 4, 4) / 7.0

    def job(session):
        with session.activate():
            t = cl.cryptensor(x, src=0)
            values, hot = t.max_pool2d(2, return_indices=True)
            with pytest.raises(ValueError, match="max_unpool2d"):
                t.max_pool2d(2).max_unpool2d(hot, 2)  # 3-D values
            return values.get_plain_text(), hot.get_plain_text()

    values, hot = run_parties(job, 2)[0]
    ref_values, ref_hot = _reference(x[None], 2, 2, 0, ceil=False)
    np.testing.assert_allclose(values, ref_values[0], atol=1e-4)
    np.testing.assert_array_equal(hot, ref_hot[0])
