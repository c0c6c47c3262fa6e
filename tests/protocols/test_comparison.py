"""ltz / eqz / mul_ltz / relu: correctness over dense grids and edges, exact costs.

Small |x| put ``c = x + r`` right next to the dealer mask ``r``, so the comparison network
runs at its threshold (long equal prefixes, single-bit differences); values around
+-2^62 and +-2^63 exercise the sign-bit logic.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypten_lite.encoding import FixedPointEncoder
from crypten_lite.errors import RingShapeError
from crypten_lite.protocols import comparison
from crypten_lite.runtime.testing import PartyFailure, run_parties
from crypten_lite.sharing import reveal, share_from

PROVIDERS = ["TrustedDealer", "InsecureLocalDealer"]
WORLD_SIZES = [2, 3]


def _grid(seed: int, n_random: int = 1500) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = np.arange(64, dtype=np.uint64)
    powers = np.uint64(1) << k
    edges = np.array([0, 1, 2, 2**62 - 1, 2**62, 2**62 + 1, 2**63 - 2, 2**63 - 1], dtype=np.uint64)
    special = np.concatenate(
        [edges, -edges, powers, powers - np.uint64(1), -powers, -powers + np.uint64(1)]
    )
    dense = np.arange(-1500, 1500).astype(np.int64).view(np.uint64)
    fixed = FixedPointEncoder(precision=16).encode(np.arange(-300, 301) / 7.0)
    small = rng.integers(-(2**40), 2**40, n_random).astype(np.int64).view(np.uint64)
    full = rng.integers(0, 2**64, n_random, dtype=np.uint64, endpoint=False)
    return np.concatenate([special, dense, fixed, small, full])


def _share(session, value):
    mine = value if session.rank == 0 else None
    return share_from(session.comm, session.zeros, mine, 0, value.shape)


def _expected(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    neg = x.view(np.int64) < 0
    return {
        "ltz": neg.astype(np.uint64),
        "eqz": (x == 0).astype(np.uint64),
        "mul_ltz": np.where(neg, y, np.uint64(0)),
        "relu": np.where(neg, np.uint64(0), x),
        "relu_bit": (~neg).astype(np.uint64),
        "select": np.where(neg, y, np.uint64(0)),
        "select_bit": neg.astype(np.uint64),
    }


def _run_all(session, x, y):
    sx, sy = _share(session, x), _share(session, y)
    out = {
        "ltz": comparison.ltz(session, sx),
        "eqz": comparison.eqz(session, sx),
        "mul_ltz": comparison.mul_ltz(session, sx, sy),
        "relu": comparison.relu(session, sx),
        "relu_bit": comparison.relu_bit(session, sx),
    }
    out["select"], out["select_bit"] = comparison.select_ltz(session, sx, sy)
    return {k: reveal(session.comm, v) for k, v in out.items()}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_comparisons_match_numpy(world_size, provider):
    x = _grid(world_size)
    y = np.random.default_rng(5).integers(0, 2**64, x.size, dtype=np.uint64, endpoint=False)
    want = _expected(x, y)
    for result in run_parties(lambda s: _run_all(s, x, y), world_size, provider=provider):
        for name, value in want.items():
            np.testing.assert_array_equal(result[name], value, err_msg=name)


def test_four_parties_and_multidimensional_shapes():
    x = _grid(4, 200)[:2400].reshape(4, 20, 30)
    y = x[::-1].copy()
    want = _expected(x, y)
    for result in run_parties(lambda s: _run_all(s, x, y), 4):
        for name, value in want.items():
            assert result[name].shape == x.shape
            np.testing.assert_array_equal(result[name], value, err_msg=name)


def test_relu_on_fixed_point_values():
    encoder = FixedPointEncoder(precision=16)
    values = np.linspace(-5.0, 5.0, 1001)

    def job(session):
        return reveal(
            session.comm, comparison.relu(session, _share(session, encoder.encode(values)))
        )

    for revealed in run_parties(job, 3):
        np.testing.assert_array_equal(
            encoder.decode(revealed), np.maximum(encoder.decode(encoder.encode(values)), 0)
        )


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_comparison_costs(world_size, provider):
    n = 1001
    x = _grid(9)[:n]

    def job(session):
        sx = _share(session, x)
        costs = {}
        for name, fn in [
            ("ltz", comparison.ltz),
            ("eqz", comparison.eqz),
            ("mul_ltz", lambda s, v: comparison.mul_ltz(s, v, v)),
            ("relu", comparison.relu),
            ("select", lambda s, v: comparison.select_ltz(s, v, v)),
        ]:
            session.stats.reset()
            fn(session, sx)
            costs[name] = session.stats.snapshot()
        return costs

    peers = world_size - 1
    want_bytes = {
        "ltz": peers * (8 * n + 4 * n + -(-7 * n // 8)),
        "eqz": peers * (8 * n + 2 * n + -(-n // 2)),
        "mul_ltz": peers * (16 * n + 4 * n + -(-7 * n // 8)),
        "relu": peers * (16 * n + 4 * n + -(-7 * n // 8)),
        "select": peers * (16 * n + 4 * n + -(-7 * n // 8) + -(-n // 8)),
    }
    results = run_parties(job, world_size, provider=provider)
    for costs in results:
        rounds = {k: v.rounds for k, v in costs.items()}
        assert rounds == {**dict.fromkeys(want_bytes, 3), "select": 4}
    for rank in range(world_size - 1):  # party N-1 also sends its dealer requests
        assert {k: v.bytes_sent for k, v in results[rank].items()} == want_bytes
    if provider == "InsecureLocalDealer":
        assert {k: v.bytes_sent for k, v in results[-1].items()} == want_bytes


def test_empty_inputs_and_bad_arguments():
    def job(session):
        empty = np.zeros((2, 0), dtype=np.uint64)
        shapes = [
            comparison.ltz(session, empty).shape,
            comparison.eqz(session, empty).shape,
            comparison.relu(session, empty).shape,
            comparison.select_ltz(session, empty, empty)[1].shape,
        ]
        with pytest.raises(RingShapeError, match="one shape"):
            comparison.mul_ltz(session, np.zeros(3, np.uint64), np.zeros(4, np.uint64))
        with pytest.raises(RingShapeError, match="one shape"):
            comparison.select_ltz(session, np.zeros(3, np.uint64), np.zeros(4, np.uint64))
        return shapes, session.stats.rounds

    assert run_parties(job, 2) == [([(2, 0)] * 4, 0)] * 2
    with pytest.raises(PartyFailure, match="RingDTypeError"):
        run_parties(lambda s: comparison.ltz(s, np.zeros(3)), 2)


_SIGNED = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-70000, 70000),
    st.sampled_from([-(2**63), 2**63 - 1, -(2**62), 2**62 - 1, 0, -1, 1]),
)


@settings(max_examples=15, deadline=None)
@given(st.lists(_SIGNED, min_size=1, max_size=64))
def test_ltz_and_eqz_property(values):
    x = np.array(values, dtype=np.int64).view(np.uint64)

    def job(session):
        sx = _share(session, x)
        return [reveal(session.comm, f(session, sx)) for f in (comparison.ltz, comparison.eqz)]

    ltz, eqz = run_parties(job, 2, provider="InsecureLocalDealer")[0]
    np.testing.assert_array_equal(ltz, (x.view(np.int64) < 0).astype(np.uint64))
    np.testing.assert_array_equal(eqz, (x == 0).astype(np.uint64))


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_ltz_in_four_rounds_with_a_binary_last_gate(world_size):
    """SessionConfig(comparison_rounds=4): the same bits over the whole grid, 4 rounds, one
    1-bit opening more, 8 dealer words per element instead of 30."""
    from crypten_lite.config import SessionConfig
    from crypten_lite.providers.engine import layout_of

    x = _grid(11)
    n = 1001

    def job(session):
        bits = reveal(session.comm, comparison.ltz(session, _share(session, x)))
        sx = _share(session, x[:n])
        session.stats.reset()
        comparison.ltz(session, sx)
        return bits, session.stats.snapshot()

    results = run_parties(job, world_size, config=SessionConfig(comparison_rounds=4))
    for bits, cost in results:
        np.testing.assert_array_equal(bits, _expected(x, x)["ltz"])
        assert cost.rounds == 4
    peers = world_size - 1
    assert results[0][1].bytes_sent == peers * (12 * n + -(-7 * n // 8) + -(-n // 8))
    _, derived = layout_of("monomials", ((n,), *comparison._params_tail("ltz4")))
    assert sum(int(np.prod(c.shape)) for c in derived) == 8 * n
    with pytest.raises(ValueError, match="comparison_rounds must be 3 or 4"):
        SessionConfig(comparison_rounds=5)  # type: ignore[arg-type]
