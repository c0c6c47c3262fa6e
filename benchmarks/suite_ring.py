"""Suite ``ring``: L0 kernels against numpy uint64 and float64 in the same run."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from functools import partial

import numpy as np

from benchmarks.record import BenchRecord, time_call
from crypten_lite.encoding import FixedPointEncoder
from crypten_lite.encoding import compiled_available as encoding_compiled
from crypten_lite.ring import _gemm, _ring_np
from crypten_lite.ring.backend import PURE_ENV_VAR, compiled_available, kernels_for
from crypten_lite.ring.prg import AesCtrPrg

__all__ = ["run"]

SUITE = "ring"


def _backends() -> list[str]:
    return ["cython", "numpy"] if compiled_available() else ["numpy"]


def _matmul_rows(sizes: list[int], reps: int, data: np.random.Generator) -> Iterator[BenchRecord]:
    for n in sizes:
        a = data.integers(0, 2**64, size=(n, n), dtype=np.uint64)
        b = data.integers(0, 2**64, size=(n, n), dtype=np.uint64)
        fa, fb = a.astype(np.float64), b.astype(np.float64)
        float_t = time_call(partial(np.matmul, fa, fb), reps)
        uint_reps = 1 if n >= 1024 else reps
        uint_t = time_call(partial(np.matmul, a, b), uint_reps, warmup=0 if n >= 1024 else 1)
        reference = a @ b
        for backend in _backends():
            kernels = kernels_for(backend)
            result = _gemm.matmul(kernels, a, b)
            mismatches = int(np.count_nonzero(result != reference))
            t = time_call(partial(_gemm.matmul, kernels, a, b), reps)
            yield BenchRecord.from_timing(
                SUITE,
                "matmul",
                t,
                params={"m": n, "k": n, "n": n, "backend": backend},
                parties=1,
                transport="none",
                max_abs_err=float(mismatches),
                plaintext_s=float_t.median,
                extra={
                    "numpy_uint64_s": uint_t.median,
                    "speedup_vs_numpy_uint64": uint_t.median / t.median,
                    "slowdown_vs_float64": t.median / float_t.median,
                },
            )


def _conv_rows(reps: int, quick: bool, data: np.random.Generator) -> Iterator[BenchRecord]:
    batch = 4 if quick else 32
    x = data.integers(0, 2**64, size=(batch, 16, 28, 28), dtype=np.uint64)
    w = data.integers(0, 2**64, size=(32, 16, 3, 3), dtype=np.uint64)
    fx, fw = x.astype(np.float64), w.astype(np.float64)
    cols, _ = _ring_np.im2col(fx[None], (3, 3), (1, 1), (1, 1), (1, 1), 1)
    float_t = time_call(partial(np.matmul, fw.reshape(32, -1), cols[0, 0]), reps)
    for backend in _backends():
        kernels = kernels_for(backend)
        t = time_call(partial(_gemm.conv_nd, kernels, x, w, (1, 1), (1, 1), (1, 1), 1), reps)
        yield BenchRecord.from_timing(
            SUITE,
            "conv2d",
            t,
            params={"x": list(x.shape), "w": list(w.shape), "padding": 1, "backend": backend},
            parties=1,
            transport="none",
            plaintext_s=float_t.median,
            extra={"slowdown_vs_float64_gemm": t.median / float_t.median},
        )


def _encoding_rows(reps: int, quick: bool, data: np.random.Generator) -> Iterator[BenchRecord]:
    n = 10_000 if quick else 1_000_000
    values = data.normal(size=n) * 100
    enc = FixedPointEncoder(16)
    backends = ["cython", "numpy"] if encoding_compiled() else ["numpy"]
    for backend in backends:
        pure = "1" if backend == "numpy" else "0"
        with _pure_env(pure):
            encoded = enc.encode(values)
            err = float(np.max(np.abs(enc.decode(encoded) - values)))
            for name, fn in (
                ("encode", partial(enc.encode, values)),
                ("decode", partial(enc.decode, encoded)),
            ):
                t = time_call(fn, reps)
                yield BenchRecord.from_timing(
                    SUITE,
                    name,
                    t,
                    params={"n": n, "precision": 16, "backend": backend},
                    parties=1,
                    transport="none",
                    max_abs_err=err,
                    extra={"M_elements_per_s": n / t.median / 1e6},
                )


def _prg_rows(reps: int, quick: bool) -> Iterator[BenchRecord]:
    n = 10_000 if quick else 1_000_000
    prg = AesCtrPrg.generate()
    for name, fn, nbytes in (
        ("prg_ring_elements", partial(prg.ring_elements, n), 8 * n),
        ("prg_random_bits", partial(prg.random_bits, n), n // 8),
    ):
        t = time_call(fn, reps)
        yield BenchRecord.from_timing(
            SUITE,
            name,
            t,
            params={"n": n, "aes": 128},
            parties=1,
            transport="none",
            extra={"keystream_GB_per_s": nbytes / t.median / 1e9},
        )


@contextlib.contextmanager
def _pure_env(value: str) -> Iterator[None]:
    old = os.environ.get(PURE_ENV_VAR)
    os.environ[PURE_ENV_VAR] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(PURE_ENV_VAR, None)
        else:
            os.environ[PURE_ENV_VAR] = old


def run(reps: int, quick: bool) -> list[BenchRecord]:
    """All rows of the suite; ``quick`` shrinks sizes for a smoke run."""
    data = np.random.default_rng(7)  # benchmark inputs only, never secret
    sizes = [64, 128] if quick else [256, 512, 1024]
    rows = list(_matmul_rows(sizes, reps, data))
    rows.extend(_conv_rows(reps, quick, data))
    rows.extend(_encoding_rows(reps, quick, data))
    rows.extend(_prg_rows(reps, quick))
    return rows
