"""Golden tests of DeepLift, LayerIntegratedGradients and LayerConductance against Captum
0.9 (torch float64 mirrors of the models). Skipped without torch/captum
(``PYTHONPATH=/tmp/torchsite``).

numpy (DeepLift at Captum's eps 1e-10) equals Captum to 1e-6 (measured <= 6e-9, from
Captum's float32 Gauss-Legendre weights; 1e-16 for DeepLift and the Riemann rules).
Encrypted DeepLift (2 parties, eps=1e-2, random baseline, Linear-Tanh-Linear) against
Captum: Pearson r >= 0.99 per example (measured >= 0.9999), max |diff| printed (MEASURE)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.explain import DeepLift, LayerConductance, LayerIntegratedGradients
from crypten_lite.runtime.testing import run_parties
from crypten_lite.session import Session
from tests.explain.models import cnn, cnn_inputs, mlp, mlp_inputs

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

from tests.explain.test_captum_golden import _torch_mirror  # noqa: E402

CASES = {"mlp": (mlp, mlp_inputs, [0, 2, 1]), "cnn": (cnn, cnn_inputs, [2, 0])}


def _case(name: str) -> tuple[Any, Any, np.ndarray, np.ndarray, list[int]]:
    make, inputs, target = CASES[name]
    m = make()
    x = inputs()
    b = np.random.default_rng(4).uniform(-1.0, 1.0, x.shape) * 0.5
    return m, _torch_mirror(m).double(), x, b, target


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_deeplift(name: str) -> None:
    m, tm, x, b, target = _case(name)
    if name == "cnn":
        b = np.full_like(x, 0.1)  # constant baseline: max pooling takes no special rule
    ours, delta = DeepLift(m, eps=1e-10).attribute(
        x, baselines=b, target=target, return_convergence_delta=True
    )
    theirs, tdelta = captum_attr.DeepLift(tm).attribute(
        torch.from_numpy(x), baselines=torch.from_numpy(b), target=target,
        return_convergence_delta=True,
    )
    np.testing.assert_allclose(ours, theirs.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(delta, tdelta.detach().numpy(), atol=1e-6)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
@pytest.mark.parametrize("kind", ["ig", "cond"])
def test_layer_methods(name: str, layer: int, method: str, kind: str) -> None:
    m, tm, x, b, target = _case(name)
    ours_cls = LayerIntegratedGradients if kind == "ig" else LayerConductance
    theirs_cls = (
        captum_attr.LayerIntegratedGradients if kind == "ig" else captum_attr.LayerConductance
    )
    ours, delta = ours_cls(m, m[layer]).attribute(
        x, baselines=b, target=target, n_steps=8, method=method, return_convergence_delta=True
    )
    theirs, tdelta = theirs_cls(tm, tm[layer]).attribute(
        torch.from_numpy(x), baselines=torch.from_numpy(b), target=target, n_steps=8,
        method=method, return_convergence_delta=True,
    )
    np.testing.assert_allclose(ours, theirs.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(delta, tdelta.detach().numpy(), atol=1e-6)


def _job(session: Session) -> Any:
    m = mlp().encrypt(src=0)
    x = cl.cryptensor(mlp_inputs() if session.rank == 1 else None, src=1)
    b = np.random.default_rng(4).uniform(-1.0, 1.0, (3, 6)) * 0.5
    return DeepLift(m, eps=1e-2).attribute(x, baselines=b, target=[0, 2, 1], dst=1)


def test_encrypted_deeplift_against_captum() -> None:
    _, tm, x, b, target = _case("mlp")
    got = run_parties(_job, 2)[1]
    theirs = captum_attr.DeepLift(tm).attribute(
        torch.from_numpy(x), baselines=torch.from_numpy(b), target=target
    ).detach().numpy()
    print(f"MEASURE encrypted DeepLift vs Captum max {np.max(np.abs(got - theirs)):.2e}")
    for i in range(3):
        assert np.corrcoef(got[i], theirs[i])[0, 1] >= 0.99
