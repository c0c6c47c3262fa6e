"""LayerIntegratedGradients and LayerConductance: numpy against float64 references,
completeness, encrypted (2 and 3 parties) against numpy, rounds independent of n_steps,
errors before any communication.

Encrypted: model ``encrypt(src=0)``, input ``cryptensor(x, src=1)``, revealed to party 1,
Linear-Tanh-Linear, layer ``"1"`` (the Tanh), 8 steps. Measured max |encrypted - numpy|
(the tests use tol 1e-3), attributions / convergence delta, n_steps 4 and 8:

==========================  ===============  ===============  ==========  ==========
method                      2 parties        3 parties        rounds 2p   rounds 3p
==========================  ===============  ===============  ==========  ==========
LayerIG, layer "1" (Tanh)   1.0e-4 / 4.6e-5  1.2e-4 / 3.1e-5  12          27
LayerIG, layer "0" (Linear) 5.3e-5 / 1.7e-4  2.4e-5 / 2.9e-4  19          42
LayerConductance, "0"       3.9e-5 / 1.7e-4  5.3e-5 / 1.4e-4  12          26
LayerIG, public model       1.0e-4           7.5e-5
==========================  ===============  ===============  ==========  ==========

Rounds (with the delta and ``dst=1``) are the same at n_steps 4 and 8.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.explain import (
    LayerConductance,
    LayerIntegratedGradients,
    approximation_parameters,
)
from crypten_lite.runtime.testing import run_parties
from crypten_lite.session import Session
from tests.explain.models import cnn, cnn_inputs, mlp, mlp_inputs

TARGET = [0, 2, 1]
X = mlp_inputs()
B = np.random.default_rng(1).uniform(-1.0, 1.0, X.shape)


def _weights() -> tuple[np.ndarray, ...]:
    m = mlp()
    return tuple(np.asarray(a) for a in (m[0].weight, m[0].bias, m[2].weight))


def ref_layer_ig_tanh(n_steps: int, method: str) -> np.ndarray:
    """LayerIG on the Tanh's output: the rest of the model is linear, so the gradient is
    the constant ``w2[target]``; attr = (tanh(v_x) - tanh(v_b)) * w2[target] * sum(w)."""
    w1, c1, w2 = _weights()
    steps, _ = approximation_parameters(method, n_steps)
    dy = np.tanh(X @ w1.T + c1) - np.tanh(B @ w1.T + c1)
    return np.asarray(dy * w2[TARGET] * steps.sum())


def ref_layer_ig_linear(n_steps: int, method: str) -> np.ndarray:
    """LayerIG on the first Linear's output ``v``: IG of ``w2 tanh(v)`` along v_b -> v_x."""
    w1, c1, w2 = _weights()
    steps, alphas = approximation_parameters(method, n_steps)
    vx, vb = X @ w1.T + c1, B @ w1.T + c1
    total = sum(w * (1 - np.tanh(vb + a * (vx - vb)) ** 2) for w, a in zip(steps, alphas))
    return np.asarray((vx - vb) * w2[TARGET] * total)


def ref_conductance_linear(n_steps: int, method: str) -> np.ndarray:
    w1, c1, w2 = _weights()
    _, alphas = approximation_parameters(method, n_steps + 1)
    evals = [(B + a * (X - B)) @ w1.T + c1 for a in alphas]
    out = np.zeros_like(evals[0])
    for k in range(n_steps):
        out += (evals[k + 1] - evals[k]) * w2[TARGET] * (1 - np.tanh(evals[k]) ** 2)
    return out


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
def test_numpy_references(method: str) -> None:
    m = mlp()
    np.testing.assert_allclose(
        LayerIntegratedGradients(m, m[1]).attribute(
            X, baselines=B, target=TARGET, n_steps=8, method=method
        ),
        ref_layer_ig_tanh(8, method), atol=1e-12,
    )
    np.testing.assert_allclose(
        LayerIntegratedGradients(m, "0").attribute(
            X, baselines=B, target=TARGET, n_steps=8, method=method
        ),
        ref_layer_ig_linear(8, method), atol=1e-12,
    )
    np.testing.assert_allclose(
        LayerConductance(m, m[0]).attribute(
            X, baselines=B, target=TARGET, n_steps=8, method=method
        ),
        ref_conductance_linear(8, method), atol=1e-12,
    )


@pytest.mark.parametrize(("layer", "tol"), [("0", 1e-6), ("1", 1e-12), ("2", 1e-12)])
def test_layer_ig_completeness(layer: str, tol: float) -> None:
    m = mlp()
    attr, delta = LayerIntegratedGradients(m, layer).attribute(
        X, baselines=B, target=TARGET, n_steps=16, return_convergence_delta=True
    )
    rows = np.arange(3)
    diff = np.asarray(m(X))[rows, TARGET] - np.asarray(m(B))[rows, TARGET]
    np.testing.assert_allclose(attr.reshape(3, -1).sum(1), diff, atol=tol)
    np.testing.assert_allclose(delta, attr.reshape(3, -1).sum(1) - diff, atol=1e-12)


def test_cnn_layers_and_restore() -> None:
    m = cnn()
    children = list(m.children())
    x = cnn_inputs()
    for layer in ("0", "1", "2", "3"):
        _, delta = LayerIntegratedGradients(m, layer).attribute(
            x, target=[2, 0], n_steps=32, return_convergence_delta=True
        )
        assert np.max(np.abs(delta)) < 0.05
        LayerConductance(m, layer).attribute(x, target=[2, 0], n_steps=4)
    assert list(m.children()) == children


def test_multiply_by_inputs_false() -> None:
    m = mlp()
    full = LayerIntegratedGradients(m, "1").attribute(X, baselines=B, target=TARGET, n_steps=4)
    grads = LayerIntegratedGradients(m, "1", multiply_by_inputs=False).attribute(
        X, baselines=B, target=TARGET, n_steps=4
    )
    w1, c1, _ = _weights()
    dy = np.tanh(X @ w1.T + c1) - np.tanh(B @ w1.T + c1)
    np.testing.assert_allclose(full, grads * dy, atol=1e-14)


def test_errors() -> None:
    m = mlp()
    with pytest.raises(ValueError, match=r"no layer named 'nope'.*\['0', '1', '2'\]"):
        LayerIntegratedGradients(m, "nope")
    with pytest.raises(ValueError, match="not a sub-module"):
        LayerConductance(m, mlp()[0])
    with pytest.raises(TypeError, match=r"nn\.Module"):
        LayerConductance(lambda v: v, "0")
    for cls in (LayerIntegratedGradients, LayerConductance):
        with pytest.raises(ValueError, match="n_steps must be at least 1"):
            cls(m, "1").attribute(X, target=0, n_steps=0)
        with pytest.raises(ValueError, match="baselines of shape"):
            cls(m, "1").attribute(X, baselines=np.zeros((4, 6)), target=0)


# -- encrypted -----------------------------------------------------------------------------
def _rounds(session: Session, fn: Any) -> tuple[Any, int]:
    before = session.stats.rounds
    out = fn()
    return out, session.stats.rounds - before


def _job(session: Session) -> dict[str, Any]:
    m = mlp().encrypt(src=0)
    x = cl.cryptensor(X if session.rank == 1 else None, src=1)
    out: dict[str, Any] = {}
    for steps in (4, 8):
        for name, cls, layer in (
            ("lig1", LayerIntegratedGradients, "1"),
            ("lig0", LayerIntegratedGradients, m[0]),
            ("cond", LayerConductance, "0"),
        ):
            res, out[f"rounds_{name}_{steps}"] = _rounds(
                session,
                lambda c=cls, la=layer, s=steps: c(m, la).attribute(
                    x, baselines=B, target=TARGET, n_steps=s, return_convergence_delta=True,
                    dst=1,
                ),
            )
            out[f"{name}_{steps}"], out[f"{name}_{steps}_delta"] = res
    out["pub_model"] = LayerIntegratedGradients(mlp(), "1").attribute(
        x, baselines=B, target=TARGET, n_steps=8, dst=1
    )
    return out


@functools.cache
def results(world: int) -> list[dict[str, Any]]:
    return run_parties(_job, world)


def _numpy(key: str) -> np.ndarray:
    m = mlp()
    name, steps = key.split("_")[:2] if not key.startswith("pub") else ("lig1", "8")
    cls = LayerConductance if name == "cond" else LayerIntegratedGradients
    layer = {"lig1": "1", "lig0": "0", "cond": "0"}[name]
    out = cls(m, layer).attribute(
        X, baselines=B, target=TARGET, n_steps=int(steps), return_convergence_delta=True
    )
    return np.asarray(out[1] if key.endswith("delta") else out[0])


KEYS = [f"{n}_{s}{d}" for n in ("lig1", "lig0", "cond") for s in (4, 8) for d in ("", "_delta")]


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("key", [*KEYS, "pub_model"])
def test_encrypted_matches_numpy(world: int, key: str) -> None:
    got = results(world)[1][key]
    ref = _numpy(key)
    print(f"MEASURE {world} {key} {np.max(np.abs(got - ref)):.2e}")
    np.testing.assert_allclose(got, ref, atol=1e-3)
    assert results(world)[0][key] is None


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("name", ["lig1", "lig0", "cond"])
def test_rounds_independent_of_n_steps(world: int, name: str) -> None:
    out = results(world)[0]
    print(f"MEASURE {world} rounds {name} {out[f'rounds_{name}_4']}")
    assert out[f"rounds_{name}_4"] == out[f"rounds_{name}_8"]
