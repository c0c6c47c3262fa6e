"""CrypTen-parity API (where, ptype, new, in-place ops, products, norms, indexing, cos/sin,
hardtanh, dropout, adaptive max pooling, max/min with one_hot, 0-d softmax) against numpy
float64, 2 and 3 parties."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.config import SessionConfig
from crypten_lite.runtime.testing import run_parties

UNIT = 2.0**-16
WORLDS = [2, 3]


def _enc(v):
    return np.round(np.asarray(v, dtype=np.float64) * 2**16) / 2**16


RNG = np.random.default_rng(2024)
A = _enc(RNG.uniform(-4, 4, (3, 4, 5)))
B = _enc(RNG.uniform(-4, 4, (3, 4, 5)))
V = _enc(RNG.uniform(-3, 3, 7))
W = _enc(RNG.uniform(-3, 3, 7))


@pytest.mark.parametrize("world_size", WORLDS)
def test_where_ptype_new_and_is_encrypted(world_size):
    cond = A > B

    def job(session):
        x, y = cl.cryptensor(A, src=0), cl.cryptensor(B, src=1)
        c = x > y  # private 0/1
        binary = cl.cryptensor(A, src=1, ptype=cl.mpc.binary)
        fresh = x.new(B, src=1)
        return [
            cl.where(cond, x, y).get_plain_text(),
            cl.where(cond, x, 1.5).get_plain_text(),
            cl.where(cond, 2.0, y).get_plain_text(),
            cl.where(c, x, y).get_plain_text(),
            cl.where(c, 2.0, y).get_plain_text(),
            cl.where(c, x, -1.0).get_plain_text(),
            cl.where(c, 3.0, -1.0).get_plain_text(),
            binary.ptype,
            binary.to(cl.mpc.arithmetic).get_plain_text(),
            binary.get_plain_text(),
            (fresh.precision, fresh.session is session, fresh.get_plain_text()),
            (cl.is_encrypted_tensor(x), cl.is_encrypted_tensor(A), cl.is_encrypted_tensor(1)),
        ]

    got = run_parties(job, world_size)[0]
    exact = [
        np.where(cond, A, B),
        np.where(cond, A, 1.5),
        np.where(cond, 2.0, B),
    ]
    for g, w in zip(got[:3], exact, strict=True):
        np.testing.assert_array_equal(g, w)
    for g, w in zip(
        got[3:7],
        [
            np.where(cond, A, B),
            np.where(cond, 2.0, B),
            np.where(cond, A, -1.0),
            np.where(cond, 3.0, -1.0),
        ],
        strict=True,
    ):
        np.testing.assert_allclose(g, w, atol=2 * UNIT)
    assert got[7] == cl.mpc.binary
    np.testing.assert_array_equal(got[8], A)
    np.testing.assert_array_equal(got[9], A)
    assert got[10][0] == 16 and got[10][1]
    np.testing.assert_array_equal(got[10][2], B)
    assert got[11] == (True, False, False)


def test_where_and_cryptensor_reject_bad_input():
    def job(session):
        x = cl.cryptensor(A)
        errors = []
        for call in (
            lambda: cl.where(A > 0, A, B),
            lambda: cl.where(np.ones(A.shape), x, 0.0),
            lambda: cl.cryptensor(A, ptype="ternary"),
        ):
            try:
                call()
            except (TypeError, ValueError) as err:
                errors.append(type(err).__name__)
        return errors

    assert run_parties(job, 2)[0] == ["TypeError", "TypeError", "ValueError"]


@pytest.mark.parametrize("world_size", WORLDS)
def test_in_place_ops_and_clone(world_size):
    def job(session):
        x, y = cl.cryptensor(A, src=0), cl.cryptensor(B, src=1)
        z = x.clone()
        share_before = x.share
        same = z.add_(y) is z
        z.sub_(2.0).mul_(y).div_(4.0).neg_()
        c = x.clone().mul_(0.5)
        try:
            x.clone().add_(cl.cryptensor(np.ones((2, 3, 4, 5))))
            shape_error = None
        except ValueError as err:
            shape_error = str(err)
        return (
            same,
            z.get_plain_text(),
            c.get_plain_text(),
            x.get_plain_text(),
            share_before is x.share,
            shape_error,
        )

    same, z, c, x, kept, err = run_parties(job, world_size)[0]
    assert same and kept
    np.testing.assert_allclose(z, -((A + B - 2.0) * B / 4.0), atol=4 * UNIT)
    np.testing.assert_allclose(c, A * 0.5, atol=UNIT)
    np.testing.assert_array_equal(x, A)
    assert "(2, 3, 4, 5)" in err and "(3, 4, 5)" in err


@pytest.mark.parametrize("world_size", WORLDS)
def test_products_sums_and_norms(world_size):
    p = _enc(RNG.uniform(0.5, 1.5, (3, 6)))
    m = _enc(RNG.uniform(-2, 2, (4, 4)))
    small = _enc(RNG.uniform(-1, 1, (2, 5)))

    def job(session):
        v, w = cl.cryptensor(V, src=0), cl.cryptensor(W, src=1)
        x = cl.cryptensor(p)
        mm = cl.cryptensor(m)
        s = cl.cryptensor(small)
        return [
            v.dot(w).get_plain_text(),
            v.dot(W).get_plain_text(),
            v.ger(w).get_plain_text(),
            x.prod().get_plain_text(),
            x.prod(1).get_plain_text(),
            x.prod(0, keepdim=True).get_plain_text(),
            cl.cryptensor(A).cumsum(1).get_plain_text(),
            mm.trace().get_plain_text(),
            s.norm().get_plain_text(),
            s.norm(p=2, dim=1).get_plain_text(),
            s.norm(p=1, dim=0, keepdim=True).get_plain_text(),
            s.norm(p=float("inf")).get_plain_text(),
            s.norm(p=float("inf"), dim=1).get_plain_text(),
        ]

    got = run_parties(job, world_size)[0]
    want = [
        V @ W,
        V @ W,
        np.outer(V, W),
        p.prod(),
        p.prod(1),
        p.prod(0, keepdims=True),
        A.cumsum(1),
        np.trace(m),
        np.linalg.norm(small),
        np.linalg.norm(small, axis=1),
        np.abs(small).sum(0, keepdims=True),
        np.abs(small).max(),
        np.abs(small).max(1),
    ]
    tolerances = [4e-4, 4e-4, 4 * UNIT, 2e-4, 1e-4, 1e-4, 0, 0, 2e-3, 2e-3, 4 * UNIT, 0, 0]
    for g, w, tol in zip(got, want, tolerances, strict=True):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, atol=tol, rtol=0)


@pytest.mark.parametrize("world_size", WORLDS)
def test_indexing_matches_numpy(world_size):
    idx = RNG.integers(0, 4, (3, 2, 5))
    sel = np.array([3, 0, 0, 2])
    flat = np.array([[0, -1], [59, 7]])
    src_public = _enc(RNG.uniform(-1, 1, (3, 2, 5)))

    def job(session):
        x, y = cl.cryptensor(A, src=0), cl.cryptensor(B, src=1)
        set_private = x.clone()
        set_private[1, :, 2] = y[0, :, 0]
        set_public = x.clone()
        set_public[:, 1] = 7.25
        set_rows = x.clone()
        set_rows[0] = np.arange(5.0)
        return [
            x.gather(1, idx).get_plain_text(),
            x.scatter(1, idx, y).get_plain_text(),
            x.scatter(1, idx, src_public).get_plain_text(),
            x.scatter(1, idx, 0.5).get_plain_text(),
            x.index_select(2, sel).get_plain_text(),
            x.take(flat).get_plain_text(),
            x.narrow(2, 1, 3).get_plain_text(),
            x.narrow(-1, -2, 2).get_plain_text(),
            x.unfold(2, 2, 2).get_plain_text(),
            x.roll(2, 1).get_plain_text(),
            x.roll((1, -1), (0, 2)).get_plain_text(),
            x.roll(3).get_plain_text(),
            [t.get_plain_text() for t in x.unbind(1)],
            set_private.get_plain_text(),
            set_public.get_plain_text(),
            set_rows.get_plain_text(),
        ]

    got = run_parties(job, world_size)[0]
    scatter = A.copy()
    np.put_along_axis(scatter, idx, B[:, :2, :], axis=1)
    scatter_public = A.copy()
    np.put_along_axis(scatter_public, idx, src_public, axis=1)
    scatter_scalar = A.copy()
    np.put_along_axis(scatter_scalar, idx, 0.5, axis=1)
    set_private, set_public, set_rows = A.copy(), A.copy(), A.copy()
    set_private[1, :, 2] = B[0, :, 0]
    set_public[:, 1] = 7.25
    set_rows[0] = np.arange(5.0)
    want = [
        np.take_along_axis(A, idx, axis=1),
        scatter,
        scatter_public,
        scatter_scalar,
        np.take(A, sel, axis=2),
        A.reshape(-1)[flat],
        A[:, :, 1:4],
        A[:, :, 3:5],
        np.stack([A[:, :, 0:2], A[:, :, 2:4]], axis=2),
        np.roll(A, 2, 1),
        np.roll(A, (1, -1), (0, 2)),
        np.roll(A.reshape(-1), 3).reshape(A.shape),
        [A[:, i] for i in range(4)],
        set_private,
        set_public,
        set_rows,
    ]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def test_indexing_rejects_bad_indices_before_communication():
    def job(session):
        x = cl.cryptensor(A)
        rounds = session.comm.stats.rounds
        messages = []
        for call in (
            lambda: x.gather(1, np.full((3, 4, 5), 4)),
            lambda: x.gather(1, np.zeros((3, 4, 5))),
            lambda: x.gather(1, np.zeros((3, 4), dtype=np.int64)),
            lambda: x.scatter(0, np.full((3, 4, 5), -1), 1.0),
            lambda: x.index_select(0, [0, 3]),
            lambda: x.index_select(0, np.array([True, False])),
            lambda: x.take([60]),
            lambda: x.narrow(2, 4, 2),
            lambda: x.__setitem__((0, 0), np.ones(3)),
            lambda: x.__setitem__(0, x),
            lambda: x.gather(0, x),
        ):
            try:
                call()
                messages.append(None)
            except (IndexError, TypeError, ValueError) as err:
                messages.append(f"{type(err).__name__}: {err}")
        return messages, session.comm.stats.rounds - rounds

    messages, rounds = run_parties(job, 2)[0]
    assert rounds == 0
    assert all(m is not None for m in messages), messages
    assert messages[0].startswith("IndexError") and "index 4" in messages[0]
    assert messages[1].startswith("TypeError") and "index" in messages[1]
    assert messages[4].startswith("IndexError") and "index 3" in messages[4]
    assert messages[5].startswith("TypeError")
    assert "(3,)" in messages[8] and "(5,)" in messages[8]
    assert "(3, 4, 5)" in messages[9] and "(4, 5)" in messages[9]
    assert messages[10].startswith("TypeError")


@pytest.mark.parametrize(("world_size", "min_rounds"), [(2, False), (3, False), (3, True)])
def test_cos_sin_error_on_dense_grids(world_size, min_rounds):
    small = _enc(np.linspace(-10, 10, 4001))
    large = _enc(np.linspace(-1000, 1000, 4001))

    def job(session):
        x, y = cl.cryptensor(small), cl.cryptensor(large)
        before = session.comm.stats.rounds
        c = x.cos()
        rounds = session.comm.stats.rounds - before
        return (
            c.get_plain_text(),
            x.sin().get_plain_text(),
            y.cos().get_plain_text(),
            (y.sin().get_plain_text()),
            rounds,
        )

    config = SessionConfig(min_rounds=min_rounds)
    c, s, cl_, sl, rounds = run_parties(job, world_size, config=config)[0]
    assert np.abs(c - np.cos(small)).max() < 5e-4
    assert np.abs(s - np.sin(small)).max() < 5e-4
    assert np.abs(cl_ - np.cos(large)).max() < 8e-4
    assert np.abs(sl - np.sin(large)).max() < 8e-4
    assert rounds == {(2, False): 5, (3, False): 12, (3, True): 7}[(world_size, min_rounds)]


@pytest.mark.parametrize("world_size", WORLDS)
def test_hardtanh_relu6_dropout_and_adaptive_max_pool(world_size):
    grid = _enc(np.linspace(-8, 8, 161))
    image = _enc(RNG.uniform(-5, 5, (2, 3, 7, 9)))

    def job(session):
        x = cl.cryptensor(grid)
        img = cl.cryptensor(image)
        ones = cl.cryptensor(np.ones((50, 40)))
        before = session.comm.stats.rounds
        dropped = ones.dropout(0.25)
        dropout_rounds = session.comm.stats.rounds - before
        return [
            x.hardtanh().get_plain_text(),
            x.hardtanh(-2.5, 3.0).get_plain_text(),
            x.relu6().get_plain_text(),
            dropped.get_plain_text(),
            dropout_rounds,
            ones.dropout(0.5, training=False).get_plain_text(),
            img.adaptive_max_pool2d((3, 4)).get_plain_text(),
            img[0].adaptive_max_pool2d(2).get_plain_text(),
        ]

    got = run_parties(job, world_size)[0]
    all_parties = run_parties(
        lambda s: cl.cryptensor(np.ones((50, 40))).dropout(0.25).get_plain_text(), world_size
    )
    np.testing.assert_array_equal(got[0], np.clip(grid, -1, 1))
    np.testing.assert_array_equal(got[1], np.clip(grid, -2.5, 3.0))
    np.testing.assert_array_equal(got[2], np.clip(grid, 0, 6))
    kept = got[3] != 0
    np.testing.assert_allclose(got[3][kept], 1 / 0.75, atol=2 * UNIT)
    assert 0.65 < kept.mean() < 0.85
    assert got[4] <= 2  # the seed broadcast (+ a dealer truncation with 3 parties)
    np.testing.assert_array_equal(got[5], np.ones((50, 40)))
    for other in all_parties[1:]:  # every party revealed the same masked tensor
        np.testing.assert_array_equal(other, all_parties[0])

    def adaptive_max(a, out):
        h, w = a.shape[-2:]
        rows = [(i * h // out[0], -(-(i + 1) * h // out[0])) for i in range(out[0])]
        cols = [(j * w // out[1], -(-(j + 1) * w // out[1])) for j in range(out[1])]
        return np.stack(
            [
                np.stack([a[..., r0:r1, c0:c1].max((-2, -1)) for c0, c1 in cols], -1)
                for r0, r1 in rows
            ],
            -2,
        )

    np.testing.assert_array_equal(got[6], adaptive_max(image, (3, 4)))
    np.testing.assert_array_equal(got[7], adaptive_max(image[0], (2, 2)))


@pytest.mark.parametrize("world_size", WORLDS)
def test_max_min_one_hot_and_scalar_softmax(world_size):
    data = _enc(RNG.uniform(-5, 5, (4, 6)))

    def job(session):
        x = cl.cryptensor(data)
        values, hot = x.max(1)
        _, index = x.max(1, one_hot=False)
        low, low_index = x.min(0, keepdim=True, one_hot=False)
        scalar = cl.cryptensor(np.array(2.5))
        return [
            values.get_plain_text(),
            hot.get_plain_text(),
            index.get_plain_text(),
            low.get_plain_text(),
            low_index.get_plain_text(),
            scalar.softmax(0).get_plain_text(),
            scalar.log_softmax(-1).get_plain_text(),
        ]

    got = run_parties(job, world_size)[0]
    np.testing.assert_array_equal(got[0], data.max(1))
    np.testing.assert_array_equal(got[1], np.eye(6)[data.argmax(1)])
    np.testing.assert_allclose(got[2], data.argmax(1), atol=UNIT)
    np.testing.assert_array_equal(got[3], data.min(0, keepdims=True))
    np.testing.assert_allclose(got[4], data.argmin(0)[None], atol=UNIT)
    assert got[5].shape == () and got[5] == 1.0
    assert got[6].shape == () and got[6] == 0.0
