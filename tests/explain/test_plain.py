"""Attributions on public (numpy) models and inputs: float64 reference semantics.

IG completeness on Linear-Tanh-Linear, measured max |sum(attr) - (F(x) - F(0))| over 3
examples (one target per example):

============  ===============  ==================  ===============
n_steps       gausslegendre    riemann_trapezoid   riemann_middle
============  ===============  ==================  ===============
8             4.2e-14          2.5e-2              4.9e-5
32            2.8e-17          6.2e-3              3.1e-6
128           5.6e-17          1.6e-3              1.9e-7
============  ===============  ==================  ===============

Captum's ``riemann_trapezoid`` converges only as 1/n: its points are ``linspace(0, 1, n)``
(spacing ``1/(n-1)``) but its steps are ``1/n`` (halved at the ends), so the weights sum to
``(n-1)/n``; we reproduce Captum's rule, not a textbook trapezoid. Tolerances: 1e-9 for
Gauss-Legendre, about 1.2x the measured error for the two Riemann rules.
"""

from __future__ import annotations

import numpy as np
import pytest

from crypten_lite import nn
from crypten_lite.autograd import Variable
from crypten_lite.explain import (
    InputXGradient,
    IntegratedGradients,
    NoiseTunnel,
    Saliency,
    approximation_parameters,
)
from tests.explain.models import cnn, cnn_inputs, finite_difference, mlp, mlp_inputs, numpy_forward

TARGET = [0, 2, 1]


@pytest.mark.parametrize(
    ("method", "n_steps", "tol"),
    [
        ("gausslegendre", 8, 1e-9),
        ("gausslegendre", 32, 1e-9),
        ("gausslegendre", 128, 1e-9),
        ("riemann_trapezoid", 8, 0.03),
        ("riemann_trapezoid", 32, 7e-3),
        ("riemann_trapezoid", 128, 1.8e-3),
        ("riemann_middle", 8, 6e-5),
        ("riemann_middle", 32, 4e-6),
        ("riemann_middle", 128, 2.5e-7),
    ],
)
def test_ig_completeness(method: str, n_steps: int, tol: float) -> None:
    model, x = mlp(), mlp_inputs()
    attr, delta = IntegratedGradients(model).attribute(
        x, target=TARGET, n_steps=n_steps, method=method, return_convergence_delta=True
    )
    rows = np.arange(3)
    expected = numpy_forward(model, x)[rows, TARGET] - numpy_forward(model, 0 * x)[rows, TARGET]
    assert attr.shape == x.shape
    np.testing.assert_allclose(attr.reshape(3, -1).sum(1), expected, atol=tol)
    np.testing.assert_allclose(delta, attr.reshape(3, -1).sum(1) - expected, atol=1e-12)


def test_ig_baselines_and_methods() -> None:
    model, x = mlp(), mlp_inputs()
    base = np.full(x.shape[1:], 0.25)
    ig = IntegratedGradients(model)
    a = ig.attribute(x, baselines=base, target=1, n_steps=64)
    b = ig.attribute(x, baselines=np.broadcast_to(base, x.shape), target=1, n_steps=64)
    c = ig.attribute(x, baselines=0.25, target=1, n_steps=64)
    np.testing.assert_allclose(a, b, atol=1e-14)
    np.testing.assert_allclose(a, c, atol=1e-14)
    f = numpy_forward(model, x)[:, 1] - numpy_forward(model, np.broadcast_to(base, x.shape))[:, 1]
    np.testing.assert_allclose(a.sum(1), f, atol=1e-9)
    for method in ("riemann_left", "riemann_right", "riemann_middle"):
        r = ig.attribute(x, baselines=base, target=1, n_steps=256, method=method)
        np.testing.assert_allclose(r.sum(1), f, atol=5e-3)
    raw = IntegratedGradients(model, multiply_by_inputs=False).attribute(x, target=1, n_steps=64)
    np.testing.assert_allclose(raw * x, ig.attribute(x, target=1, n_steps=64), atol=1e-14)


def test_saliency_and_input_x_gradient_match_finite_differences() -> None:
    for model, x, target in ((mlp(), mlp_inputs(), TARGET), (cnn(), cnn_inputs(), [2, 0])):
        fd = finite_difference(model, x, target)
        signed = Saliency(model).attribute(x, target=target, abs=False)
        np.testing.assert_allclose(signed, fd, atol=1e-7)
        sal = Saliency(model).attribute(x, target=target)
        np.testing.assert_allclose(sal, np.abs(fd), atol=1e-7)
        ixg = InputXGradient(model).attribute(x, target=target)
        np.testing.assert_allclose(ixg, x * fd, atol=1e-7)


def test_scalar_output_with_target_none() -> None:
    model = nn.Sequential(mlp(), nn.Linear(3, 1, rng=np.random.default_rng(1)))
    x = mlp_inputs()
    grad = Saliency(model).attribute(x, abs=False)
    fd = finite_difference(model, x, [0, 0, 0])
    np.testing.assert_allclose(grad, fd, atol=1e-7)
    # a plain callable giving (N,) outputs works too
    attr = IntegratedGradients(lambda v: model(v).reshape(-1)).attribute(x, n_steps=32)
    np.testing.assert_allclose(attr.sum(1), model(x)[:, 0] - model(0 * x)[:, 0], atol=1e-9)


def test_noise_tunnel_plain() -> None:
    model, x = mlp(), mlp_inputs()
    ig = IntegratedGradients(model)
    plain = ig.attribute(x, target=TARGET, n_steps=16)
    nt = NoiseTunnel(ig)
    for nt_type, expected in (
        ("smoothgrad", plain), ("smoothgrad_sq", plain**2), ("vargrad", 0 * plain)
    ):
        got = nt.attribute(x, nt_type=nt_type, nt_samples=3, stdevs=0.0, target=TARGET, n_steps=16)
        np.testing.assert_allclose(got, expected, atol=1e-12)
    # with noise: the mean of the per-copy attributions, same seed -> same result
    a = nt.attribute(x, nt_samples=4, stdevs=0.3, target=TARGET, n_steps=8, seed=3)
    b = nt.attribute(x, nt_samples=4, stdevs=0.3, target=TARGET, n_steps=8, seed=3)
    np.testing.assert_array_equal(a, b)
    noisy = np.repeat(x, 4, axis=0) + np.random.default_rng(3).normal(0, 0.3, (12, x.shape[1]))
    per_copy = ig.attribute(noisy, target=np.repeat(TARGET, 4), n_steps=8)
    np.testing.assert_allclose(a, per_copy.reshape(3, 4, -1).mean(1), atol=1e-12)
    v = nt.attribute(
        x, nt_type="vargrad", nt_samples=4, stdevs=0.3, target=TARGET, n_steps=8, seed=3
    )
    np.testing.assert_allclose(v, per_copy.reshape(3, 4, -1).var(1), atol=1e-12)
    _, delta = nt.attribute(
        x, nt_samples=4, stdevs=0.3, target=TARGET, n_steps=8, seed=3, return_convergence_delta=True
    )
    assert delta.shape == (12,)


def test_parameters_are_left_alone() -> None:
    model, x = mlp(), mlp_inputs()
    model.requires_grad_()
    params = list(model.parameters())
    assert all(isinstance(p, Variable) and p.requires_grad for p in params)
    IntegratedGradients(model).attribute(x, target=1, n_steps=4)
    assert all(p.grad is None and p.requires_grad for p in params)


class _NoGrad(nn.Module):
    def forward(self, *args: object) -> object:
        return args[0].softplus()  # type: ignore[attr-defined]  # no such Variable op


def test_model_errors_name_the_layer() -> None:
    model = nn.Sequential(nn.Linear(6, 3, rng=np.random.default_rng(0)), _NoGrad())
    with pytest.raises(TypeError, match=r"IntegratedGradients.*layer '1'") as info:
        IntegratedGradients(model).attribute(mlp_inputs(), target=0, n_steps=2)
    assert isinstance(info.value.__cause__, AttributeError)
    with pytest.raises(TypeError, match="not an autograd Variable"):
        Saliency(lambda v: np.zeros((3, 2))).attribute(mlp_inputs(), target=0)


def test_approximation_parameters_match_captum_formulas() -> None:
    steps, alphas = approximation_parameters("gausslegendre", 5)
    nodes, weights = np.polynomial.legendre.leggauss(5)
    np.testing.assert_array_equal(steps, 0.5 * weights)
    np.testing.assert_array_equal(alphas, 0.5 * (1 + nodes))
    steps, alphas = approximation_parameters("riemann_trapezoid", 5)
    np.testing.assert_allclose(steps, [0.1, 0.2, 0.2, 0.2, 0.1])
    np.testing.assert_allclose(alphas, np.linspace(0, 1, 5))
