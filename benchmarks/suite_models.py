"""Suite ``models``: private inference of an MLP 784-128-128-10 and a LeNet-5-style CNN on
1x28x28, batch 32, random weights (public seed), model shared by party 0 and input by party 1
(``src = 1 % N``), 2 and 3 parties with the TrustedDealer, in-process. The deviation is the
largest absolute difference of the logits from the plaintext float64 forward.

``mlp-int8`` / ``lenet-int8``: the same float models through ``crypten_lite.quantization``
(Linear/Conv+ReLU fused, ``mpc_qconfig``, calibrated on 64 public uniform images, converted),
encrypted with ``encrypt_quantized``; party 1 quantizes its images locally and shares the
integers (in ``prepare``, untimed, like the fixed-point inputs' sharing). The timed forward
ends with the exact local DeQuantize. ``extra``: argmax agreement with the float model and with
the plaintext int8 model (in-process rows) and the largest deviation in int8 output steps."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

import crypten_lite as cl
from benchmarks import suite_ops
from benchmarks.opcase import Array, OpCase
from benchmarks.record import BenchRecord
from crypten_lite import nn
from crypten_lite import quantization as quant
from crypten_lite.quantization.encrypted import encrypt_quantized, share_quantized

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


#: (layer, ReLU) pairs to fuse, as indices into the float model (before the QuantStub shift)
_FUSE = {"mlp": [(0, 1), (2, 3)], "lenet": [(0, 1), (3, 4), (7, 8), (9, 10)]}
_BUILD = {"mlp": mlp, "lenet": lenet}
_INPUT = {"mlp": (784,), "lenet": (1, 28, 28)}


@functools.cache
def _converted(name: str) -> nn.Sequential:
    layers = list(_BUILD[name]())  # type: ignore[call-overload]
    wrapped = nn.Sequential(quant.QuantStub(), *layers, quant.DeQuantStub())
    wrapped.eval()
    fused = quant.fuse_modules(wrapped, [[str(a + 1), str(b + 1)] for a, b in _FUSE[name]])
    fused.qconfig = quant.mpc_qconfig()  # type: ignore[attr-defined]
    calibration = np.random.default_rng(23).uniform(0, 1, size=(64, *_INPUT[name]))
    return quant.quantize(fused, lambda model, x: model(x), calibration)


def int8_model(name: str) -> nn.Sequential:
    """The float model ``name`` quantized: stubs, fused, calibrated on public data, converted
    (once per process; each caller gets its own copy, since encryption rewrites it)."""
    return copy.deepcopy(_converted(name))


def _int8_prepare(
    name: str, inputs: Callable[[np.random.Generator], list[Array]], fast: bool
) -> Callable[[], tuple[nn.Module, Any]]:
    def prepare() -> tuple[nn.Module, Any]:
        session = cl.current_session()
        owner = 1 % session.world_size
        model = encrypt_quantized(int8_model(name), src=0, exact=not fast, saturate=not fast)
        x = inputs(np.random.default_rng(11))[1]  # the case's input (same seed as run_case)
        return model, share_quantized(model, x if session.rank == owner else None, owner)

    return prepare


def _int8_case(name: str, params: dict[str, Any], inputs: Any, fast: bool = False) -> OpCase:
    """``fast``: ``exact=False, saturate=False`` (stochastic rounding, clamps only where a
    ReLU is fused): one truncation and no comparison per plain layer."""
    return OpCase(
        f"{name}-int8-fast" if fast else f"{name}-int8",
        params,
        inputs,
        lambda prepared, *_: prepared[0](prepared[1]),
        lambda _, x: _BUILD[name]()(x),
        prepare=_int8_prepare(name, inputs, fast),
    )


def _encrypted(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    return lambda: build().encrypt(src=0)


def _inputs(*shape: int) -> Callable[[np.random.Generator], list[Array]]:
    # one dummy input first so that the data comes from party 1 (src = index % N)
    return lambda data: [np.zeros(1), data.uniform(0, 1, size=shape)]


def cases(quick: bool) -> list[OpCase]:
    batch = 2 if quick else BATCH
    mlp_params = {"layers": "784-128-128-10", "batch": batch}
    lenet_params = {"input": [batch, 1, 28, 28], "batch": batch}
    return [
        OpCase(
            "mlp",
            mlp_params,
            _inputs(batch, 784),
            lambda model, _, x: model(x),
            lambda _, x: mlp()(x),
            (79, 155),
            prepare=_encrypted(mlp),
        ),
        OpCase(
            "lenet",
            lenet_params,
            _inputs(batch, 1, 28, 28),
            lambda model, _, x: model(x),
            lambda _, x: lenet()(x),
            (1339, 2037),
            prepare=_encrypted(lenet),
        ),
        _int8_case("mlp", mlp_params, _inputs(batch, 784)),
        _int8_case("lenet", lenet_params, _inputs(batch, 1, 28, 28)),
    ] + (
        []
        if quick
        else [
            _int8_case("mlp", mlp_params, _inputs(batch, 784), fast=True),
            _int8_case("lenet", lenet_params, _inputs(batch, 1, 28, 28), fast=True),
        ]
    )


def _int8_extra(case: OpCase, results: list[suite_ops.PartyResult]) -> dict[str, Any]:
    """Argmax agreement of the private logits with the float and the plaintext int8 model,
    and their largest distance from the plaintext int8 logits in output steps."""
    name = case.name.split("-int8")[0]
    x = case.inputs(np.random.default_rng(11))[1]
    qmodel = _converted(name)  # read only
    value = results[0].value
    int8_logits = np.asarray(qmodel(x))
    float_logits = np.asarray(_BUILD[name]()(x))
    got = np.asarray(value).reshape(int8_logits.shape)
    step = float(qmodel[-2].scale)
    return {
        "agree_float": float(np.mean(got.argmax(1) == float_logits.argmax(1))),
        "agree_int8": float(np.mean(got.argmax(1) == int8_logits.argmax(1))),
        "int8_steps_off": int(np.max(np.rint(np.abs(got - int8_logits) / step))),
    }


def run(reps: int, quick: bool) -> list[BenchRecord]:
    """Every model, 2 and 3 parties, in-process with the trusted dealer."""
    rows = []
    for case in cases(quick):
        for world_size in (2, 3):
            extra = _int8_extra if "-int8" in case.name else None
            rows.append(suite_ops.measure(case, world_size, reps, "TrustedDealer", "models", extra))
    return rows
