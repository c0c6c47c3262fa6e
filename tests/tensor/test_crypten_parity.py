"""Silent differences from CrypTen/torch that used to return wrong answers: ``==``/``!=``
on shared tensors, ``size()``/``size(dim)``, ``bool()``, and ``encrypt`` on parties whose
models differ (2 and 3 parties)."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.runtime.testing import PartyFailure, run_parties

A = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
B = np.array([[1.0, 0.0, 3.0], [4.0, 5.0, 0.0]])


@pytest.mark.parametrize("world", [2, 3])
def test_equality_operators_return_shared_results(world):
    def job(session):
        with session.activate():
            x, y = cl.cryptensor(A, src=0), cl.cryptensor(B, src=1)
            eq, ne = x == y, x != y
            assert isinstance(eq, cl.MPCTensor) and isinstance(ne, cl.MPCTensor)
            return eq.get_plain_text(), ne.get_plain_text(), (x == 2.0).get_plain_text()

    eq, ne, eq_public = run_parties(job, world)[0]
    np.testing.assert_array_equal(eq, (A == B).astype(float))
    np.testing.assert_array_equal(ne, (A != B).astype(float))
    np.testing.assert_array_equal(eq_public, (A == 2.0).astype(float))


def test_shared_tensors_stay_hashable_by_identity():
    def job(session):
        with session.activate():
            x, y = cl.cryptensor(A, src=0), cl.cryptensor(A, src=0)
            table = {x: "x", y: "y"}
            return table[x], table[y], len({x, y})

    assert run_parties(job, 2)[0] == ("x", "y", 2)


def test_size_follows_torch_and_numpy():
    def job(session):
        with session.activate():
            x = cl.cryptensor(A, src=0, names=("N", "C"))
            v = cl.Variable(x)
            return (x.size, x.size(), x.size(0), x.size(-1), x.size("C"), x.numel(), x.dim(),
                    v.size(), v.size(1), int(v.size))

    assert run_parties(job, 2)[0] == (6, (2, 3), 2, 3, 3, 6, 2, (2, 3), 3, 6)


def test_size_of_a_missing_dim_is_a_clear_error():
    def job(session):
        with session.activate():
            cl.cryptensor(A, src=0).size(2)

    with pytest.raises(PartyFailure, match=r"out of range|Dimension"):
        run_parties(job, 2, timeout_s=10)


def test_truth_value_of_a_secret_says_why():
    def job(session):
        with session.activate():
            x = cl.cryptensor(A, src=0)
            with pytest.raises(TypeError, match="secret"):
                bool(x == x)
            with pytest.raises(TypeError, match="secret"):
                bool(cl.Variable(x))
            return True

    assert all(run_parties(job, 2))


def _mlp(hidden: int) -> cl.nn.Module:
    return cl.nn.Sequential(cl.nn.Linear(4, hidden), cl.nn.ReLU(), cl.nn.Linear(hidden, 2))


@pytest.mark.parametrize("world", [2, 3])
def test_encrypt_refuses_parties_with_different_models(world):
    def job(session):
        with session.activate():
            model = _mlp(5 if session.rank == world - 1 else 3)
            model.encrypt(src=0)

    with pytest.raises(PartyFailure) as info:
        run_parties(job, world, timeout_s=30)
    texts = [info.value.failures.get(rank, "") for rank in range(world)]
    assert all("'0.weight' has shape (3, 4) at party 0 but (5, 4)" in t for t in texts)


def test_encrypt_names_a_missing_parameter():
    def job(session):
        with session.activate():
            layers = [cl.nn.Linear(4, 3), cl.nn.ReLU()]
            if session.rank == 0:
                layers.append(cl.nn.Linear(3, 2))
            cl.nn.Sequential(*layers).encrypt(src=0)

    with pytest.raises(PartyFailure, match=r"party 1 has no parameter '2\.weight'"):
        run_parties(job, 2, timeout_s=30)


def test_encrypt_of_equal_models_costs_one_extra_round():
    def job(session):
        with session.activate():
            model = _mlp(3)
            before = session.stats.rounds
            model.encrypt(src=0)
            return session.stats.rounds - before

    assert run_parties(job, 2)[0] == 1 + 4  # the layout check + one announcement per tensor
