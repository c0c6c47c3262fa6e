"""MPCTensor arithmetic, linear algebra and reductions against float64, for 2 and 3 parties."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.config import SessionConfig
from crypten_lite.runtime.testing import PartyFailure, run_parties
from tests.tensor import oracles

UNIT = 2.0**-16
WORLDS = [2, 3]
PROVIDERS = ["TrustedDealer", "InsecureLocalDealer"]


def _plain(fn, world_size, **kwargs):
    """Run ``fn`` and return party 0's revealed result(s)."""
    return run_parties(fn, world_size, **kwargs)[0]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("world_size", WORLDS)
def test_elementwise_arithmetic_matches_float64(world_size, provider):
    data = np.random.default_rng(1)
    a = data.uniform(-50, 50, size=(40, 25))
    b = data.uniform(-50, 50, size=(25,))

    def job(session):
        x = cl.cryptensor(a, src=0)
        y = cl.cryptensor(b, src=session.world_size - 1)
        outs = [x + y, x - y, x * y, 2.5 - x, b * x, x / 4.0, x / 3, -x, x * 3, (x + 1.25) * 0.5]
        return [t.get_plain_text() for t in outs]

    got = _plain(job, world_size, provider=provider)
    want = [a + b, a - b, a * b, 2.5 - a, b * a, a / 4, a / 3, -a, a * 3, (a + 1.25) * 0.5]
    # encoding error: half a unit per operand, scaled by the other operand (<= 50); 1/3 is
    # encoded with 18 fractional bits, so x / 3 errs by up to 50 * 2^-19 (6.25 units) + 1
    bounds = [UNIT, UNIT, 60 * UNIT, UNIT, 60 * UNIT, 2 * UNIT, 10 * UNIT, UNIT, 2 * UNIT, 2 * UNIT]
    for g, w, bound in zip(got, want, bounds, strict=True):
        assert np.max(np.abs(g - w)) <= bound


@pytest.mark.parametrize("world_size", WORLDS)
def test_negative_values_decode_exactly(world_size):
    values = np.array([-1.0, -0.5, -(2.0**-16), -1234.75, 1.0, 0.5])

    def job(session):
        return cl.cryptensor(values, src=0).get_plain_text()

    np.testing.assert_array_equal(_plain(job, world_size), values)


@pytest.mark.parametrize("world_size", WORLDS)
def test_product_truncation_error_is_at_most_one_unit(world_size):
    grid = np.linspace(-100, 100, 20001)
    grid_exact = np.round(grid * 2**16) / 2**16  # representable inputs: only truncation errs

    def job(session):
        x = cl.cryptensor(grid_exact, src=0)
        y = cl.cryptensor(np.full_like(grid_exact, -0.75), src=1)
        return (x * y).get_plain_text()

    err = np.abs(_plain(job, world_size) - grid_exact * -0.75)
    assert err.max() <= UNIT


def test_dealer_truncation_is_exact_up_to_one_unit_near_its_domain_edge():
    # x * 0.5 holds |x| * 2^31 before truncation: 2^29.9 reaches 2^60.9 < 2^62.
    big = np.array([2.0**29.9, -(2.0**29.9), 2.0**29, -3.0, 0.0])
    big = np.round(big * 2**16) / 2**16

    def job(session):
        return (cl.cryptensor(big, src=0) * 0.5).get_plain_text()

    cfg = SessionConfig(truncation="dealer")
    for world_size in WORLDS:
        got = run_parties(job, world_size, config=cfg)[0]
        assert np.max(np.abs(got - big * 0.5)) <= UNIT


@pytest.mark.parametrize("world_size", WORLDS)
def test_matmul_private_public_both_orders(world_size):
    data = np.random.default_rng(2)
    a = data.normal(size=(7, 9))
    b = data.normal(size=(9, 4))

    def job(session):
        x = cl.cryptensor(a, src=0)
        y = cl.cryptensor(b, src=1)
        return [t.get_plain_text() for t in (x @ y, x @ b, a @ y, x.matmul(y))]

    for got in _plain(job, world_size):
        assert np.max(np.abs(got - a @ b)) < 40 * UNIT


@pytest.mark.parametrize("world_size", WORLDS)
def test_reductions(world_size):
    data = np.random.default_rng(3)
    a = data.normal(size=(6, 5, 4)) * 10

    def job(session):
        x = cl.cryptensor(a, src=0)
        outs = [
            x.sum(),
            x.sum(1),
            x.sum((0, 2), keepdim=True),
            x.mean(),
            x.mean(-1),
            x.var(),
            x.var(0, unbiased=False),
        ]
        return [t.get_plain_text() for t in outs]

    want = [
        a.sum(),
        a.sum(1),
        a.sum((0, 2), keepdims=True),
        a.mean(),
        a.mean(-1),
        a.var(ddof=1),
        a.var(0),
    ]
    for got, w in zip(_plain(job, world_size), want, strict=True):
        assert got.shape == np.shape(w)
        assert np.max(np.abs(got - w)) <= 1e-3 * max(1.0, float(np.max(np.abs(w))))


def test_mean_over_many_elements_keeps_relative_accuracy():
    values = np.random.default_rng(4).uniform(0, 2, size=100_000)

    def job(session):
        return cl.cryptensor(values, src=0).mean().get_plain_text()

    assert abs(_plain(job, 2) - values.mean()) < 1e-4


@pytest.mark.parametrize("world_size", WORLDS)
def test_conv2d_public_and_private_weights(world_size):
    data = np.random.default_rng(5)
    x = data.normal(size=(2, 4, 7, 6))
    w = data.normal(size=(6, 2, 3, 3))
    bias = data.normal(size=6)

    def job(session):
        xs = cl.cryptensor(x, src=0)
        ws = cl.cryptensor(w, src=1)
        bs = cl.cryptensor(bias, src=1)
        return [
            xs.conv2d(w, bias, stride=(1, 2), padding=1, groups=2).get_plain_text(),
            xs.conv2d(ws, bs, stride=(1, 2), padding=1, groups=2).get_plain_text(),
        ]

    want = oracles.conv2d(x, w, (1, 2), (1, 1), (1, 1), 2) + bias[None, :, None, None]
    for got in _plain(job, world_size):
        assert np.max(np.abs(got - want)) < 100 * UNIT


def test_conv1d_matches_conv2d_oracle():
    data = np.random.default_rng(6)
    x = data.normal(size=(2, 3, 11))
    w = data.normal(size=(4, 3, 3))

    def job(session):
        return cl.cryptensor(x, src=0).conv1d(w, stride=2, padding=2, dilation=2).get_plain_text()

    want = oracles.conv2d(x[:, :, None], w[:, :, None], (1, 2), (0, 2), (1, 2))[:, :, 0]
    assert np.max(np.abs(_plain(job, 2) - want)) < 50 * UNIT


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "groups", "dilation"),
    [(1, 0, 0, 1, 1), (2, 1, 1, 1, 1), (2, 0, 0, 2, 1), (3, 1, 0, 1, 2)],
)
def test_conv_transpose2d_matches_scatter_definition(
    stride, padding, output_padding, groups, dilation
):
    data = np.random.default_rng(7)
    x = data.normal(size=(2, 4, 5, 4))
    w = data.normal(size=(4, 3, 3, 2))

    def job(session):
        xs = cl.cryptensor(x, src=0)
        return xs.conv_transpose2d(
            w,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            groups=groups,
            dilation=dilation,
        ).get_plain_text()

    pair = lambda v: (v, v)  # noqa: E731
    want = oracles.conv_transpose2d(
        x, w, pair(stride), pair(padding), pair(output_padding), groups, pair(dilation)
    )
    got = _plain(job, 2)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) < 50 * UNIT


def test_avg_and_adaptive_pooling():
    x = np.random.default_rng(8).normal(size=(2, 3, 7, 9))

    def job(session):
        xs = cl.cryptensor(x, src=0)
        return [
            xs.avg_pool2d(2).get_plain_text(),
            xs.avg_pool2d(3, stride=2, padding=1).get_plain_text(),
            xs.adaptive_avg_pool2d((3, 4)).get_plain_text(),
        ]

    avg2, avg3, adaptive = _plain(job, 3)
    want2 = x[:, :, :6, :8].reshape(2, 3, 3, 2, 4, 2).mean(axis=(3, 5))
    assert np.max(np.abs(avg2 - want2)) < 4 * UNIT
    want3 = oracles.conv2d(
        x.reshape(6, 1, 7, 9), np.ones((1, 1, 3, 3)) / 9, (2, 2), (1, 1)
    ).reshape(2, 3, 4, 5)
    assert np.max(np.abs(avg3 - want3)) < 4 * UNIT
    rows = [(i * 7 // 3, -(-(i + 1) * 7 // 3)) for i in range(3)]
    cols = [(j * 9 // 4, -(-(j + 1) * 9 // 4)) for j in range(4)]
    want_ad = np.array(
        [[x[:, :, r0:r1, c0:c1].mean(axis=(2, 3)) for c0, c1 in cols] for r0, r1 in rows]
    )
    assert np.max(np.abs(adaptive - np.moveaxis(want_ad, (0, 1), (2, 3)))) < 4 * UNIT


@pytest.mark.parametrize("world_size", WORLDS)
def test_mul_and_matmul_round_and_byte_counts(world_size):
    n = 1000

    def job(session):
        x = cl.cryptensor(np.ones(n), src=0)
        y = cl.cryptensor(np.ones(n), src=1)
        a = cl.cryptensor(np.ones((10, 20)), src=0)
        b = cl.cryptensor(np.ones((20, 30)), src=1)
        session.stats.reset()
        x * y
        mul = session.stats.snapshot()
        session.stats.reset()
        a @ b
        return mul, session.stats.snapshot()

    peers = world_size - 1
    trunc_rounds = 0 if world_size == 2 else 1
    for rank, (mul, mm) in enumerate(run_parties(job, world_size)):
        assert mul.rounds == 1 + trunc_rounds
        assert mm.rounds == 1 + trunc_rounds
        if rank == 0:  # party 0 never talks to the dealer: its bytes are exact
            assert mul.bytes_sent == peers * 8 * (2 * n + trunc_rounds * n)
            assert mm.bytes_sent == peers * 8 * (200 + 600 + trunc_rounds * 300)


def test_mixing_sessions_and_precisions_is_an_error():
    def job(session):
        x = cl.cryptensor(np.ones(3), src=0)
        y = cl.cryptensor(np.ones(3), src=0, precision=20)
        with pytest.raises(ValueError, match="precision"):
            x + y
        other = cl.MPCTensor(object.__new__(cl.Session), x.share, 16)
        with pytest.raises(cl.errors.SessionError, match="different sessions"):
            x * other
        with pytest.raises(TypeError, match="secret"):
            bool(x)
        return repr(x)

    for text in run_parties(job, 2):
        assert "<hidden>" in text and "share" not in text


def test_bad_inputs_raise_before_communication():
    def job(session):
        with pytest.raises(cl.errors.EncodingError):
            cl.cryptensor(np.array([np.nan]), src=0) if session.rank == 0 else None
            raise cl.errors.EncodingError("symmetry")  # keep both parties in step
        return True

    assert run_parties(job, 2) == [True, True]

    def mismatch(session):
        data = np.ones(3) if session.rank == 0 else np.ones(4)
        return cl.cryptensor(data, src=0)

    with pytest.raises(PartyFailure, match="shape"):
        run_parties(mismatch, 2, timeout_s=10)


def test_debug_range_check_reports_overflow():
    def job(session):
        x = cl.cryptensor(np.array([2.0**45]), src=0)
        return (x + x).get_plain_text()  # 2^46 is outside |x| < 2^46 at precision 16

    with pytest.raises(PartyFailure, match="representable range"):
        run_parties(job, 3, config=SessionConfig(debug_range_check=True), timeout_s=10)
    assert run_parties(job, 2)[0][0] == 2.0**46  # unchecked: decoded beyond the range


def test_shape_mismatches_fail_before_any_triple_is_used():
    def job(session):
        x = cl.cryptensor(np.ones((2, 3)), src=0)
        y = cl.cryptensor(np.ones((4,)), src=1)
        before = session.provider.requests
        for op, pattern in [
            (lambda: x * y, "do not broadcast"),
            (lambda: x + y, "do not broadcast"),
            (lambda: x @ y, "cannot be multiplied"),
            (lambda: x + np.ones(5), "do not broadcast"),
        ]:
            with pytest.raises(ValueError, match=pattern):
                op()
        return session.provider.requests - before, session.stats.rounds

    assert run_parties(job, 2) == [(0, 2), (0, 2)]  # rounds: the two shape announcements


@pytest.mark.parametrize("world", [2, 3])
def test_debug_range_check_catches_a_product_that_wraps(world):
    """Revealed values are already wrapped back into range (x*x for x = 2^20 + 0.5 used to
    reveal 1048576.25): the check runs on the operands, before the product."""
    config = SessionConfig(debug_range_check=True)

    def square(session):
        x = cl.cryptensor(np.array([2.0**20 + 0.5, 1.0]), src=0)
        return (x * x).get_plain_text()

    with pytest.raises(PartyFailure, match="product could overflow the ring") as info:
        run_parties(square, world, config=config, timeout_s=30)
    assert all(
        "|x| <= 32768" in info.value.failures.get(rank, "|x| <= 32768") for rank in range(world)
    )

    def matmul(session):
        x = cl.cryptensor(np.full((2, 64), 5000.0), src=0)
        return (x @ x.t()).get_plain_text()  # 64 * 5000^2 = 1.6e9 > 2^30

    with pytest.raises(PartyFailure, match="matmul"):
        run_parties(matmul, world, config=config, timeout_s=30)

    def public(session):
        x = cl.cryptensor(np.array([3.0e9]), src=0)
        return (x * 1e5).get_plain_text()  # 3e14 wraps at 2^46

    with pytest.raises(PartyFailure, match="mul by a public value"):
        run_parties(public, world, config=config, timeout_s=30)

    def fine(session):
        x = cl.cryptensor(np.array([100.0, -3.5]), src=0)
        return (x * x).get_plain_text(), (x * 1e3).get_plain_text()

    squares, scaled = run_parties(fine, world, config=config)[0]
    np.testing.assert_allclose(squares, [1e4, 12.25], atol=1e-3)
    np.testing.assert_allclose(scaled, [1e5, -3.5e3], atol=1e-2)


@pytest.mark.parametrize("world", [2, 3])
def test_debug_range_check_catches_comparisons_beyond_the_range(world):
    """5 * 2^45 at precision 16 is 1.25 * 2^63 in the ring: it wraps to -0.75 * 2^63, so
    ``z > 0`` answers 0 for a positive value; the debug check refuses the operand instead."""

    def compare(session):
        x = cl.cryptensor(np.array([2.0**45, 1.0]), src=0)
        z = x + x + x + x + x
        return [(z > 0).get_plain_text(), z.relu().get_plain_text(), z.max().get_plain_text()]

    unchecked = run_parties(compare, world)[0]
    np.testing.assert_array_equal(unchecked[0], [0.0, 1.0])  # the documented wrapped answer
    with pytest.raises(PartyFailure, match="comparison could wrap the ring") as info:
        run_parties(compare, world, config=SessionConfig(debug_range_check=True), timeout_s=30)
    assert "comparisons need |x| <= 2^45" in next(iter(info.value.failures.values()))

    def in_range(session):
        x = cl.cryptensor(np.array([2.0**44, -3.0]), src=0)
        return (x > 0).get_plain_text()

    checked = run_parties(in_range, world, config=SessionConfig(debug_range_check=True))
    np.testing.assert_array_equal(checked[0], [1.0, 0.0])
