"""Attributions on shares (2 and 3 parties) against the float64 numpy ones.

Model ``encrypt(src=0)``, input ``cryptensor(x, src=1)``, results revealed to party 1
(``dst=1``). Measured max |encrypted - numpy| (Linear-Tanh-Linear, 3 examples x 6 features,
16 fractional bits; ``tol`` is what the tests use):

=====================================  ==========  ==========  ======
method                                 2 parties   3 parties   tol
=====================================  ==========  ==========  ======
Saliency (abs)                         8.4e-5      3.8e-5      5e-4
InputXGradient                         4.1e-5      2.2e-5      3e-4
IG gausslegendre, 16 steps             2.0e-5      1.5e-5      2e-4
IG gausslegendre delta                 1.1e-4      1.4e-4      1e-3
IG riemann_trapezoid, 16 steps         1.6e-5      1.7e-5      2e-4
NT smoothgrad/sq/vargrad, stdevs=0     1.5e-5      2.0e-5      2e-4
IG, 4 model/input combinations         2.3e-5      2.3e-5      2e-4
=====================================  ==========  ==========  ======

Noise on shares differs from numpy's, so noisy NoiseTunnel results are checked
statistically: smoothgrad (Saliency, signed, 256 copies, stdevs 0.3) within 0.02 of the
numpy smoothgrad over 20000 copies (measured 2.5e-3 / 1.3e-3 with 2 / 3 parties); the
revealed noise has std within 5% of ``stdevs`` (measured 0.5036 / 0.5028 for 0.5), and the
parties' own components are uncorrelated (20000 draws each, |corr| < 0.05,
more than 7 standard errors; measured 0.001 / 0.018 with 4000 draws).
Rounds: IG at n_steps=4 and 16 cost the same, = rounds of one forward + one backward at that
batch + 1 (2 parties: 12 = 11 + 1) / + 4 (3 parties: 28 = 24 + 4): the path-point
truncation, the step-sum truncation, the product (x - baseline) * grads and its truncation.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.autograd import Variable
from crypten_lite.explain import (
    InputXGradient,
    IntegratedGradients,
    NoiseTunnel,
    Saliency,
    noisy_copies,
    private_gaussian,
)
from crypten_lite.runtime.testing import run_parties
from crypten_lite.session import Session
from tests.explain.models import N_CLASSES, mlp, mlp_inputs

WORLDS = [2, 3]
TARGET = [0, 2, 1]
X = mlp_inputs()
TOL = {"sal": 5e-4, "ixg": 3e-4, "ig": 2e-4, "delta": 1e-3, "tr": 2e-4, "nt": 2e-4, "combo": 2e-4}


def _private_model() -> Any:
    return mlp().encrypt(src=0)


def _rounds(session: Session, fn: Any) -> tuple[Any, int]:
    before = session.stats.rounds
    out = fn()
    return out, session.stats.rounds - before


def _job(session: Session) -> dict[str, Any]:
    rank = session.rank
    model = _private_model()
    x = cl.cryptensor(X if rank == 1 else None, src=1)
    out: dict[str, Any] = {}
    out["sal"] = Saliency(model).attribute(x, target=TARGET, dst=1)
    out["ixg"] = InputXGradient(model).attribute(x, target=TARGET, dst=1)
    ig = IntegratedGradients(model)
    out["ig"], out["delta"] = ig.attribute(
        x, target=TARGET, n_steps=16, return_convergence_delta=True, dst=1
    )
    out["tr"] = ig.attribute(x, target=TARGET, n_steps=16, method="riemann_trapezoid", dst=1)
    nt = NoiseTunnel(ig)
    for kind in ("smoothgrad", "smoothgrad_sq", "vargrad"):
        out[f"nt0_{kind}"] = nt.attribute(
            x, nt_type=kind, nt_samples=2, stdevs=0.0, target=TARGET, n_steps=8, dst=1
        )
    out["nt_sal"] = NoiseTunnel(Saliency(model)).attribute(
        x, nt_samples=256, stdevs=0.3, target=TARGET, abs=False, dst=1
    )
    # four combinations of private/public model and input
    plain_model = mlp()
    for name, m, inp in (
        ("pp", model, x), ("pm_pi", model, X), ("pubm_pi", plain_model, x),
        ("pub_pub", plain_model, X),
    ):
        out[f"combo_{name}"] = ig.__class__(m).attribute(inp, target=TARGET, n_steps=8, dst=1)
    # noise: revealed noisy copies and this party's own component
    noisy = noisy_copies(x, 200, 0.5)
    assert isinstance(noisy, cl.MPCTensor)
    out["noisy"] = noisy.get_plain_text(dst=1)
    out["component"] = private_gaussian(session.private, (20000,), 1.0)
    # rounds: IG vs one forward + backward at the same batch
    for steps in (4, 16):
        _, out[f"rounds_ig{steps}"] = _rounds(
            session, lambda s=steps: ig.attribute(x, target=TARGET, n_steps=s)
        )

        def fwd_bwd(s: int = steps) -> None:
            batch = cl.cat([x] * s, 0)
            leaf = Variable(batch, requires_grad=True)
            res = model(leaf)
            onehot = np.zeros((3 * s, N_CLASSES))
            onehot[np.arange(3 * s), np.tile(TARGET, s)] = 1.0
            res.backward(onehot)

        _, out[f"rounds_fb{steps}"] = _rounds(session, fwd_bwd)
    return out


@functools.cache
def results(world: int) -> list[dict[str, Any]]:
    return run_parties(_job, world)


def _numpy() -> dict[str, Any]:
    model = mlp()
    ig = IntegratedGradients(model)
    ref: dict[str, Any] = {
        "sal": Saliency(model).attribute(X, target=TARGET),
        "ixg": InputXGradient(model).attribute(X, target=TARGET),
        "tr": ig.attribute(X, target=TARGET, n_steps=16, method="riemann_trapezoid"),
    }
    ref["ig"], ref["delta"] = ig.attribute(
        X, target=TARGET, n_steps=16, return_convergence_delta=True
    )
    ig8 = ig.attribute(X, target=TARGET, n_steps=8)
    ref["nt0_smoothgrad"], ref["nt0_smoothgrad_sq"], ref["nt0_vargrad"] = ig8, ig8**2, 0 * ig8
    for name in ("pp", "pm_pi", "pubm_pi", "pub_pub"):
        ref[f"combo_{name}"] = ig8
    return ref


REF = _numpy()
CHECKS = [
    ("sal", "sal"), ("ixg", "ixg"), ("ig", "ig"), ("delta", "delta"), ("tr", "tr"),
    *[(f"nt0_{k}", "nt") for k in ("smoothgrad", "smoothgrad_sq", "vargrad")],
    *[(f"combo_{k}", "combo") for k in ("pp", "pm_pi", "pubm_pi", "pub_pub")],
]


@pytest.mark.parametrize("world", WORLDS)
@pytest.mark.parametrize(("key", "tol"), CHECKS)
def test_matches_numpy(world: int, key: str, tol: str) -> None:
    outs = results(world)
    got = outs[1][key]
    print(f"MEASURE {world} {key} {np.max(np.abs(got - REF[key])):.2e}")
    np.testing.assert_allclose(got, REF[key], atol=TOL[tol])
    assert outs[0][key] is None  # dst=1: nothing on the other parties


@pytest.mark.parametrize("world", WORLDS)
def test_noisy_smoothgrad_statistically(world: int) -> None:
    model = mlp()
    rng = np.random.default_rng(0)
    copies = np.repeat(X, 20000, axis=0) + rng.normal(0, 0.3, (3 * 20000, X.shape[1]))
    grads = Saliency(model).attribute(copies, target=np.repeat(TARGET, 20000), abs=False)
    ref = grads.reshape(3, 20000, -1).mean(1)
    got = results(world)[1]["nt_sal"]
    print(f"MEASURE {world} nt_sal {np.max(np.abs(got - ref)):.2e}")
    np.testing.assert_allclose(got, ref, atol=0.02)


@pytest.mark.parametrize("world", WORLDS)
def test_private_noise(world: int) -> None:
    outs = results(world)
    noise = outs[1]["noisy"] - np.repeat(X, 200, axis=0)
    print(f"MEASURE {world} noise std {noise.std():.4f} mean {noise.mean():.4f}")
    # 3600 samples: standard errors 0.006 (std) and 0.008 (mean); bounds at >4 sigma
    assert abs(noise.std() - 0.5) < 0.025 and abs(noise.mean()) < 0.04
    assert outs[0]["noisy"] is None
    comps = [o["component"] for o in outs]
    for c in comps:
        assert abs(c.std() - 1.0) < 0.03
    corr = np.corrcoef(comps)
    print(f"MEASURE {world} corr {np.max(np.abs(corr - np.eye(world))):.3f}")
    assert np.max(np.abs(corr - np.eye(world))) < 0.05


@pytest.mark.parametrize("world", WORLDS)
def test_rounds_independent_of_n_steps(world: int) -> None:
    out = results(world)[0]
    print(f"MEASURE {world} rounds", {k: v for k, v in out.items() if k.startswith("rounds")})
    assert out["rounds_ig4"] == out["rounds_ig16"]
    assert out["rounds_fb4"] == out["rounds_fb16"]
    extra = {2: 1, 3: 4}[world]
    assert out["rounds_ig4"] == out["rounds_fb4"] + extra
