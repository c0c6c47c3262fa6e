"""Private inference on handwritten digits.

Run with ``crypten-lite-launch -n 2 examples/private_inference.py`` (or ``-n 3``).

Party 0 is the model owner, party ``1 % N`` the data owner (with 3 parties, party 2 only
helps compute). Two models — an MLP 64-32-10 and a small CNN — are trained in plain numpy on
scikit-learn's bundled digits (``examples/train_digits.py``, a fixed seed, so every party
trains the same weights, but only party 0's values are used: ``encrypt(src=0)`` takes the
others' as mere shapes). The model owner secret-shares its weights, the data owner
secret-shares the test images in batches, the parties run the ``crypten_lite.nn`` model on
the shares and reveal the logits.

Demo simplifications: the logits are revealed to every party (a deployment would reveal
them to the data owner only, ``get_plain_text(dst=data_owner)``), and party 0 checks them
against the same model run in plaintext on the public test split.

Options: ``--model mlp|cnn|both`` (default both), ``--limit N`` test images, ``--batch B``.

``--int8`` runs the int8 path instead (``crypten_lite.quantization``): the trained float model
gets a QuantStub/DeQuantStub, Linear/Conv2d+ReLU are fused, ``prepare`` attaches observers
(``mpc_qconfig``: per-channel symmetric int8 weights in [-127, 127], quint8 activations;
``--observer minmax|histogram``), the digits training split calibrates it, ``convert`` makes
the int8 model and ``encrypt_quantized`` its secret-shared twin (int8 weights shared by party
0, scales public). The data owner quantizes its images locally with the model's public input
qparams and shares the integers (``share_quantized``). Printed: agreement of the private
argmax with the float model and with the plaintext int8 model, and the logits that differ from
the plaintext int8 model by one step (requantization ties, docs/quantization.md).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import train_digits

import crypten_lite as cl
from crypten_lite import nn
from crypten_lite import quantization as quant
from crypten_lite.quantization.encrypted import encrypt_quantized, share_quantized

MODEL_OWNER = 0


def build_mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def build_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10)
    )


@dataclass(frozen=True)
class Result:
    name: str
    images: int
    plain_accuracy: float
    private_accuracy: float
    agreement: float
    max_abs_error: float
    rounds: int
    mb_sent: float
    mb_received: float
    comm_seconds: float
    wall_seconds: float


def trained_model(name: str, x_train: Any, y_train: Any) -> tuple[nn.Sequential, tuple[int, ...]]:
    """The float model ``name`` trained on the digits split, and its per-image input shape."""
    shape: tuple[int, ...] = (64,) if name == "mlp" else (1, 8, 8)
    if name == "mlp":
        model, state = build_mlp(), train_digits.train_mlp(x_train, y_train)
    else:
        model, state = build_cnn(), train_digits.train_cnn(x_train, y_train)
    model.load_state_dict(state).eval()
    return model, shape


def run_model(
    name: str, x_train: Any, y_train: Any, x_test: Any, y_test: Any, batch: int
) -> Result:
    """Train (plaintext), encrypt from the model owner, infer privately on the data owner's
    ``x_test`` in batches; every party calls this with the same arguments."""
    session = cl.current_session()
    data_owner = 1 % session.world_size
    model, shape = trained_model(name, x_train, y_train)
    plain_logits = np.asarray(model(x_test.reshape(-1, *shape)))  # same code, plaintext

    session.stats.reset()
    start = time.perf_counter()
    model.encrypt(src=MODEL_OWNER)
    revealed = []
    for lo in range(0, len(x_test), batch):
        images = x_test[lo : lo + batch].reshape(-1, *shape)
        x_shared = cl.cryptensor(images if session.rank == data_owner else None, src=data_owner)
        revealed.append(np.asarray(model(x_shared).get_plain_text()))
    wall = time.perf_counter() - start
    stats = session.stats.snapshot()
    private_logits = np.concatenate(revealed)
    return Result(
        name=name,
        images=len(x_test),
        plain_accuracy=train_digits.accuracy(plain_logits, y_test),
        private_accuracy=train_digits.accuracy(private_logits, y_test),
        agreement=float(np.mean(private_logits.argmax(1) == plain_logits.argmax(1))),
        max_abs_error=float(np.max(np.abs(private_logits - plain_logits))),
        rounds=stats.rounds,
        mb_sent=stats.bytes_sent / 1e6,
        mb_received=stats.bytes_received / 1e6,
        comm_seconds=stats.seconds,
        wall_seconds=wall,
    )


@dataclass(frozen=True)
class Int8Result:
    name: str
    images: int
    float_accuracy: float
    int8_accuracy: float
    private_accuracy: float
    agree_float: float
    agree_int8: float
    logits_off: int
    logits: int
    rounds: int
    mb_sent: float
    wall_seconds: float


def quantize_model(
    name: str, x_train: Any, y_train: Any, observer: str
) -> tuple[nn.Module, nn.Module, tuple[int, ...]]:
    """The trained float model and its int8 version: stubs, Linear/Conv+ReLU fused, observed
    on the training split (calibration), converted."""
    model, shape = trained_model(name, x_train, y_train)
    wrapped = nn.Sequential(quant.QuantStub(), *model, quant.DeQuantStub()).eval()
    fused = quant.fuse_modules(wrapped, [["1", "2"]])
    fused.qconfig = quant.mpc_qconfig(observer)  # type: ignore[attr-defined]
    calibration = x_train.reshape(-1, *shape)
    return model, quant.quantize(fused, lambda m, x: m(x), calibration), shape


def run_int8(
    name: str, x_train: Any, y_train: Any, x_test: Any, y_test: Any, batch: int, observer: str
) -> Int8Result:
    """Calibrate + convert (plaintext), encrypt the int8 model from the model owner, infer on
    the data owner's quantized images; every party calls this with the same arguments."""
    session = cl.current_session()
    data_owner = 1 % session.world_size
    model, qmodel, shape = quantize_model(name, x_train, y_train, observer)
    images = x_test.reshape(-1, *shape)
    float_logits = np.asarray(model(images))
    int8_logits = np.asarray(qmodel(images))
    out_scale = float(qmodel[-2].scale)

    session.stats.reset()
    start = time.perf_counter()
    private_model = encrypt_quantized(qmodel, src=MODEL_OWNER)  # qmodel is replaced in place
    revealed = []
    for lo in range(0, len(images), batch):
        mine = images[lo : lo + batch] if session.rank == data_owner else None
        x_shared = share_quantized(private_model, mine, src=data_owner)
        revealed.append(np.asarray(private_model(x_shared).get_plain_text()))
    wall = time.perf_counter() - start
    stats = session.stats.snapshot()
    private_logits = np.concatenate(revealed)
    steps_off = np.abs(np.rint((private_logits - int8_logits) / out_scale))
    return Int8Result(
        name=name,
        images=len(images),
        float_accuracy=train_digits.accuracy(float_logits, y_test),
        int8_accuracy=train_digits.accuracy(int8_logits, y_test),
        private_accuracy=train_digits.accuracy(private_logits, y_test),
        agree_float=float(np.mean(private_logits.argmax(1) == float_logits.argmax(1))),
        agree_int8=float(np.mean(private_logits.argmax(1) == int8_logits.argmax(1))),
        logits_off=int(np.count_nonzero(steps_off)),
        logits=int(steps_off.size),
        rounds=stats.rounds,
        mb_sent=stats.bytes_sent / 1e6,
        wall_seconds=wall,
    )


def print_int8(results: list[Int8Result], world: int, batch: int) -> None:
    print(
        f"private int8 inference on {results[0].images} digits test images, {world} parties "
        f"(model owner 0, data owner {1 % world}), batches of {batch}"
    )
    for r in results:
        print(
            f"{r.name}-int8: float accuracy {r.float_accuracy:.2%}, int8 accuracy "
            f"{r.int8_accuracy:.2%}, private accuracy {r.private_accuracy:.2%}, agreement "
            f"with float {r.agree_float:.4f}, with int8 {r.agree_int8:.4f}, logits one step "
            f"off int8 {r.logits_off}/{r.logits}"
        )
        print(
            f"{r.name}-int8 cost (party 0): {r.rounds} rounds, {r.mb_sent:.1f} MB sent, "
            f"{r.wall_seconds:.2f} s wall"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mlp", "cnn", "both"), default="both")
    parser.add_argument("--limit", type=int, default=None, help="first N test images only")
    parser.add_argument("--batch", type=int, default=150, help="images per private batch")
    parser.add_argument("--int8", action="store_true", help="int8 quantized models instead")
    parser.add_argument("--observer", choices=("minmax", "histogram"), default="minmax")
    args = parser.parse_args(argv)
    session = cl.current_session()
    rank, world = session.rank, session.world_size

    x_train, x_test, y_train, y_test = train_digits.load_split()
    x_test, y_test = x_test[: args.limit], y_test[: args.limit]
    names = ("mlp", "cnn") if args.model == "both" else (args.model,)
    if args.int8:
        int8 = [
            run_int8(n, x_train, y_train, x_test, y_test, args.batch, args.observer) for n in names
        ]
        if rank == MODEL_OWNER:
            print_int8(int8, world, args.batch)
        else:
            role = "data owner" if rank == 1 % world else "helper"
            print(f"party {rank}/{world} ({role}): done, {len(x_test)} images per int8 model")
        return
    results = [run_model(n, x_train, y_train, x_test, y_test, args.batch) for n in names]

    if rank != MODEL_OWNER:
        role = "data owner" if rank == 1 % world else "helper"
        print(f"party {rank}/{world} ({role}): done, {len(x_test)} images per model")
        return
    print(
        f"private inference on {len(x_test)} digits test images, {world} parties "
        f"(model owner 0, data owner {1 % world}), batches of {args.batch}"
    )
    for r in results:
        print(
            f"{r.name}: plaintext accuracy {r.plain_accuracy:.2%}, private accuracy "
            f"{r.private_accuracy:.2%}, agreement {r.agreement:.4f}, "
            f"max |private - plaintext logit| {r.max_abs_error:.1e}"
        )
        print(
            f"{r.name} cost (party 0): {r.rounds} rounds, {r.mb_sent:.1f} MB sent, "
            f"{r.mb_received:.1f} MB received, {r.comm_seconds:.2f} s communicating, "
            f"{r.wall_seconds:.2f} s wall"
        )


if __name__ == "__main__":
    main()
