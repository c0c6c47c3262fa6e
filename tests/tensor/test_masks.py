"""Forward masks for autograd: relu_with_mask and max_pool2d_with_route (values, gradients
against numpy, exact round counts), 2 and 3 parties."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.config import SessionConfig
from crypten_lite.protocols import beaver
from crypten_lite.runtime.testing import run_parties
from crypten_lite.tensor import MPCTensor

UNIT = 2.0**-16
WORLDS = [2, 3]


def _pool_grad(a, g, k, s, p):
    """numpy gradient of max pooling (square kernel/stride/padding; distinct values)."""
    n, c, h, w = a.shape
    padded = np.pad(a, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    out = np.zeros_like(padded)
    oh, ow = g.shape[2:]
    for i in range(oh):
        for j in range(ow):
            win = padded[:, :, i * s : i * s + k, j * s : j * s + k].reshape(n, c, -1)
            idx = win.argmax(-1)
            for b in range(n):
                for ch in range(c):
                    r, q = divmod(int(idx[b, ch]), k)
                    out[b, ch, i * s + r, j * s + q] += g[b, ch, i, j]
    return out[:, :, p : p + h, p : p + w]


def _pool_ref(a, k, s, p):
    n, c, h, w = a.shape
    padded = np.pad(a, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = padded[:, :, i * s : i * s + k, j * s : j * s + k].max(axis=(2, 3))
    return out


def _distinct(rng, shape):
    """Distinct representable values (no ties)."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) - size / 2) / 8.0


@pytest.mark.parametrize("min_rounds", [False, True])
@pytest.mark.parametrize("world_size", WORLDS)
def test_relu_with_mask_values_and_rounds(world_size, min_rounds):
    n = 501
    a = np.concatenate([np.linspace(-50, 50, n - 4), [0.0, UNIT, -UNIT, 0.0]])
    a = np.round(a / UNIT) * UNIT

    def job(session):
        x = cl.cryptensor(a.reshape(3, -1), src=0, names=("r", None))
        session.stats.reset()
        out, mask = x.relu_with_mask()
        cost = session.stats.snapshot()
        plain = x.relu()
        return (
            out.get_plain_text(),
            mask.get_plain_text(),
            plain.get_plain_text(),
            mask.precision,
            mask.names,
            out.names,
            cost,
        )

    config = SessionConfig(min_rounds=min_rounds)
    out, mask, plain, precision, mask_names, out_names, cost = run_parties(
        job, world_size, config=config
    )[0]
    want = np.maximum(a, 0).reshape(3, -1)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(plain, want)
    np.testing.assert_array_equal(mask, (a > 0).astype(np.float64).reshape(3, -1))
    assert precision == 0
    assert mask_names == ("r", None) and out_names == ("r", None)
    assert cost.rounds == 4
    lt_bytes = 8 * n + 4 * n + -(-7 * n // 8)
    assert cost.bytes_sent == (world_size - 1) * (lt_bytes + 8 * n + -(-n // 8))


def test_relu_with_mask_0d_and_mask_times_fixed_point():
    def job(session):
        x = cl.cryptensor(np.array(-2.5), src=0)
        y = cl.cryptensor(np.array([1.5, -3.0, 0.0]), src=0)
        out0, mask0 = x.relu_with_mask()
        out, mask = y.relu_with_mask()
        grad = cl.cryptensor(np.array([0.25, 7.0, 9.0]), src=1)
        product = beaver.mul(session, grad.share, mask.share)  # no truncation: mask integer
        routed = MPCTensor.from_shares(product, precision=grad.precision, session=session)
        return [t.get_plain_text() for t in (out0, mask0, out, mask, routed)]

    out0, mask0, out, mask, routed = run_parties(job, 2)[0]
    assert out0.shape == () and float(out0) == 0.0 and float(mask0) == 0.0
    np.testing.assert_array_equal(out, [1.5, 0.0, 0.0])
    np.testing.assert_array_equal(mask, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(routed, [0.25, 0.0, 0.0])


POOL_CASES = [
    # (input shape, kernel, stride, padding)
    ((2, 3, 6, 6), 2, 2, 0),
    ((1, 2, 7, 7), 3, 2, 1),  # overlapping windows, padding
    ((3, 6, 8), 2, 2, 0),  # (C, H, W)
    ((1, 1, 5, 6), 3, 1, 1),  # heavy overlap
]


@pytest.mark.parametrize(("shape", "k", "s", "p"), POOL_CASES)
@pytest.mark.parametrize("world_size", WORLDS)
def test_max_pool2d_with_route_backward_matches_numpy(world_size, shape, k, s, p):
    rng = np.random.default_rng(sum(shape) + k)
    a = _distinct(rng, shape)
    a4 = a if a.ndim == 4 else a[None]
    want = _pool_ref(a4, k, s, p)
    g = np.round(rng.uniform(-4, 4, want.shape) / UNIT) * UNIT
    want_grad = _pool_grad(a4, g, k, s, p)
    if a.ndim == 3:
        want, g, want_grad = want[0], g[0], want_grad[0]

    def job(session):
        x = cl.cryptensor(a, src=0)
        grad = cl.cryptensor(g, src=1)
        plain = x.max_pool2d(k, s, p)
        out, route = x.max_pool2d_with_route(k, s, p)
        dx = route.backward(grad)
        return plain.get_plain_text(), out.get_plain_text(), dx.get_plain_text(), dx.precision

    plain, out, dx, precision = run_parties(job, world_size)[0]
    np.testing.assert_array_equal(plain, want)
    np.testing.assert_array_equal(out, want)
    assert dx.shape == a.shape and precision == 16
    np.testing.assert_array_equal(dx, want_grad)


@pytest.mark.parametrize("world_size", WORLDS)
def test_max_pool2d_route_ties_send_each_window_grad_to_one_maximum(world_size):
    rng = np.random.default_rng(5)
    a = np.round(rng.normal(size=(2, 2, 8, 8)))  # many ties
    a[0, 0, :4, :4] = 1.0  # whole windows tied

    def job(session):
        x = cl.cryptensor(a, src=0)
        out, route = x.max_pool2d_with_route(2)
        ones = cl.cryptensor(np.ones(out.shape), src=0)
        return out.get_plain_text(), route.backward(ones).get_plain_text()

    out, dx = run_parties(job, world_size)[0]
    windows = a.reshape(2, 2, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 2, 4, 4, 4)
    routed = dx.reshape(2, 2, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 2, 4, 4, 4)
    np.testing.assert_array_equal(out, windows.max(-1))
    np.testing.assert_array_equal((routed != 0).sum(-1), np.ones((2, 2, 4, 4)))
    picked = np.take_along_axis(windows, routed.argmax(-1)[..., None], -1)[..., 0]
    np.testing.assert_array_equal(picked, windows.max(-1))
    np.testing.assert_array_equal(routed.sum(-1), np.ones((2, 2, 4, 4)))


@pytest.mark.parametrize(("k", "levels"), [(2, 2), (3, 4)])
@pytest.mark.parametrize("world_size", WORLDS)
def test_max_pool2d_route_round_counts(world_size, k, levels):
    shape = (2, 3, 6, 6)
    a = _distinct(np.random.default_rng(1), shape)

    def job(session):
        x = cl.cryptensor(a, src=0)
        costs = []
        for op in (lambda: x.max_pool2d(k, 2), lambda: x.max_pool2d_with_route(k, 2)):
            session.stats.reset()
            result = op()
            costs.append(session.stats.snapshot())
        _, route = result
        grad = cl.cryptensor(np.ones(route.output_shape), src=0)
        session.stats.reset()
        route.backward(grad)
        costs.append(session.stats.snapshot())
        return costs, route.rounds, repr(route)

    (plain, fwd, bwd), rounds, text = run_parties(job, world_size)[0]
    assert plain.rounds == fwd.rounds == 4 * levels
    assert plain.bytes_sent == fwd.bytes_sent
    assert bwd.rounds == rounds == levels
    assert "PoolRoute(input_shape=(2, 3, 6, 6)" in text and "levels=" in text


def test_max_pool2d_route_rejects_a_wrong_gradient_shape():
    def job(session):
        x = cl.cryptensor(np.arange(16.0).reshape(1, 1, 4, 4), src=0)
        _, route = x.max_pool2d_with_route(2)
        bad = cl.cryptensor(np.ones((1, 1, 3, 3)), src=0)
        with pytest.raises(ValueError, match="expected the output shape"):
            route.backward(bad)
        return route.input_shape, route.output_shape

    assert run_parties(job, 2)[0] == ((1, 1, 4, 4), (1, 1, 2, 2))


@pytest.mark.parametrize("world_size", WORLDS)
def test_max_pool2d_route_with_min_rounds(world_size):
    """min_rounds fuses max_pool2d's relus (3 rounds per level); the route keeps the split
    comparison and product (4 per level), same values and gradient."""
    a = _distinct(np.random.default_rng(2), (1, 2, 4, 4))
    g = np.arange(8.0).reshape(1, 2, 2, 2) - 3.5

    def job(session):
        x = cl.cryptensor(a, src=0)
        grad = cl.cryptensor(g, src=1)
        costs = []
        for op in (lambda: x.max_pool2d(2), lambda: x.max_pool2d_with_route(2)):
            session.stats.reset()
            result = op()
            costs.append(session.stats.snapshot().rounds)
        out, route = result
        return out.get_plain_text(), route.backward(grad).get_plain_text(), costs

    out, dx, (plain_rounds, route_rounds) = run_parties(
        job, world_size, config=SessionConfig(min_rounds=True)
    )[0]
    np.testing.assert_array_equal(out, _pool_ref(a, 2, 2, 0))
    np.testing.assert_array_equal(dx, _pool_grad(a, g, 2, 2, 0))
    assert (plain_rounds, route_rounds) == (6, 8)
