"""Golden tests against Captum 0.9 (torch float64 mirrors of the crypten_lite models, same
weights). Skipped without torch/captum (``PYTHONPATH=/tmp/torchsite``).

numpy attributions equal Captum's to 1e-6 (Captum's float32 step sizes and
alphas are the largest source of difference). Encrypted (2 parties, model shared by
party 0, input by party 1, revealed to party 1) against Captum, CNN 1x8x8:

======================================  ===============  ===============
method                                  min Pearson r    max |diff|
======================================  ===============  ===============
Saliency (abs)                          1.00000          1.6e-5
InputXGradient                          1.00000          2.2e-5
IG gausslegendre, 16 steps              1.00000          3.5e-4
IG riemann_trapezoid, 16 steps          1.00000          2.2e-5
======================================  ===============  ===============
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.explain import InputXGradient, IntegratedGradients, NoiseTunnel, Saliency
from crypten_lite.runtime.testing import run_parties
from crypten_lite.session import Session
from tests.explain.models import cnn, cnn_inputs, mlp, mlp_inputs

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

TARGETS = {"mlp": [0, 2, 1], "cnn": [2, 0]}


def _torch_mirror(model: Any) -> Any:
    layers = []
    for layer in model.children():
        kind = type(layer).__name__
        if kind == "Linear":
            t = torch.nn.Linear(layer.in_features, layer.out_features)
        elif kind == "Conv2d":
            t = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size)
        elif kind == "Tanh":
            t = torch.nn.Tanh()
        elif kind == "ReLU":
            t = torch.nn.ReLU()
        elif kind == "MaxPool2d":
            t = torch.nn.MaxPool2d(2)
        elif kind == "Flatten":
            t = torch.nn.Flatten()
        else:  # pragma: no cover
            raise AssertionError(kind)
        if kind in ("Linear", "Conv2d"):
            with torch.no_grad():
                t.weight.copy_(torch.from_numpy(np.asarray(layer.weight)))
                t.bias.copy_(torch.from_numpy(np.asarray(layer.bias)))
        layers.append(t)
    return torch.nn.Sequential(*layers).double().eval()


def _cases(name: str) -> tuple[Any, np.ndarray]:
    return (mlp(), mlp_inputs()) if name == "mlp" else (cnn(), cnn_inputs())


def _captum(name: str, method: str) -> Any:
    model, x = _cases(name)
    net, tx = _torch_mirror(model), torch.from_numpy(x).requires_grad_()
    target = TARGETS[name]
    if method == "sal":
        return captum_attr.Saliency(net).attribute(tx, target=target).detach().numpy()
    if method == "ixg":
        return captum_attr.InputXGradient(net).attribute(tx, target=target).detach().numpy()
    if method == "nt0":
        nt = captum_attr.NoiseTunnel(captum_attr.IntegratedGradients(net))
        out = nt.attribute(tx, nt_type="smoothgrad", nt_samples=3, stdevs=0.0, target=target,
                           n_steps=16)
        return out.detach().numpy()
    rule = "gausslegendre" if method == "ig_gl" else "riemann_trapezoid"
    attr, delta = captum_attr.IntegratedGradients(net).attribute(
        tx, target=target, n_steps=16, method=rule, return_convergence_delta=True
    )
    return attr.detach().numpy(), delta.detach().numpy()


def _ours(model: Any, x: Any, name: str, method: str, dst: int | None = None) -> Any:
    target = TARGETS[name]
    if method == "sal":
        return Saliency(model).attribute(x, target=target, dst=dst)
    if method == "ixg":
        return InputXGradient(model).attribute(x, target=target, dst=dst)
    if method == "nt0":
        return NoiseTunnel(IntegratedGradients(model)).attribute(
            x, nt_samples=3, stdevs=0.0, target=target, n_steps=16, dst=dst
        )
    rule = "gausslegendre" if method == "ig_gl" else "riemann_trapezoid"
    return IntegratedGradients(model).attribute(
        x, target=target, n_steps=16, method=rule, return_convergence_delta=True, dst=dst
    )


METHODS = ["sal", "ixg", "ig_gl", "ig_tr", "nt0"]


@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("method", METHODS)
def test_numpy_equals_captum(name: str, method: str) -> None:
    model, x = _cases(name)
    ours, theirs = _ours(model, x, name, method), _captum(name, method)
    if isinstance(theirs, tuple):
        np.testing.assert_allclose(ours[0], theirs[0], atol=1e-6)
        np.testing.assert_allclose(ours[1], theirs[1], atol=1e-6)
    else:
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def _job(session: Session) -> dict[str, Any]:
    model = cnn().encrypt(src=0)
    x = cl.cryptensor(cnn_inputs() if session.rank == 1 else None, src=1)
    return {m: _ours(model, x, "cnn", m, dst=1) for m in METHODS[:4]}


@functools.cache
def _encrypted() -> dict[str, Any]:
    return run_parties(_job, 2)[1]


@pytest.mark.parametrize("method", METHODS[:4])
def test_encrypted_cnn_correlates_with_captum(method: str) -> None:
    got = _encrypted()[method]
    want = _captum("cnn", method)
    if isinstance(want, tuple):
        got, want = got[0], want[0]
    worst = min(np.corrcoef(g.reshape(-1), w.reshape(-1))[0, 1] for g, w in zip(got, want))
    print(f"MEASURE {method} r={worst:.5f} maxdiff={np.max(np.abs(got - want)):.2e}")
    assert worst >= 0.99
    assert np.max(np.abs(got - want)) < 1e-3
