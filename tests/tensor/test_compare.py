"""Comparisons, selections, maxima and pooling on MPCTensor against numpy, 2 and 3 parties."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.config import SessionConfig
from crypten_lite.runtime.testing import run_parties

UNIT = 2.0**-16
WORLDS = [2, 3]


def _grid():
    """A dense grid with ties, zeros, tiny and large magnitudes."""
    data = np.random.default_rng(9)
    a = np.concatenate([np.linspace(-1000, 1000, 401), [0.0, UNIT, -UNIT, 2.0**29, -(2.0**29)]])
    b = np.concatenate([data.uniform(-1000, 1000, 401), [0.0, 0.0, 0.0, 2.0**29, 2.0**29 - 1]])
    b[::7] = a[::7]  # ties
    enc = lambda v: np.round(v * 2**16) / 2**16  # noqa: E731 - representable values
    return enc(a), enc(b)


@pytest.mark.parametrize(
    ("provider", "min_rounds"),
    [("TrustedDealer", False), ("TrustedDealer", True), ("InsecureLocalDealer", False)],
)
@pytest.mark.parametrize("world_size", WORLDS)
def test_comparisons_and_selections_are_exact(world_size, provider, min_rounds):
    a, b = _grid()

    def job(session):
        x, y = cl.cryptensor(a, src=0), cl.cryptensor(b, src=1)
        outs = [
            x < y,
            x > y,
            x <= y,
            x >= y,
            x.eq(y),
            x.ne(y),
            x < 3.5,
            2.0 > x,
            x.sign(),
            x.relu(),
            x.abs(),
            x.clamp(-10, 20.5),
            x.clamp(max=y),
            x.where(x > y, y),
        ]
        return [t.get_plain_text() for t in outs]

    want = [
        a < b,
        a > b,
        a <= b,
        a >= b,
        a == b,
        a != b,
        a < 3.5,
        2.0 > a,
        np.sign(a),
        np.maximum(a, 0),
        np.abs(a),
        np.clip(a, -10, 20.5),
        np.minimum(a, b),
        np.where(a > b, a, b),
    ]
    got = run_parties(job, world_size, provider=provider)[0]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(
            g, np.asarray(w, dtype=np.float64), atol=UNIT, rtol=0, err_msg=str(i)
        )


@pytest.mark.parametrize("min_rounds", [False, True])
@pytest.mark.parametrize("world_size", WORLDS)
def test_round_counts_lt_relu_and_max(world_size, min_rounds):
    n = 1000

    def job(session):
        x = cl.cryptensor(np.linspace(-5, 5, n), src=0)
        y = cl.cryptensor(np.zeros(n), src=1)
        costs = []
        for op in (lambda: x < y, lambda: x.relu(), lambda: x.max(), lambda: x.eq(y)):
            session.stats.reset()
            op()
            costs.append(session.stats.snapshot())
        return costs

    config = SessionConfig(min_rounds=min_rounds)
    lt, relu, mx, eq = run_parties(job, world_size, config=config)[0]
    relu_rounds = 3 if min_rounds else 4
    assert lt.rounds == 3 and eq.rounds == 3
    assert relu.rounds == relu_rounds
    assert mx.rounds == relu_rounds * int(np.ceil(np.log2(n)))
    peers = world_size - 1
    lt_bytes = 8 * n + 4 * n + -(-7 * n // 8)
    assert lt.bytes_sent == peers * lt_bytes
    # both open the product's mask in the comparison's first round (8n more); select_ltz
    # (4 rounds) then opens one masked result bit per element (ceil(n / 8) bytes)
    assert relu.bytes_sent == peers * (lt_bytes + 8 * n + (0 if min_rounds else -(-n // 8)))


@pytest.mark.parametrize("world_size", WORLDS)
def test_max_min_argmax_along_dims_with_ties(world_size):
    data = np.random.default_rng(10)
    a = np.round(data.normal(size=(4, 7, 5)) * 4) / 4  # many ties
    a[0, :, 0] = 1.5

    def job(session):
        x = cl.cryptensor(a, src=0)
        v1, h1 = x.max(dim=1)
        v2, h2 = x.min(dim=-1, keepdim=True)
        outs = [
            x.max(),
            x.min(),
            v1,
            h1,
            v2,
            h2,
            x.argmax(dim=2, one_hot=False),
            x.argmin(dim=0, keepdim=True, one_hot=False),
            x.argmax(),
        ]
        return [t.get_plain_text() for t in outs]

    got = run_parties(job, world_size)[0]
    first_hot = lambda idx, n, axis: np.moveaxis(np.eye(n)[idx], -1, axis)  # noqa: E731
    want = [
        a.max(),
        a.min(),
        a.max(1),
        first_hot(a.argmax(1), 7, 1),
        a.min(-1, keepdims=True),
        first_hot(a.argmin(-1), 5, -1),
        a.argmax(2),
        a.argmin(0)[None],
        (np.arange(a.size) == a.argmax()).reshape(a.shape),
    ]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.shape == np.shape(w), i
        np.testing.assert_allclose(g, w, atol=2 * UNIT, rtol=0, err_msg=str(i))


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation"),
    [(2, None, 0, 1), (3, 2, 1, 1), ((2, 3), (1, 2), (1, 0), (2, 1))],
)
def test_max_pool2d_matches_direct_windows(kernel, stride, padding, dilation):
    data = np.random.default_rng(11)
    a = data.normal(size=(2, 3, 7, 8))
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    ks, pd, dl = pair(kernel), pair(padding), pair(dilation)
    st = ks if stride is None else pair(stride)
    padded = np.pad(a, ((0, 0), (0, 0), (pd[0],) * 2, (pd[1],) * 2), constant_values=-np.inf)
    oh = (7 + 2 * pd[0] - dl[0] * (ks[0] - 1) - 1) // st[0] + 1
    ow = (8 + 2 * pd[1] - dl[1] * (ks[1] - 1) - 1) // st[1] + 1
    want = np.empty((2, 3, oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = padded[
                :,
                :,
                i * st[0] : i * st[0] + dl[0] * (ks[0] - 1) + 1 : dl[0],
                j * st[1] : j * st[1] + dl[1] * (ks[1] - 1) + 1 : dl[1],
            ]
            want[:, :, i, j] = win.max(axis=(2, 3))

    def job(session):
        x = cl.cryptensor(a, src=0)
        return x.max_pool2d(
            kernel, stride=stride, padding=padding, dilation=dilation
        ).get_plain_text()

    got = run_parties(job, 2)[0]
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= UNIT


@pytest.mark.parametrize("world_size", WORLDS)
def test_binary_conversion_and_bitwise_ops(world_size):
    a = np.array([-3.25, 0.0, 1.5, 1000.0, -(2.0**20)])
    raw = np.array([0b1100, 0b1010, 7, 0, 2**40], dtype=np.int64)

    def job(session):
        x = cl.cryptensor(a, src=0)
        xb = x.to(cl.mpc.binary)
        back = xb.to(cl.mpc.arithmetic).get_plain_text()
        p = cl.cryptensor(raw, src=0, precision=0).to(cl.mpc.binary)
        q = cl.cryptensor(raw[::-1].copy(), src=1, precision=0).to(cl.mpc.binary)
        outs = [p ^ q, p & q, p | q, p & 6, p ^ 1, ~p, p << 2, p >> 1]
        return back, [t.get_plain_text() for t in outs]

    back, bits = run_parties(job, world_size)[0]
    np.testing.assert_array_equal(back, a)
    r, s = raw, raw[::-1]
    want = [r ^ s, r & s, r | s, r & 6, r ^ 1, ~r, r << 2, r >> 1]
    for g, w in zip(bits, want, strict=True):
        np.testing.assert_array_equal(g, w.astype(np.float64))


def test_comparison_type_errors():
    def job(session):
        x = cl.cryptensor(np.ones(3), src=0)
        with pytest.raises(TypeError, match="binary"):
            x ^ x
        with pytest.raises(TypeError, match="arithmetic"):
            x.to(cl.mpc.binary) < 1
        with pytest.raises(ValueError, match="ptype"):
            x.to("ternary")
        with pytest.raises(ValueError, match="clamp"):
            x.clamp()
        return True

    assert run_parties(job, 2) == [True, True]


@pytest.mark.parametrize("world_size", WORLDS)
def test_argmax_one_hot_comes_from_the_tournament_bits(world_size):
    """The one-hot routes a public 1 down the tournament's own bits: ceil(log2 n) product
    rounds after the 4-round levels, no equality test; ties resolve to the first maximum
    even when they sit in different halves (neighbours pair up)."""
    a = np.zeros((3, 13))
    a[0, [2, 9]] = 5.0  # tie across the first level's pairs
    a[1, :] = -1.0  # all equal
    a[2, [12, 0]] = 2.0  # the unpaired last element ties the first

    def job(session):
        x = cl.cryptensor(a, src=0)
        session.stats.reset()
        _, hot = x.max(dim=1)
        rounds = session.stats.snapshot().rounds
        return hot.get_plain_text(), rounds

    levels = int(np.ceil(np.log2(13)))
    for hot, rounds in run_parties(job, world_size):
        np.testing.assert_array_equal(hot, np.eye(13)[a.argmax(1)])
        assert rounds == 4 * levels + levels
