"""Approximations on MPCTensor against float64 on dense grids of each documented range, edges
included, for 2 and 3 parties (and the fused 3-party circuits of ``min_rounds``); round counts;
debug-mode range reports; saturation; the circuit engine; config validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.config import ApproxConfig, SessionConfig
from crypten_lite.protocols.polynomial import Circuit, chebyshev, chebyshev_fit
from crypten_lite.runtime.testing import PartyFailure, run_parties

UNIT = 2.0**-16
SETUPS = [(2, False), (3, False), (3, True)]  # (world size, min_rounds)
erf = np.vectorize(math.erf, otypes=[np.float64])


def _enc(values):
    """The representable inputs (what the parties actually share)."""
    return np.round(np.asarray(values, dtype=np.float64) / UNIT) * UNIT


def _both_signs(magnitudes):
    return np.concatenate([-magnitudes[::-1], magnitudes])


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _gelu(a):
    return 0.5 * a * (1.0 + erf(a / math.sqrt(2.0)))


def _softmax(a):
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _log_softmax(a):
    m = a.max(axis=1, keepdims=True)
    return a - m - np.log(np.exp(a - m).sum(axis=1, keepdims=True))


def _logits():
    """Rows of 1000 logits in [-10, 10]: uniform, one dominant, all equal (low and high),
    an even ramp, two clusters."""
    data = np.random.default_rng(31)
    rows = [data.uniform(-10, 10, 1000) for _ in range(3)]
    rows.append(np.full(1000, -10.0))
    rows[-1][123] = 10.0
    rows += [np.full(1000, -10.0), np.full(1000, 10.0), np.linspace(-10, 10, 1000)]
    rows.append(np.where(np.arange(1000) % 2 == 0, 10.0, -10.0))
    return _enc(np.stack(rows))


# name -> (grid, operation, reference, check)  with check one of
# ("rel", bound), ("abs", bound), ("exp", rel_bound, abs_bound)
POS = np.geomspace(0.1, 100, 1501)
CASES = {
    "exp": (np.linspace(-8, 4, 3001), lambda x: x.exp(), np.exp, ("exp", 0.01, 1e-4)),
    "exp_wide": (np.linspace(-32, -8, 1001), lambda x: x.exp(), np.exp, ("abs", 1e-4)),
    "reciprocal": (
        _both_signs(np.union1d(POS, np.linspace(0.1, 100, 1001))),
        lambda x: x.reciprocal(),
        lambda a: 1.0 / a,
        ("rel", 0.01),
    ),
    "reciprocal_pos": (POS, lambda x: x.reciprocal(all_pos=True), lambda a: 1.0 / a, ("rel", 0.01)),
    "log": (
        np.union1d(np.geomspace(0.01, 100, 2001), np.linspace(0.01, 100, 1001)),
        lambda x: x.log(),
        np.log,
        ("abs", 0.01),
    ),
    "sqrt": (
        np.union1d(np.geomspace(0.01, 100, 2001), np.linspace(0.01, 100, 1001)),
        lambda x: x.sqrt(),
        np.sqrt,
        ("abs", 0.01),
    ),
    "inv_sqrt": (
        np.union1d(POS, np.linspace(0.1, 100, 1001)),
        lambda x: x.inv_sqrt(),
        lambda a: a**-0.5,
        ("rel", 0.01),
    ),
    "sigmoid": (np.linspace(-10, 10, 4001), lambda x: x.sigmoid(), _sigmoid, ("abs", 2e-3)),
    "sigmoid_range": (np.linspace(-12, 12, 2001), lambda x: x.sigmoid(), _sigmoid, ("abs", 2e-3)),
    "tanh": (np.linspace(-10, 10, 4001), lambda x: x.tanh(), np.tanh, ("abs", 2e-3)),
    "erf": (np.linspace(-3, 3, 3001), lambda x: x.erf(), erf, ("abs", 0.01)),
    "gelu": (np.linspace(-6, 6, 3001), lambda x: x.gelu(), _gelu, ("abs", 0.01)),
    "pow3": (np.linspace(-4, 4, 801), lambda x: x.pow(3), lambda a: a**3, ("abs", 2e-3)),
    "pow-2": (np.geomspace(0.5, 10, 301), lambda x: x**-2, lambda a: a**-2.0, ("rel", 0.01)),
    "softmax": (_logits(), lambda x: x.softmax(1), _softmax, ("abs", 2e-3)),
    "log_softmax": (_logits(), lambda x: x.log_softmax(dim=-1), _log_softmax, ("abs", 0.01)),
}


def _error(check, got, want):
    if check[0] == "abs":
        return float(np.max(np.abs(got - want))) / check[1]
    if check[0] == "rel":
        return float(np.max(np.abs(got - want) / np.abs(want))) / check[1]
    small = want < 0.01
    rel = np.max(np.abs(got - want)[~small] / want[~small]) / check[1]
    return float(max(rel, np.max(np.abs(got - want)[small]) / check[2]))


@pytest.mark.parametrize(("world_size", "min_rounds"), SETUPS)
def test_accuracy_on_dense_grids(world_size, min_rounds):
    grids = {name: _enc(case[0]) for name, case in CASES.items()}

    def job(session):
        return {
            name: CASES[name][1](cl.cryptensor(grid, src=0)).get_plain_text()
            for name, grid in grids.items()
        }

    got = run_parties(job, world_size, config=SessionConfig(min_rounds=min_rounds))[0]
    ratios = {
        name: _error(CASES[name][3], got[name], CASES[name][2](g)) for name, g in grids.items()
    }
    assert all(r <= 1.0 for r in ratios.values()), ratios  # error / target, per function


def test_division_by_a_private_value():
    data = np.random.default_rng(32)
    num = _enc(data.uniform(-50, 50, 2000))
    den = _enc(_both_signs(np.geomspace(0.1, 100, 1000)))
    matrix, column = _enc(data.uniform(-5, 5, (4, 6))), _enc(data.uniform(0.5, 3, (4, 1)))

    def job(session):
        n, d = cl.cryptensor(num, src=0), cl.cryptensor(den, src=1)
        m, c = cl.cryptensor(matrix, src=0), cl.cryptensor(column, src=1)
        return [t.get_plain_text() for t in (n / d, m / c, c / m, 2.0 / c)]

    q, mc, cm, two = run_parties(job, 3)[0]
    want = num / den
    big = np.abs(want) >= 0.01
    assert np.max(np.abs(q - want)[big] / np.abs(want[big])) <= 0.01
    assert np.max(np.abs(q - want)[~big]) <= 4 * UNIT
    np.testing.assert_allclose(mc, matrix / column, rtol=0.01, atol=4 * UNIT)
    np.testing.assert_allclose(cm, column / matrix, rtol=0.01, atol=4 * UNIT)
    np.testing.assert_allclose(two, 2.0 / column, rtol=0.01)


# 2 parties / 3 parties / 3 parties with min_rounds (fused truncations)
ROUNDS = {
    "exp": (6, 13, 7),
    "reciprocal": (11, 20, 12),
    "reciprocal_pos": (8, 17, 9),
    "div": (11, 20, 12),
    "log": (7, 12, 8),
    "sqrt": (8, 14, 9),
    "inv_sqrt": (8, 14, 9),
    "sigmoid": (5, 11, 6),
    "tanh": (6, 13, 7),
    "erf": (4, 9, 5),
    "gelu": (5, 11, 6),
    "pow3": (2, 4, 3),
    "pow-1": (11, 20, 12),
    "softmax": (55, 71, 46),
    "log_softmax": (53, 65, 45),
}
CRYPTEN_ROUNDS = {"exp": 8, "sigmoid": 23, "reciprocal": 38, "softmax": 137}
ROUND_OPS = {
    "exp": lambda x, y, m: x.exp(),
    "reciprocal": lambda x, y, m: x.reciprocal(),
    "reciprocal_pos": lambda x, y, m: y.reciprocal(all_pos=True),
    "div": lambda x, y, m: x / y,
    "log": lambda x, y, m: y.log(),
    "sqrt": lambda x, y, m: y.sqrt(),
    "inv_sqrt": lambda x, y, m: y.inv_sqrt(),
    "sigmoid": lambda x, y, m: x.sigmoid(),
    "tanh": lambda x, y, m: x.tanh(),
    "erf": lambda x, y, m: x.erf(),
    "gelu": lambda x, y, m: x.gelu(),
    "pow3": lambda x, y, m: x.pow(3),
    "pow-1": lambda x, y, m: y**-1,
    "softmax": lambda x, y, m: m.softmax(1),
    "log_softmax": lambda x, y, m: m.log_softmax(1),
}


def _rounds(world_size, config):
    def job(session):
        data = np.random.default_rng(33)
        x = cl.cryptensor(data.uniform(0.5, 2, 16), src=0)
        y = cl.cryptensor(data.uniform(1, 2, 16), src=1)
        m = cl.cryptensor(data.uniform(-2, 2, (2, 1000)), src=0)
        counts = {}
        for name, op in ROUND_OPS.items():
            session.stats.reset()
            op(x, y, m)
            counts[name] = session.stats.rounds
        return counts

    results = run_parties(job, world_size, config=config)
    assert all(r == results[0] for r in results)  # every party counts alike
    return results[0]


@pytest.mark.parametrize(("world_size", "min_rounds"), SETUPS)
def test_round_counts(world_size, min_rounds):
    counts = _rounds(world_size, SessionConfig(min_rounds=min_rounds))
    column = SETUPS.index((world_size, min_rounds))
    assert counts == {name: r[column] for name, r in ROUNDS.items()}
    if world_size == 2:
        assert all(counts[name] < r for name, r in CRYPTEN_ROUNDS.items())


def test_round_counts_with_debug_check_softmax_shift_and_saturation():
    debug = _rounds(2, SessionConfig(debug_range_check=True))
    assert {k: v - ROUNDS[k][0] for k, v in debug.items()} == {
        k: (0 if k == "pow3" else 7) for k in ROUNDS
    }
    saturated = _rounds(2, SessionConfig(approx=ApproxConfig(saturate=True)))
    assert {k: v - ROUNDS[k][0] for k, v in saturated.items()} == {
        k: (0 if k == "pow3" else 4) for k in ROUNDS
    }
    shifted = _rounds(2, SessionConfig(approx=ApproxConfig(softmax_shift=2.0)))
    assert (shifted["softmax"], shifted["log_softmax"]) == (18, 13)


@pytest.mark.parametrize("world_size", [2, 3])
def test_softmax_with_public_shift(world_size):
    logits = _enc(np.random.default_rng(34).uniform(-10, 10, (4, 1000)))
    logits[:, 0] = 10.0  # max(x) in [c - 4, c] for c = 10

    def job(session):
        return cl.cryptensor(logits, src=0).softmax(1).get_plain_text()

    config = SessionConfig(approx=ApproxConfig(softmax_shift=10.0))
    got = run_parties(job, world_size, config=config)[0]
    assert np.max(np.abs(got - _softmax(logits))) <= 2e-3


OUT_OF_RANGE = [
    ("exp", 4.5, lambda x: x.exp()),
    ("exp", -33.0, lambda x: x.exp()),
    ("reciprocal", 0.05, lambda x: x.reciprocal()),
    ("reciprocal", -101.0, lambda x: x.reciprocal()),
    ("reciprocal", -1.0, lambda x: x.reciprocal(all_pos=True)),
    ("log", 300.0, lambda x: x.log()),
    ("sqrt", 0.001, lambda x: x.sqrt()),
    ("inv_sqrt", -1.0, lambda x: x.inv_sqrt()),
    ("sigmoid", 12.5, lambda x: x.sigmoid()),
    ("tanh", -13.0, lambda x: x.tanh()),
    ("erf", 4.5, lambda x: x.erf()),
    ("gelu", -9.0, lambda x: x.gelu()),
    ("pow", 200.0, lambda x: x.pow(-2)),
]


def test_debug_mode_reports_inputs_outside_the_range():
    def job(session):
        inside = cl.cryptensor(np.array([0.5, 1.0, 2.0]), src=0)
        fine = [op(inside).get_plain_text() for _, _, op in OUT_OF_RANGE]
        reports = []
        for name, value, op in OUT_OF_RANGE:
            x = cl.cryptensor(np.array([1.0, value, 2.0]), src=0)
            try:
                op(x)
            except cl.errors.ShareError as err:
                reports.append(str(err))
                continue
            reports.append(f"{name}: not reported")
        spread = np.zeros((2, 40))
        spread[1, 0] = 33.0  # max - x = 33 > 32
        try:
            cl.cryptensor(spread, src=0).softmax(1)
            reports.append("softmax: not reported")
        except cl.errors.ShareError as err:
            reports.append(str(err))
        return fine, reports

    fine, reports = run_parties(job, 2, config=SessionConfig(debug_range_check=True))[0]
    assert len(fine) == len(OUT_OF_RANGE)
    for (name, value, _), report in zip(
        [*OUT_OF_RANGE, ("softmax", 0, None)], reports, strict=True
    ):
        assert report.startswith(f"{name}: an input lies outside the documented range"), report
        assert str(value) not in report.split("range")[0]  # no secret value in the message


def test_saturate_clamps_inputs_to_the_range():
    far = _enc(np.array([-1000.0, -20.0, -13.0, 13.0, 20.0, 1000.0]))

    def job(session):
        x = cl.cryptensor(far, src=0)
        out = {
            "sigmoid": x.sigmoid(),
            "tanh": x.tanh(),
            "erf": x.erf(),
            "gelu": x.gelu(),
            "exp": cl.cryptensor(-np.abs(far), src=0).exp(),
            "reciprocal": x.reciprocal(),
            "log": cl.cryptensor(np.abs(far), src=0).log(),
        }
        return {k: v.get_plain_text() for k, v in out.items()}

    config = SessionConfig(approx=ApproxConfig(saturate=True))
    got = run_parties(job, 2, config=config)[0]
    np.testing.assert_allclose(got["sigmoid"], _sigmoid(np.clip(far, -12, 12)), atol=2e-3)
    np.testing.assert_allclose(got["tanh"], np.sign(far), atol=2e-3)
    np.testing.assert_allclose(got["erf"], np.sign(far), atol=0.01)
    np.testing.assert_allclose(got["gelu"], np.maximum(far, 0), atol=0.01)
    np.testing.assert_allclose(got["exp"], np.exp(np.clip(-np.abs(far), -32, 4)), atol=1e-4)
    np.testing.assert_allclose(got["reciprocal"], 1 / np.clip(far, -100, 100), rtol=0.01)
    np.testing.assert_allclose(got["log"], np.log(np.clip(np.abs(far), 2**-8, 2**8)), atol=0.01)


def test_shapes_precision_providers_and_type_errors():
    grid = _enc(np.linspace(-10, 10, 201))

    def job(session):
        scalar = cl.cryptensor(np.array(1.5), src=0)
        empty = cl.cryptensor(np.zeros((0, 3)), src=0)
        fine = cl.cryptensor(grid, src=0, precision=20)
        m = cl.cryptensor(np.arange(6.0).reshape(2, 3), src=0)
        with pytest.raises(TypeError, match="integer"):
            m.pow(2.5)
        with pytest.raises(TypeError, match="arithmetic"):
            m.to(cl.mpc.binary).exp()
        return (
            scalar.exp().get_plain_text(),
            empty.reciprocal().get_plain_text().shape,
            fine.sigmoid().get_plain_text(),
            (m**0).get_plain_text(),
            m.softmax(0).get_plain_text(),
        )

    for world_size, provider in ((2, "InsecureLocalDealer"), (3, "TrustedDealer")):
        e, shape, sig, ones, soft = run_parties(job, world_size, provider=provider)[0]
        assert e.shape == () and abs(e - math.exp(1.5)) <= 0.01 * math.exp(1.5)
        assert shape == (0, 3)
        assert np.max(np.abs(sig - _sigmoid(grid))) <= 2e-3
        np.testing.assert_array_equal(ones, np.ones((2, 3)))
        col = np.exp(np.arange(6.0).reshape(2, 3))
        np.testing.assert_allclose(soft, col / col.sum(axis=0), atol=2e-3)


@pytest.mark.parametrize(
    ("world_size", "truncation", "fuse"),
    [(2, "auto", False), (2, "dealer", True), (3, "auto", False), (3, "auto", True)],
)
def test_circuit_chebyshev_depth_and_truncation_modes(world_size, truncation, fuse):
    """A degree-d Chebyshev sum takes ceil(log2 d) levels; every truncation mode agrees."""
    t = _enc(np.linspace(-1, 1, 513))
    coeffs = chebyshev_fit(np.exp, -1.0, 1.0, 13)

    def job(session):
        circ = Circuit(16, fuse=fuse)
        node = chebyshev(circ, circ.input(cl.cryptensor(t, src=0).share, 16), coeffs)
        session.stats.reset()
        (out,) = circ.run(session, [node])
        return circ.level(node), session.stats.rounds, out

    results = run_parties(job, world_size, config=SessionConfig(truncation=truncation))
    level, rounds, _ = results[0]
    out = np.sum([r[2] for r in results], axis=0, dtype=np.uint64)  # reveal: add the shares
    assert level == 4
    local = world_size == 2 and truncation == "auto"
    assert rounds == (
        4 if local else 5 if fuse else 8
    )  # unfused: no truncation round before level 1
    got = out.view(np.int64) * UNIT
    assert np.max(np.abs(got - np.exp(t))) <= 1e-3


def test_approx_config_validation():
    ApproxConfig()
    bad = [
        ({"exp_range": (4.0, -8.0)}, ValueError, "exp_range"),
        ({"exp_range": (1.0,)}, TypeError, "exp_range"),
        ({"reciprocal_range": (0.0, 100.0)}, ValueError, "reciprocal_range"),
        ({"scale_range": (1.0, float("inf"))}, ValueError, "scale_range"),
        ({"exp_degree": 0}, ValueError, "exp_degree"),
        ({"tanh_degree": 2.5}, TypeError, "tanh_degree"),
        ({"exp_squarings": True}, TypeError, "exp_squarings"),
        ({"reciprocal_iterations": 9}, ValueError, "reciprocal_iterations"),
        ({"sigmoid_range": -1.0}, ValueError, "sigmoid_range"),
        ({"softmax_shift": float("nan")}, ValueError, "softmax_shift"),
        ({"saturate": 1}, TypeError, "saturate"),
    ]
    for kwargs, error, name in bad:
        with pytest.raises(error, match=name):
            ApproxConfig(**kwargs)


def test_party_failure_names_the_function_on_every_rank():
    def job(session):
        return cl.cryptensor(np.array([200.0]), src=0).reciprocal()

    with pytest.raises(PartyFailure, match="reciprocal: an input lies outside"):
        run_parties(job, 3, config=SessionConfig(debug_range_check=True))
