"""DeepLift (rescale rule): numpy against an independent float64 reference, completeness,
the effect of ``eps`` and of max pooling, encrypted (2 and 3 parties) against numpy, errors.

Encrypted: model ``encrypt(src=0)``, input ``cryptensor(x, src=1)``, random baseline in
[-1, 1], revealed to party 1. Measured max |encrypted - numpy at the same eps| (3 examples x
6 features; ``tol`` is what the tests use):

================================  ==========  ==========  ======
model, eps                        2 parties   3 parties   tol
================================  ==========  ==========  ======
Linear-Tanh-Linear, eps=1e-2      2.5e-4      2.1e-4      2e-3
Linear-Tanh-Linear, eps=1e-1      2.1e-4      1.1e-4      2e-3
Linear-ReLU-Linear, eps=1e-2      1.5e-4      1.5e-4      2e-3
Linear-Sigmoid-Linear, eps=1e-2   8.5e-5      5.9e-5      2e-3
public model, Tanh, eps=1e-2      1.8e-4      2.0e-4      2e-3
delta Tanh / ReLU / Sigmoid       1.5e-4/1.4e-4/6.1e-5  2.0e-4/1.2e-4/4.6e-5  5e-3
================================  ==========  ==========  ======

eps=1e-3 DIVERGES on this model (measured 3e9): the divisor is scaled by
``c = ceil(0.1 / eps) = 100`` into the reciprocal's range [0.1, 100], so ``|dx|`` must stay
below 1, and the hidden pre-activation differences here reach 2. Rounds per attribution
with the delta and dst (Tanh / ReLU / Sigmoid MLP): 29 / 26 / 28 with 2 parties, 52 / 41 / 50
with 3, the same for every eps. Completeness on numpy: |delta| < 1e-12 (ReLU, Tanh,
Sigmoid); max pooling keeps its gradient, so the CNN with a random baseline has
|delta| = 0.40 / 0.18 (Captum's maxpool rule would give 0).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite import nn
from crypten_lite.explain import DeepLift
from crypten_lite.runtime.testing import run_parties
from crypten_lite.session import Session
from tests.explain.models import N_CLASSES, N_HIDDEN, N_IN, cnn, cnn_inputs, mlp_inputs

TARGET = [0, 2, 1]
X = mlp_inputs()
B = np.random.default_rng(1).uniform(-1.0, 1.0, X.shape)
ACTS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
FUNCS = {
    "tanh": (np.tanh, lambda v: 1 - np.tanh(v) ** 2),
    "relu": (lambda v: np.maximum(v, 0.0), lambda v: (v > 0).astype(float)),
    "sigmoid": (
        lambda v: 1 / (1 + np.exp(-v)),
        lambda v: np.exp(-v) / (1 + np.exp(-v)) ** 2,
    ),
}


def model(kind: str, seed: int = 7) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Linear(N_IN, N_HIDDEN, rng=rng), ACTS[kind](), nn.Linear(N_HIDDEN, N_CLASSES, rng=rng)
    )


def reference(kind: str, x: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """Independent float64 DeepLift of Linear-act-Linear, written out by hand."""
    m = model(kind)
    w1, c1 = np.asarray(m[0].weight), np.asarray(m[0].bias)
    w2 = np.asarray(m[2].weight)
    f, df = FUNCS[kind]
    vx, vb = x @ w1.T + c1, b @ w1.T + c1
    dx, dy = vx - vb, f(vx) - f(vb)
    mult = np.where(np.abs(dx) < eps, df(vx), dy / np.where(np.abs(dx) < eps, 1.0, dx))
    grad = (w2[TARGET] * mult) @ w1
    return np.asarray((x - b) * grad)


@pytest.mark.parametrize("kind", ["tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("eps", [1e-10, 1e-2, 0.5])
def test_numpy_matches_reference(kind: str, eps: float) -> None:
    got = DeepLift(model(kind), eps=eps).attribute(X, baselines=B, target=TARGET)
    np.testing.assert_allclose(got, reference(kind, X, B, eps), atol=1e-12)


@pytest.mark.parametrize("kind", ["tanh", "relu", "sigmoid"])
def test_completeness(kind: str) -> None:
    m = model(kind)
    attr, delta = DeepLift(m).attribute(
        X, baselines=B, target=TARGET, return_convergence_delta=True
    )
    rows = np.arange(3)
    diff = np.asarray(m(X))[rows, TARGET] - np.asarray(m(B))[rows, TARGET]
    np.testing.assert_allclose(attr.reshape(3, -1).sum(1), diff, atol=1e-12)
    np.testing.assert_allclose(delta, 0.0, atol=1e-12)


def test_eps_large_breaks_completeness_only_where_small() -> None:
    """With eps above every |dx| the rule falls back to the gradient (= InputXGradient of
    the difference), and completeness no longer holds (measured 0.1..0.3)."""
    _, delta = DeepLift(model("tanh"), eps=100.0).attribute(
        X, baselines=B, target=TARGET, return_convergence_delta=True
    )
    print(f"MEASURE eps=100 delta {np.max(np.abs(delta)):.2e}")
    assert np.max(np.abs(delta)) > 1e-3


def test_maxpool_keeps_gradient_completeness_effect() -> None:
    """MaxPool2d keeps its gradient: with a random baseline whose maxima sit elsewhere,
    completeness holds only approximately (measured max |delta| printed)."""
    x = cnn_inputs()
    b = np.random.default_rng(3).uniform(-1.0, 1.0, x.shape)
    _, delta = DeepLift(cnn()).attribute(
        x, baselines=b, target=[2, 0], return_convergence_delta=True
    )
    print(f"MEASURE cnn maxpool delta {np.abs(delta)}")
    assert np.all(np.isfinite(delta))


def test_model_restored_and_multiply_by_inputs() -> None:
    m = model("relu")
    children = list(m.children())
    grads = DeepLift(m, multiply_by_inputs=False).attribute(X, baselines=B, target=TARGET)
    assert list(m.children()) == children
    full = DeepLift(m).attribute(X, baselines=B, target=TARGET)
    np.testing.assert_allclose(full, grads * (X - B), atol=1e-14)


# -- errors, before any communication --------------------------------------------------------
def test_errors() -> None:
    with pytest.raises(TypeError, match=r"nn\.Module"):
        DeepLift(lambda v: v)
    with pytest.raises(ValueError, match="eps"):
        DeepLift(model("tanh"), eps=0.0)
    dl = DeepLift(model("tanh"))
    with pytest.raises(ValueError, match="baselines of shape"):
        dl.attribute(X, baselines=np.zeros((2, 5)), target=TARGET)
    with pytest.raises(ValueError, match="out of range"):
        dl.attribute(X, target=7)
    with pytest.raises(TypeError, match="return_convergence_delta"):
        dl.attribute(X, target=0, return_convergence_delta=1)


# -- encrypted -----------------------------------------------------------------------------
def _job(session: Session) -> dict[str, Any]:
    x = cl.cryptensor(X if session.rank == 1 else None, src=1)
    out: dict[str, Any] = {}
    for kind in ("tanh", "relu", "sigmoid"):
        m = model(kind).encrypt(src=0)
        before = session.stats.rounds
        out[f"{kind}_1e-2"], out[f"{kind}_delta"] = DeepLift(m, eps=1e-2).attribute(
            x, baselines=B, target=TARGET, return_convergence_delta=True, dst=1
        )
        out[f"rounds_{kind}"] = session.stats.rounds - before
    out["tanh_1e-1"] = DeepLift(model("tanh").encrypt(src=0), eps=0.1).attribute(
        x, baselines=B, target=TARGET, dst=1
    )
    # public model, private input
    out["pub_tanh_1e-2"] = DeepLift(model("tanh"), eps=1e-2).attribute(
        x, baselines=B, target=TARGET, dst=1
    )
    return out


@functools.cache
def results(world: int) -> list[dict[str, Any]]:
    return run_parties(_job, world)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize(
    "key", ["tanh_1e-2", "relu_1e-2", "sigmoid_1e-2", "tanh_1e-1", "pub_tanh_1e-2"]
)
def test_encrypted_matches_numpy(world: int, key: str) -> None:
    kind, eps = key.removeprefix("pub_").split("_")
    ref = DeepLift(model(kind), eps=float(eps)).attribute(X, baselines=B, target=TARGET)
    got = results(world)[1][key]
    print(f"MEASURE {world} {key} {np.max(np.abs(got - ref)):.2e}")
    np.testing.assert_allclose(got, ref, atol=2e-3)
    for i in range(3):
        assert _pearson(got[i], ref[i]) >= 0.99
    assert results(world)[0][key] is None


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("kind", ["tanh", "relu", "sigmoid"])
def test_encrypted_delta(world: int, kind: str) -> None:
    got = results(world)[1][f"{kind}_delta"]
    print(f"MEASURE {world} {kind} delta {np.max(np.abs(got)):.2e} "
          f"rounds {results(world)[0][f'rounds_{kind}']}")
    np.testing.assert_allclose(got, 0.0, atol=5e-3)
