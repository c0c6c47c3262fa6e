"""Suite ``models``: private inference of an MLP 784-128-128-10 and a LeNet-5-style CNN on
1x28x28, batch 32, random weights (public seed), model shared by party 0 and input by party 1
(``src = 1 % N``), 2 and 3 parties with the TrustedDealer, in-process. The deviation is the
largest absolute difference of the logits from the plaintext float64 forward."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks import suite_ops
from benchmarks.opcase import Array, OpCase
from benchmarks.record import BenchRecord
from crypten_lite import nn

__all__ = ["cases", "run"]

BATCH = 32


def mlp() -> nn.Module:
    rng = np.random.default_rng(21)  # benchmark weights, public seed
    return nn.Sequential(
        nn.Linear(784, 128, rng=rng),
        nn.ReLU(),
        nn.Linear(128, 128, rng=rng),
        nn.ReLU(),
        nn.Linear(128, 10, rng=rng),
    ).eval()


def lenet() -> nn.Module:
    rng = np.random.default_rng(22)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120, rng=rng),
        nn.ReLU(),
        nn.Linear(120, 84, rng=rng),
        nn.ReLU(),
        nn.Linear(84, 10, rng=rng),
    ).eval()


def _encrypted(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    return lambda: build().encrypt(src=0)


def _inputs(*shape: int) -> Callable[[np.random.Generator], list[Array]]:
    # one dummy input first so that the data comes from party 1 (src = index % N)
    return lambda data: [np.zeros(1), data.uniform(0, 1, size=shape)]


def cases(quick: bool) -> list[OpCase]:
    batch = 2 if quick else BATCH
    return [
        OpCase(
            "mlp",
            {"layers": "784-128-128-10", "batch": batch},
            _inputs(batch, 784),
            lambda model, _, x: model(x),
            lambda _, x: mlp()(x),
            (79, 155),
            prepare=_encrypted(mlp),
        ),
        OpCase(
            "lenet",
            {"input": [batch, 1, 28, 28], "batch": batch},
            _inputs(batch, 1, 28, 28),
            lambda model, _, x: model(x),
            lambda _, x: lenet()(x),
            (1339, 2037),
            prepare=_encrypted(lenet),
        ),
    ]


def run(reps: int, quick: bool) -> list[BenchRecord]:
    """Both models, 2 and 3 parties, in-process with the trusted dealer."""
    rows = []
    for case in cases(quick):
        for world_size in (2, 3):
            rows.append(suite_ops._measure(case, world_size, reps, "TrustedDealer", "models"))
    return rows
