"""Suite ``ops``: MPCTensor operations in-process (threads) with the TrustedDealer, for 2 and
3 parties: wall time, rounds, bytes per party, max error against float64, plaintext time.
CrypTen's published-in-the-issue numbers on a comparable 2-core machine are attached as
``crypten_ms`` (insecure local triples / secure dealer) where the issue gives them."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

import crypten_lite as cl
from benchmarks.cases_approx import approx_cases
from benchmarks.opcase import Array, OpCase
from benchmarks.record import BenchRecord, Timing, time_call
from crypten_lite.ring.backend import GEMM_THREADS_ENV
from crypten_lite.runtime.testing import run_parties

__all__ = ["PartyResult", "cases", "measure", "one_blas_thread", "record_of", "run", "run_case"]

SUITE = "ops"


def _uniform(
    *shape: int, low: float = -4.0, high: float = 4.0
) -> Callable[[np.random.Generator], list[Array]]:
    return lambda data: [data.uniform(low, high, size=shape)]


def _pair(*shapes: tuple[int, ...]) -> Callable[[np.random.Generator], list[Array]]:
    return lambda data: [data.uniform(-4, 4, size=s) for s in shapes]


def cases(quick: bool) -> list[OpCase]:
    scale = 100 if quick else 1
    n5, n6 = 100_000 // scale, 1_000_000 // scale
    m_small, m_big = (32, 64) if quick else (256, 1024)
    linear = [
        OpCase("mul", {"n": n5}, _pair((n5,), (n5,)), lambda x, y: x * y, np.multiply),
        OpCase("mul", {"n": n6}, _pair((n6,), (n6,)), lambda x, y: x * y, np.multiply, (102, 119)),
        OpCase(
            "matmul",
            {"n": m_small},
            _pair((m_small, m_small), (m_small, m_small)),
            lambda x, y: x @ y,
            np.matmul,
        ),
        OpCase(
            "matmul",
            {"n": m_big},
            _pair((m_big, m_big), (m_big, m_big)),
            lambda x, y: x @ y,
            np.matmul,
            (624, 653),
        ),
    ]
    return linear + _comparison_cases(quick) + approx_cases(quick)


def _comparison_cases(quick: bool) -> list[OpCase]:
    scale = 100 if quick else 1
    n5 = 100_000 // scale
    batch = 2 if quick else 32
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    return [
        OpCase("relu", {"n": n5}, _uniform(n5), lambda x: x.relu(), relu, (178, 236)),
        OpCase(
            "lt",
            {"n": n5},
            _pair((n5,), (n5,)),
            lambda x, y: x < y,
            lambda a, b: (a < b).astype(float),
            (178, 201),
        ),
        OpCase(
            "lt",
            {"n": n5, "comparison_rounds": 4},
            _pair((n5,), (n5,)),
            lambda x, y: _with_comparison_rounds(x, 4, lambda: x < y),
            lambda a, b: (a < b).astype(float),
            (178, 201),
        ),
        OpCase("max", {"n": n5}, _uniform(n5), lambda x: x.max(), np.max),
        OpCase(
            "max_pool2d",
            {"x": [batch, 16, 28, 28], "k": 2},
            _uniform(batch, 16, 28, 28),
            lambda x: x.max_pool2d(2),
            lambda a: a.reshape(batch, 16, 14, 2, 14, 2).max(axis=(3, 5)),
        ),
    ]


def _with_comparison_rounds(
    x: cl.MPCTensor, rounds: Literal[3, 4], op: Callable[[], cl.MPCTensor]
) -> cl.MPCTensor:
    """Run ``op`` with ``SessionConfig(comparison_rounds=rounds)`` on ``x``'s session (every
    party runs the same case, so all switch together)."""
    session = x.session
    saved = session.config
    session.config = dataclasses.replace(saved, comparison_rounds=rounds)
    try:
        return op()
    finally:
        session.config = saved


@dataclass(frozen=True)
class PartyResult:
    """What one party measured for one case (JSON-friendly)."""

    samples: list[float]
    rounds: int
    bytes_sent: int
    value: list[float]


def run_case(session: cl.Session, case: OpCase, reps: int) -> PartyResult:
    """Share the case's inputs, warm up, time ``reps`` runs of the secure op on this party
    and reveal the last result (the same code in threads and in launched processes)."""
    secure = case.secure if case.prepare is None else functools.partial(case.secure, case.prepare())
    inputs = case.inputs(np.random.default_rng(11))
    shared = [cl.cryptensor(a, src=i % session.world_size) for i, a in enumerate(inputs)]
    secure(*shared)  # warm-up (also primes caches and the dealer)
    samples = []
    session.stats.reset()
    out = None
    for _ in range(reps):
        start = time.perf_counter()
        out = secure(*shared)
        samples.append(time.perf_counter() - start)
    stats = session.stats.snapshot()
    value = np.asarray(out.get_plain_text() if out is not None else [], dtype=np.float64)
    return PartyResult(
        samples, stats.rounds // reps, stats.bytes_sent // reps, value.ravel().tolist()
    )


def record_of(
    case: OpCase,
    results: list[PartyResult],
    world_size: int,
    reps: int,
    provider: str,
    transport: str,
    suite: str = SUITE,
) -> BenchRecord:
    """One benchmark row from every party's result (and ``party0_ms``, party 0's own median,
    the statistic CrypTen's reference scripts report): wall time of the slowest party per
    repetition, party 0's rounds, the largest bytes sent by any party, error vs float64."""
    inputs = case.inputs(np.random.default_rng(11))
    plain_t = time_call(lambda: case.plain(*inputs), reps)
    expected = np.asarray(case.plain(*inputs), dtype=np.float64).ravel()
    walls = [max(r.samples[i] for r in results) for i in range(reps)]
    got = np.asarray(results[0].value)
    err = float(np.max(np.abs(got - expected))) if expected.size else 0.0
    extra: dict[str, Any] = {
        "bytes_sent_party0": results[0].bytes_sent,
        "party0_ms": round(statistics.median(results[0].samples) * 1e3, 2),
    }
    if case.crypten_ms is not None:
        factor = 1 if world_size == 2 else 3  # the issue: "with 3 parties roughly 3x those"
        extra["crypten_ms_insecure"] = case.crypten_ms[0] * factor
        extra["crypten_ms_secure"] = case.crypten_ms[1] * factor
    return BenchRecord.from_timing(
        suite,
        case.name,
        Timing(statistics.median(walls), min(walls), reps),
        params={**case.params, "provider": provider},
        parties=world_size,
        transport=transport,
        rounds=results[0].rounds,
        bytes_sent_per_party=max(r.bytes_sent for r in results),
        max_abs_err=err,
        plaintext_s=plain_t.median,
        extra=extra,
    )


def one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """One BLAS thread per party, as in CrypTen's reference runs ("1 thread each"): with the
    parties as threads of one process that means one BLAS thread overall (threadpoolctl, a
    dev dependency; without it the BLAS default stays), and one thread per native ring GEMM
    (``CRYPTEN_LITE_GEMM_THREADS=1``)."""
    stack = contextlib.ExitStack()
    stack.enter_context(environment({GEMM_THREADS_ENV: "1"}))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return stack
    stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
    return stack


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore what was there before."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def measure(
    case: OpCase,
    world_size: int,
    reps: int,
    provider: str,
    suite: str = SUITE,
    extra: Callable[[OpCase, list[PartyResult]], dict[str, Any]] | None = None,
) -> BenchRecord:
    """One in-process row; ``extra(case, results)`` adds columns to the record's extra."""
    with one_blas_thread():
        results = run_parties(
            lambda session: run_case(session, case, reps),
            world_size,
            provider=provider,
            timeout_s=3600,
        )
    row = record_of(case, results, world_size, reps, provider, "inprocess", suite)
    if extra is None:
        return row
    return dataclasses.replace(row, extra={**row.extra, **extra(case, results)})


def run(reps: int, quick: bool) -> list[BenchRecord]:
    """Every case for 2 and 3 parties with the trusted dealer."""
    rows = []
    for case in cases(quick):
        for world_size in (2, 3):
            rows.append(measure(case, world_size, reps, "TrustedDealer"))
    return rows
