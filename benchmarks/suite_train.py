"""Suites ``train`` and ``train-grpc``: one private SGD step, measured like ``ops``.

(a) logistic regression, full batch 1000 x 100 (the model shared by party 0, X by party 0,
y by party 1), sigmoid + BCE, lr 0.5; (b) MLP 784-128-128-10, batch 32, cross-entropy with
one-hot labels shared by party 1, lr 0.1; (c) the LeNet-style CNN on 1 x 28 x 28, batch 32,
the same loss. Each timed repetition resets the encrypted weights to the same initial
shares and takes one step (forward, backward, SGD update); the row's ``max_err`` is the
largest deviation of the updated weights from the same step in float64 numpy (the same
autograd code on public arrays). CrypTen's numbers from the issue (its secure dealer / its
insecure local mode, gloo without TLS, 2-core machine) are attached as ``crypten_*``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

import crypten_lite as cl
from benchmarks import suite_models, suite_ops, suite_ops_grpc
from benchmarks.opcase import Array, OpCase
from benchmarks.record import BenchRecord
from crypten_lite import nn

__all__ = ["cases", "run", "run_grpc"]

SUITE = "train"

#: CrypTen from the issue: (secure s, secure rounds, insecure s, insecure rounds) per case and
#: party count (None where the issue gives no number).
_CRYPTEN: dict[tuple[str, int], tuple[float, int, float | None, int | None]] = {
    ("logreg", 2): (2.8, 372, 0.37, 93),
    ("logreg", 3): (2.3, 780, None, None),
    ("mlp", 2): (2.06, 652, 0.73, 163),
    ("mlp", 3): (7.3, 1336, None, None),
    ("lenet", 2): (4.56, 1132, 3.36, 283),
}


def logreg() -> nn.Module:
    return nn.Linear(100, 1, rng=np.random.default_rng(31))


def _mlp() -> nn.Module:
    return suite_models.mlp().train()


def _lenet() -> nn.Module:
    return suite_models.lenet().train()


def _flat(model: nn.Module) -> Any:
    """Every parameter flattened and concatenated (one reveal)."""
    values = [p.data for p in model.parameters()]
    if isinstance(values[0], cl.MPCTensor):
        return cl.cat([v.reshape(-1) for v in values])
    return np.concatenate([np.asarray(v).reshape(-1) for v in values])


def _step(
    model: nn.Module, loss_fn: nn.Module, x: Any, target: Any, lr: float
) -> Any:
    """One SGD step; returns the updated parameters, flattened."""
    optimizer = cl.optim.SGD(model.parameters(), lr=lr)
    optimizer.zero_grad()
    out = model(x)
    if isinstance(loss_fn, nn.BCELoss):
        out = out.sigmoid()
    loss_fn(out, target).backward()
    optimizer.step()
    return _flat(model)


def _secure(build: Callable[[], nn.Module], loss: Callable[[], nn.Module], lr: float) -> Any:
    def prepare() -> tuple[nn.Module, Any]:
        model = build().encrypt(src=0).requires_grad_()
        return model, model.state_dict()

    def secure(prepared: tuple[nn.Module, Any], x: cl.MPCTensor, y: cl.MPCTensor) -> Any:
        model, initial = prepared
        model.load_state_dict(initial)  # every repetition starts from the same shares
        return _step(model, loss(), x, y, lr)

    return prepare, secure


def _plain(build: Callable[[], nn.Module], loss: Callable[[], nn.Module], lr: float) -> Any:
    def plain(x: Array, y: Array) -> Any:
        return _step(build().requires_grad_(), loss(), x, y, lr)

    return plain


def _one_hot(rows: int, seed: int) -> Callable[[np.random.Generator], Array]:
    def make(data: np.random.Generator) -> Array:
        labels = np.random.default_rng(seed).integers(0, 10, size=rows)
        return np.eye(10)[labels]

    return make


def _case(
    name: str,
    params: dict[str, Any],
    build: Callable[[], nn.Module],
    loss: Callable[[], nn.Module],
    lr: float,
    x_shape: tuple[int, ...],
    target: Callable[[np.random.Generator], Array],
) -> OpCase:
    prepare, secure = _secure(build, loss, lr)

    def inputs(data: np.random.Generator) -> list[Array]:
        return [data.uniform(0.0, 1.0, size=x_shape), target(data)]

    return OpCase(name, params, inputs, secure, _plain(build, loss, lr), prepare=prepare)


def cases(quick: bool) -> list[OpCase]:
    rows = 100 if quick else 1000
    logreg_case = _case(
        "logreg",
        {"x": [rows, 100], "loss": "bce", "lr": 0.5},
        logreg,
        nn.BCELoss,
        0.5,
        (rows, 100),
        lambda data: (data.random((rows, 1)) > 0.5).astype(np.float64),
    )
    batch = 4 if quick else 32
    mlp_case = _case(
        "mlp", {"batch": batch, "loss": "cross_entropy", "lr": 0.1}, _mlp,
        nn.CrossEntropyLoss, 0.1, (batch, 784), _one_hot(batch, 5),
    )
    lenet_case = _case(
        "lenet", {"batch": batch, "loss": "cross_entropy", "lr": 0.1}, _lenet,
        nn.CrossEntropyLoss, 0.1, (batch, 1, 28, 28), _one_hot(batch, 6),
    )
    return [logreg_case, mlp_case, lenet_case]


def _with_crypten(row: BenchRecord, quick: bool) -> BenchRecord:
    """CrypTen's numbers for the issue's sizes (not attached to ``--quick`` rows)."""
    known = _CRYPTEN.get((row.name, row.parties))
    if known is None or quick:
        return row
    secure_s, secure_rounds, insecure_s, insecure_rounds = known
    extra = {
        **row.extra,
        "crypten_s_secure": secure_s,
        "crypten_rounds_secure": secure_rounds,
        "speedup_vs_crypten_secure": secure_s / row.wall_s_median,
    }
    if insecure_s is not None:
        extra["crypten_s_insecure"] = insecure_s
        extra["crypten_rounds_insecure"] = insecure_rounds
    return dataclasses.replace(row, extra=extra)


def run(reps: int, quick: bool) -> list[BenchRecord]:
    """Every case in-process (threads) for 2 and 3 parties with the trusted dealer."""
    rows = []
    for case in cases(quick):
        for world_size in (2, 3):
            row = suite_ops.measure(case, world_size, reps, "TrustedDealer", suite=SUITE)
            rows.append(_with_crypten(row, quick))
    return rows


def run_grpc(reps: int, quick: bool) -> list[BenchRecord]:
    """Every case between launched processes over gRPC with mutual TLS, 2 and 3 parties."""
    return [_with_crypten(row, quick) for row in suite_ops_grpc.run_suite("train", reps, quick)]

