"""Suites ``explain`` and ``explain-grpc``: Integrated Gradients of an encrypted model on an
encrypted image (``crypten_lite.explain``), measured like ``ops``/``train``.

Cases: IG with 32 steps (Gauss-Legendre, zero baseline, target class 3) of (a) the
LeNet-style CNN of ``suite_models.lenet()`` on one 1 x 28 x 28 image and (b) the MLP
784-128-128-10 of ``suite_models.mlp()`` on one image; the model is shared by party 0
(``encrypt(src=0)`` once per session, untimed, in ``prepare``), the image by party 1. The
timed call is ``IntegratedGradients(model).attribute(x, target=3, n_steps=32,
method="gausslegendre")`` returning the secret-shared attribution (``dst=None``); the row's
``max_err`` is its largest deviation from the same IG on the plaintext model and image in
float64 numpy (the same code on public arrays).

The issue's target: an attribution costs at most 3x the rounds and 2x the time of one
private SGD step of the same model (batch 32, ``benchmarks/results/2026-12-02-train.json``,
same parties and transport). Each row's extra has ``train_rounds``/``train_s`` of that step
(when the JSON is there), ``rounds_vs_train_step``, ``time_vs_train_step`` and whether both
targets are met. ``--quick``: 4 and 8 steps (the rounds must not depend on ``n_steps``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import crypten_lite as cl
from benchmarks import suite_models, suite_ops, suite_ops_grpc
from benchmarks.opcase import Array, OpCase
from benchmarks.record import BenchRecord
from crypten_lite import nn
from crypten_lite.explain import IntegratedGradients
from crypten_lite.explain.approximation import Method

__all__ = ["TRAIN_RESULTS", "cases", "run", "run_grpc", "train_reference"]

SUITE = "explain"
TARGET = 3
N_STEPS = 32
METHOD: Method = "gausslegendre"
#: one private SGD step of the same models (suite ``train``, batch 32)
TRAIN_RESULTS = Path(__file__).resolve().parent / "results" / "2026-12-02-train.json"
#: the issue's target: at most this many times the rounds / the time of one training step
MAX_ROUNDS_RATIO, MAX_TIME_RATIO = 3.0, 2.0

_BUILD: dict[str, Callable[[], nn.Module]] = {"lenet": suite_models.lenet, "mlp": suite_models.mlp}
_INPUT = {"lenet": (1, 1, 28, 28), "mlp": (1, 784)}


def _attribute(model: nn.Module, x: Any, n_steps: int) -> Any:
    return IntegratedGradients(model).attribute(
        x, target=TARGET, n_steps=n_steps, method=METHOD, dst=None
    )


def _case(name: str, n_steps: int) -> OpCase:
    build, shape = _BUILD[name], _INPUT[name]

    def inputs(data: np.random.Generator) -> list[Array]:
        # a dummy first input so that the image comes from party 1 (src = index % N)
        return [np.zeros(1), data.uniform(0.0, 1.0, size=shape)]

    def prepare() -> nn.Module:
        return build().encrypt(src=0)

    def secure(model: nn.Module, _: cl.MPCTensor, x: cl.MPCTensor) -> Any:
        return _attribute(model, x, n_steps)

    def plain(_: Array, x: Array) -> Any:
        return _attribute(build(), x, n_steps)

    params = {"model": name, "input": list(shape), "n_steps": n_steps, "method": METHOD,
              "target": TARGET}
    return OpCase(f"ig-{name}", params, inputs, secure, plain, prepare=prepare)


def cases(quick: bool) -> list[OpCase]:
    steps = (4, 8) if quick else (N_STEPS,)
    return [_case(name, n) for name in ("lenet", "mlp") for n in steps]


@functools.cache
def _train_rows() -> dict[tuple[str, int, str], tuple[int, float]]:
    """``(model, parties, transport) -> (rounds, median seconds)`` of one training step."""
    if not TRAIN_RESULTS.exists():
        return {}
    rows = json.loads(TRAIN_RESULTS.read_text())
    return {
        (r["name"], int(r["parties"]), r["transport"]): (int(r["rounds"]),
                                                          float(r["wall_s_median"]))
        for r in rows
    }


def train_reference(model: str, parties: int, transport: str) -> tuple[int, float] | None:
    """Rounds and median wall seconds of one private SGD step of ``model`` (batch 32), or
    None when the train results are missing."""
    return _train_rows().get((model, parties, transport))


def with_train_reference(row: BenchRecord) -> BenchRecord:
    """The row with the training-step reference and the target verdicts in its extra."""
    ref = train_reference(str(row.params["model"]), row.parties, row.transport)
    if ref is None:
        return row
    train_rounds, train_s = ref
    rounds_ratio = row.rounds / train_rounds
    time_ratio = row.wall_s_median / train_s
    extra = {
        **row.extra,
        "train_rounds": train_rounds,
        "train_s": train_s,
        "rounds_vs_train_step": rounds_ratio,
        "time_vs_train_step": time_ratio,
        "rounds_target_met": rounds_ratio <= MAX_ROUNDS_RATIO,
        "time_target_met": time_ratio <= MAX_TIME_RATIO,
    }
    return dataclasses.replace(row, extra=extra)


def run(reps: int, quick: bool) -> list[BenchRecord]:
    """Every case in-process (threads) for 2 and 3 parties with the trusted dealer."""
    rows = []
    for case in cases(quick):
        for world_size in (2, 3):
            row = suite_ops.measure(case, world_size, reps, "TrustedDealer", suite=SUITE)
            rows.append(with_train_reference(row))
    return rows


def run_grpc(reps: int, quick: bool) -> list[BenchRecord]:
    """Every case between launched processes over gRPC with mutual TLS, 2 and 3 parties."""
    return [with_train_reference(row) for row in suite_ops_grpc.run_suite(SUITE, reps, quick)]
