"""Who holds what: the three ways parties bring training data (one party holds features and
labels, features split by columns, rows split among parties), each trained privately for a
few SGD steps against the same steps in float64; the trained weights stay shared until
``decrypt(dst=)`` reveals them to one party (2 and 3 parties)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.runtime.testing import run_parties

RNG = np.random.default_rng(3)
X = RNG.normal(size=(36, 6))
Y = (X @ RNG.normal(size=(6, 1)) > 0).astype(np.float64)
STEPS, LR = 5, 0.5


def _model() -> cl.nn.Module:
    return cl.nn.Linear(6, 1, rng=np.random.default_rng(9))


def _train(model: cl.nn.Module, x, y) -> None:
    opt = cl.optim.SGD(model.parameters(), lr=LR)
    for _ in range(STEPS):
        opt.zero_grad()
        cl.nn.BCELoss()(model(x).sigmoid(), y).backward()
        opt.step()


def _reference() -> list[np.ndarray]:
    model = _model().requires_grad_()
    _train(model, X, Y)
    return [np.asarray(p.data) for p in model.parameters()]


def _split(n: int, parts: int) -> list[slice]:
    bounds = np.linspace(0, n, parts + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def _inputs(session, layout: str):
    world, rank = session.world_size, session.rank
    if layout == "one_party":  # party 1 holds features and labels, party 0 the model
        return cl.cryptensor(X if rank == 1 else None, src=1), cl.cryptensor(
            Y if rank == 1 else None, src=1
        )
    if layout == "vertical":  # columns split among parties, labels at the last party
        cols = _split(X.shape[1], world)
        parts = [cl.cryptensor(X[:, c] if rank == r else None, src=r) for r, c in enumerate(cols)]
        labels = cl.cryptensor(Y if rank == world - 1 else None, src=world - 1)
        return cl.cat(parts, dim=1), labels
    rows = _split(X.shape[0], world)  # horizontal: each party holds some rows and labels
    xs = [cl.cryptensor(X[r_] if rank == r else None, src=r) for r, r_ in enumerate(rows)]
    ys = [cl.cryptensor(Y[r_] if rank == r else None, src=r) for r, r_ in enumerate(rows)]
    return cl.cat(xs, dim=0), cl.cat(ys, dim=0)


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("layout", ["one_party", "vertical", "horizontal"])
def test_private_training_for_each_data_layout(layout, world):
    def job(session):
        with session.activate():
            model = _model()
            model.encrypt(src=0).requires_grad_()
            x, y = _inputs(session, layout)
            _train(model, x, y)
            still_shared = all(isinstance(p.data, cl.MPCTensor) for p in model.parameters())
            model.decrypt(dst=0)
            mine = [p.data for p in model.parameters()]
            return still_shared, model.encrypted, mine

    results = run_parties(job, world)
    reference = _reference()
    for rank, (still_shared, encrypted, params) in enumerate(results):
        assert still_shared  # trained weights stay secret-shared until decrypt
        if rank == 0:
            assert not encrypted
            for got, want in zip(params, reference, strict=True):
                np.testing.assert_allclose(got, want, atol=2e-3)
        else:  # the other parties keep only their shares
            assert encrypted
            assert all(isinstance(p, cl.MPCTensor) for p in params)


def test_decrypt_to_a_non_rank_is_refused():
    def job(session):
        with session.activate():
            model = _model().encrypt(src=0)
            with pytest.raises(ValueError, match="dst=5"):
                model.decrypt(dst=5)
            return True

    assert all(run_parties(job, 2))
