"""Benchmark records (the ``--json`` schema, one object per row) and the timing helper
shared by every suite."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["BenchRecord", "Timing", "time_call"]


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated calls."""

    median: float
    minimum: float
    reps: int


def time_call(fn: Callable[[], object], reps: int, warmup: int = 1) -> Timing:
    """Time ``fn`` ``reps`` times after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(max(reps, 1)):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Timing(statistics.median(samples), min(samples), len(samples))


@dataclass(frozen=True)
class BenchRecord:
    """One benchmark row; field names are the JSON schema of ``--json``."""

    suite: str
    name: str
    params: dict[str, Any]
    parties: int
    transport: str
    wall_s_median: float
    wall_s_min: float
    reps: int
    rounds: int = 0
    bytes_sent_per_party: int = 0
    max_abs_err: float = 0.0
    plaintext_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_timing(cls, suite: str, name: str, timing: Timing, **kwargs: Any) -> BenchRecord:
        return cls(
            suite=suite,
            name=name,
            wall_s_median=timing.median,
            wall_s_min=timing.minimum,
            reps=timing.reps,
            **kwargs,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
