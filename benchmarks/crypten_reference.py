"""CrypTen on this machine, for a side-by-side reference (not part of ``crypten-lite-bench``).

The CrypTen numbers quoted in the issues come from other hardware; this script measures
CrypTen 0.4.1 here, with the same sizes and input ranges as ``crypten-lite-bench ops``, so
the comparison is like for like. CrypTen is not a dependency of crypten_lite: run it in a
separate virtual environment::

    python -m venv /tmp/cvenv
    /tmp/cvenv/bin/pip install torch==2.13.0 omegaconf onnx pandas pyyaml scipy future
    /tmp/cvenv/bin/pip install --no-deps crypten==0.4.1   # its metadata pins "sklearn"
    /tmp/cvenv/bin/python benchmarks/crypten_reference.py 2 TTP out.json [mul,matmul,conv2d]

(the optional last argument keeps the rows whose names start with one of its prefixes).

``TTP`` is CrypTen's trusted third party (its secure-dealer setting, a process of its own, as
our dealer), ``TFP`` its insecure local generation. Parties are processes talking gloo over
loopback, without TLS, one torch thread each; each row is the median of 5 timed runs after
one warm-up, measured on party 0. CrypTen 0.4.1 imports a torch.onnx module that torch 2.13
no longer has; a stub is installed for it (CrypTen's ONNX import is not used here).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import types
from collections.abc import Callable
from typing import Any

Case = tuple[Callable[[], tuple[Any, Any]], Callable[[Any, Any], Any]]


def _cases(torch: Any) -> dict[str, Case]:
    def uniform(low: float, high: float, *shape: int) -> Any:
        return torch.rand(*shape, dtype=torch.float64).float() * (high - low) + low

    return {
        "mul 1e5": (lambda: (uniform(-4, 4, 10**5), uniform(-4, 4, 10**5)), lambda x, y: x * y),
        "mul 1e6": (lambda: (uniform(-4, 4, 10**6), uniform(-4, 4, 10**6)), lambda x, y: x * y),
        "matmul 256": (
            lambda: (uniform(-1, 1, 256, 256), uniform(-1, 1, 256, 256)),
            lambda x, y: x.matmul(y),
        ),
        "conv2d [32,6,14,14]*[16,6,5,5]": (
            lambda: (uniform(-1, 1, 32, 6, 14, 14), uniform(-0.2, 0.2, 16, 6, 5, 5)),
            lambda x, w: x.conv2d(w),
        ),
        "matmul 1024": (
            lambda: (uniform(-1, 1, 1024, 1024), uniform(-1, 1, 1024, 1024)),
            lambda x, y: x.matmul(y),
        ),
        "relu 1e5": (lambda: (uniform(-4, 4, 10**5), None), lambda x, _: x.relu()),
        "lt 1e5": (lambda: (uniform(-4, 4, 10**5), uniform(-4, 4, 10**5)), lambda x, y: x.lt(y)),
        "exp 1e5": (lambda: (uniform(-4, 4, 10**5), None), lambda x, _: x.exp()),
        "sigmoid 1e5": (lambda: (uniform(-4, 4, 10**5), None), lambda x, _: x.sigmoid()),
        "reciprocal 1e5": (lambda: (uniform(1, 10, 10**5), None), lambda x, _: x.reciprocal()),
        "softmax 128x1000": (lambda: (uniform(-4, 4, 128, 1000), None), lambda x, _: x.softmax(1)),
    }


def _job(out: str, only: str) -> None:
    import crypten
    import crypten.communicator as comm
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    world = comm.get().get_world_size()
    medians: dict[str, float] = {}
    for name, (make, fn) in _cases(torch).items():
        if only and not name.startswith(tuple(only.split(","))):
            continue
        a, b = make()
        x = crypten.cryptensor(a, src=0)
        y = None if b is None else crypten.cryptensor(b, src=1 % world)
        fn(x, y)
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            fn(x, y)
            samples.append(time.perf_counter() - start)
        medians[name] = statistics.median(samples)
    if comm.get().get_rank() == 0:
        with open(out, "w") as f:
            json.dump({"parties": world, "seconds": medians}, f, indent=1)


def main(argv: list[str]) -> None:
    world, provider, out = int(argv[0]), argv[1], argv[2]
    only = argv[3] if len(argv) > 3 else ""
    stub = types.ModuleType("torch.onnx._internal.registration")
    stub.registry = None  # type: ignore[attr-defined]
    sys.modules.setdefault("torch.onnx._internal.registration", stub)
    import crypten
    from crypten.mpc.context import run_multiprocess

    crypten.cfg.mpc.provider = provider
    run_multiprocess(world)(_job)(out, only)


if __name__ == "__main__":
    main(sys.argv[1:])
