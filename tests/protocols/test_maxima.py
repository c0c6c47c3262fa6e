"""protocols.maxima on raw shares: pooling geometry (fold is unfold's adjoint), tournaments
with routes along any axis and odd lengths, relu with its mask, clamp; 2 and 3 parties."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.protocols import maxima
from crypten_lite.runtime.testing import run_parties

WORLDS = [2, 3]


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation"),
    [
        ((2, 2), (2, 2), (0, 0), (1, 1)),
        ((3, 2), (2, 1), (1, 1), (1, 1)),
        ((2, 3), (1, 2), (0, 1), (2, 1)),
    ],
)
def test_fold_is_the_adjoint_of_unfold(kernel, stride, padding, dilation):
    rng = np.random.default_rng(3)
    geometry = maxima.PoolGeometry((2, 3, 7, 8), kernel, stride, padding, dilation)
    x = rng.integers(0, 2**64, size=geometry.shape, dtype=np.uint64)
    windows = geometry.unfold(x, np.uint64(0))
    y = rng.integers(0, 2**64, size=windows.shape, dtype=np.uint64)
    oh, ow = geometry.out_hw
    assert windows.shape == (2, 3, oh, ow, kernel[0] * kernel[1])
    # <unfold(x), y> == <x, fold(y)> in the ring (padding contributes zero)
    left = np.sum(windows * y, dtype=np.uint64)
    right = np.sum(x * geometry.fold(y), dtype=np.uint64)
    assert left == right
    assert "PoolGeometry(shape=(2, 3, 7, 8)" in repr(geometry)


@pytest.mark.parametrize("want_max", [True, False])
@pytest.mark.parametrize("world_size", WORLDS)
def test_tournament_route_along_an_inner_axis(world_size, want_max):
    rng = np.random.default_rng(7)
    n = 7  # odd: leftovers carried between levels
    a = (rng.permutation(4 * n * 3).reshape(4, n, 3) - 40) / 4.0
    g = rng.integers(-50, 50, size=(4, 3)) / 8.0

    def job(session):
        x = cl.cryptensor(a, src=0)
        grad = cl.cryptensor(g, src=1)
        plain = maxima.tournament(session, x.share, 1, want_max)
        values, route = maxima.tournament_route(session, x.share, 1, want_max)
        session.stats.reset()
        back = route.backward(session, grad.share)
        rounds = session.stats.snapshot().rounds
        wrap = x._wrap
        return (
            wrap(plain).get_plain_text(),
            wrap(values).get_plain_text(),
            wrap(back).get_plain_text(),
            rounds,
            repr(route),
        )

    plain, values, back, rounds, text = run_parties(job, world_size)[0]
    best = a.max(axis=1) if want_max else a.min(axis=1)
    np.testing.assert_array_equal(plain, best)
    np.testing.assert_array_equal(values, best)
    idx = a.argmax(axis=1) if want_max else a.argmin(axis=1)
    want = np.zeros_like(a)
    np.put_along_axis(want, idx[:, None, :], g[:, None, :], axis=1)
    np.testing.assert_array_equal(back, want)
    assert rounds == 3  # ceil(log2 7)
    assert text == "TournamentRoute(axis=1, length=7, levels=3)"


@pytest.mark.parametrize("world_size", WORLDS)
def test_relu_mask_and_clamp_on_shares(world_size):
    a = np.array([-3.0, -0.5, 0.0, 2.0**-16, 0.5, 3.0])

    def job(session):
        x = cl.cryptensor(a, src=0)
        out, bit = maxima.relu_mask(session, x.share)
        lo = x.neg().add(-1.0).share  # -1 - x
        hi = x.sub(1.0).share  # x - 1
        clamped = maxima.clamp(session, x.share, lo, hi)
        upper = maxima.clamp(session, x.share, None, hi)
        return [
            x._wrap(out).get_plain_text(),
            x._wrap(bit, precision=0).get_plain_text(),
            x._wrap(clamped).get_plain_text(),
            x._wrap(upper).get_plain_text(),
        ]

    out, bit, clamped, upper = run_parties(job, world_size)[0]
    np.testing.assert_array_equal(out, np.maximum(a, 0))
    np.testing.assert_array_equal(bit, (a > 0).astype(np.float64))
    np.testing.assert_array_equal(clamped, np.clip(a, -1, 1))
    np.testing.assert_array_equal(upper, np.minimum(a, 1))


def test_route_rejects_a_gradient_of_another_shape():
    def job(session):
        x = cl.cryptensor(np.arange(6.0).reshape(2, 3), src=0)
        _, route = maxima.tournament_route(session, x.share, 1, True)
        with pytest.raises(ValueError, match="expected"):
            route.backward(session, np.zeros((3,), dtype=np.uint64))
        return route.levels

    assert run_parties(job, 2)[0] == 2
