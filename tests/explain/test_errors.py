"""Bad arguments: clear errors, raised alike on every party and before any communication
(the target's range needs the number of classes, known from the forward's public output
shape: it is raised after the forward and before the backward, alike on every party)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.explain import InputXGradient, IntegratedGradients, NoiseTunnel, Saliency
from crypten_lite.runtime.testing import PartyFailure, run_parties
from crypten_lite.session import Session
from tests.explain.models import mlp, mlp_inputs

X = mlp_inputs()

BAD: list[tuple[str, Callable[[Any, Any], Any], type[Exception], str]] = [
    ("n_steps=0", lambda m, x: IntegratedGradients(m).attribute(x, target=0, n_steps=0),
     ValueError, "n_steps must be at least 1"),
    ("riemann n_steps=1", lambda m, x: IntegratedGradients(m).attribute(
        x, target=0, n_steps=1, method="riemann_left"), ValueError, "at least 2"),
    ("method", lambda m, x: IntegratedGradients(m).attribute(x, target=0, method="simpson"),
     ValueError, "method must be one of"),
    ("baseline shape", lambda m, x: IntegratedGradients(m).attribute(
        x, baselines=np.zeros((2, 6)), target=0), ValueError, r"\(2, 6\).*\(3, 6\)"),
    ("target count", lambda m, x: Saliency(m).attribute(x, target=[0, 1]),
     ValueError, "2 entries for 3 examples"),
    ("target negative", lambda m, x: Saliency(m).attribute(x, target=-1),
     ValueError, "out of range"),
    ("target type", lambda m, x: Saliency(m).attribute(x, target=1.5),
     TypeError, "target must be"),
    ("nt_samples=0", lambda m, x: NoiseTunnel(Saliency(m)).attribute(x, nt_samples=0, target=0),
     ValueError, "nt_samples must be at least 1"),
    ("nt_type", lambda m, x: NoiseTunnel(Saliency(m)).attribute(x, nt_type="smooth", target=0),
     ValueError, "nt_type must be one of"),
    ("distrib", lambda m, x: NoiseTunnel(IntegratedGradients(m)).attribute(
        x, draw_baseline_from_distrib=True, target=0), ValueError, "not supported"),
    ("stdevs", lambda m, x: NoiseTunnel(Saliency(m)).attribute(x, stdevs=-1.0, target=0),
     ValueError, "non-negative"),
    ("nt kwargs", lambda m, x: NoiseTunnel(Saliency(m)).attribute(x, n_steps=3, target=0),
     TypeError, "unexpected arguments"),
    ("dst", lambda m, x: InputXGradient(m).attribute(x, target=0, dst=7),
     ValueError, "dst=7"),
    ("inputs", lambda m, x: Saliency(m).attribute("x", target=0), TypeError, "inputs must be"),
]


@pytest.mark.parametrize(("name", "call", "exc", "match"), BAD, ids=[b[0] for b in BAD])
def test_bad_arguments_public(name: str, call: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        call(mlp(), X)


def _job(session: Session) -> list[tuple[str, str, int]]:
    model = mlp().encrypt(src=0)
    x = cl.cryptensor(X if session.rank == 1 else None, src=1)
    seen = []
    for name, call, exc, match in BAD:
        before = session.stats.rounds
        with pytest.raises(exc, match=match) as info:
            call(model, x)
        seen.append((name, str(info.value), session.stats.rounds - before))
    before = session.stats.rounds
    with pytest.raises(ValueError, match="target 3 is out of range for 3 classes") as err:
        IntegratedGradients(model).attribute(x, target=3, n_steps=4)
    seen.append(("target range", str(err.value), session.stats.rounds - before))
    return seen


@pytest.mark.parametrize("world", [2, 3])
def test_bad_arguments_encrypted(world: int) -> None:
    per_party = run_parties(_job, world)
    assert all(p == per_party[0] for p in per_party)  # same error on every party
    for name, _, rounds in per_party[0]:
        if name != "target range":
            assert rounds == 0, name  # before any communication
    # target range: after the forward only (no backward round was spent)
    forward_only = per_party[0][-1][2]
    assert forward_only > 0


def test_run_parties_failure_is_not_swallowed() -> None:
    def job(session: Session) -> None:
        IntegratedGradients(mlp()).attribute(X, target=0, n_steps=0)

    with pytest.raises(PartyFailure, match="n_steps must be at least 1"):
        run_parties(job, 2)
