"""Suite ``offline``: the offline/online split.

* ``generate``: offline generation rate of one request per kind (elements and MB of the
  stores per second), the work the dealer does ahead of the job.
* ``store-size``: store bytes (all parties) per 10^6 multiplications and per LeNet (batch
  32) inference, from plans recorded by a dry run.
* ``online`` rows beside ``dealer`` rows: the linear ops (mul 1e5/1e6, matmul 256/1024, the
  LeNet-style conv2d) in process and over gRPC with mutual TLS, 2 and 3 parties, with the
  dealer online and served from stores (no dealer rank). Same measuring code as ``ops``.
  Each row carries CrypTen's time for the same case measured on this machine
  (``crypten_ttp_ms``, from ``results/crypten-reference-linear-*p-TTP.json``) and the
  speed-up over it (``x_crypten``).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import suite_models, suite_ops
from benchmarks.opcase import OpCase
from benchmarks.record import BenchRecord, Timing
from crypten_lite.config import SessionConfig
from crypten_lite.providers.store import Plan, write_stores
from crypten_lite.runtime import LaunchOptions, launch, record_plan
from crypten_lite.runtime.testing import run_parties

__all__ = ["cases", "run", "run_grpc"]

SUITE = "offline"


def cases(quick: bool) -> list[OpCase]:
    """The linear cases of ``ops`` plus the LeNet-style conv2d (private input and weight)."""
    linear = [c for c in suite_ops.cases(quick) if c.name in ("mul", "matmul")]
    batch = 2 if quick else 32
    conv = OpCase(
        "conv2d",
        {"x": [batch, 6, 14, 14], "w": [16, 6, 5, 5]},
        lambda data: [
            data.uniform(-1, 1, (batch, 6, 14, 14)),
            data.uniform(-0.2, 0.2, (16, 6, 5, 5)),
        ],
        lambda x, w: x.conv2d(w),
        lambda a, b: _plain_conv(a, b),
    )
    return [*linear, conv]


def _plain_conv(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    from crypten_lite.tensor import plain

    return plain.conv2d(a, w, (1, 1), (0, 0), (1, 1), 1)


#: CrypTen 0.4.1 measured on this machine (its trusted third party, gloo without TLS; see
#: ``benchmarks/crypten_reference.py``), per party count: the like-for-like reference row.
_CRYPTEN_MEASURED = Path(__file__).parent / "results" / "crypten-reference-linear-{world}p-TTP.json"


def _crypten_key(case: OpCase) -> str:
    """The row name ``crypten_reference.py`` uses for ``case``."""
    if case.name == "conv2d":
        x, w = case.params["x"], case.params["w"]
        return f"conv2d [{','.join(map(str, x))}]*[{','.join(map(str, w))}]"
    n = int(case.params["n"])
    size = f"1e{len(str(n)) - 1}" if case.name == "mul" and str(n).strip("0") == "1" else str(n)
    return f"{case.name} {size}"


@functools.cache
def _crypten_seconds(world: int) -> dict[str, float]:
    """CrypTen's measured seconds per row name for ``world`` parties (read once), or {}."""
    path = Path(str(_CRYPTEN_MEASURED).format(world=world))
    if not path.exists():
        return {}
    seconds: dict[str, float] = json.loads(path.read_text())["seconds"]
    return seconds


def with_crypten(row: BenchRecord, case: OpCase, world: int) -> BenchRecord:
    """``row`` with CrypTen's measured time for the same case (``crypten_ttp_ms``) and our
    speed-up over it where the reference has the row: ``x_crypten`` against our row time (the
    slowest party per repetition, the stricter statistic) and ``x_crypten_party0`` against
    party 0's own median, the statistic CrypTen's reference uses."""
    seconds = _crypten_seconds(world).get(_crypten_key(case))
    if seconds is None:
        return row
    speedup = seconds / max(row.wall_s_median, 1e-12)
    extra = {**row.extra, "crypten_ttp_ms": round(seconds * 1e3, 1), "x_crypten": round(speedup, 2)}
    party0_ms = row.extra.get("party0_ms")
    if isinstance(party0_ms, float | int) and party0_ms > 0:
        # CrypTen's reference is the median of party 0's own timings: the same statistic
        extra["x_crypten_party0"] = round(seconds * 1e3 / party0_ms, 2)
    return dataclasses.replace(row, extra=extra)


def _plan(case: OpCase, world: int, reps: int) -> Plan:
    """The requests of ``run_case`` (warm-up, ``reps`` timed runs, the reveal)."""
    return record_plan(lambda s: suite_ops.run_case(s, case, reps), world)


def _generation_rows(quick: bool) -> list[BenchRecord]:
    scale = 100 if quick else 1
    from crypten_lite.protocols import comparison

    n5, n6 = 100_000 // scale, 1_000_000 // scale
    kinds: list[tuple[str, dict[str, Any], tuple[str, Any], int]] = [
        ("mul", {"n": n6}, ("mul", ((n6,), (n6,))), n6),
        ("matmul", {"n": 256}, ("matmul", ((256, 256), (256, 256))), 256 * 256),
        ("ltz", {"n": n5}, ("monomials", ((n5,), *comparison._params_tail("ltz"))), n5),
        ("relu", {"n": n5}, ("monomials", ((n5,), *comparison._params_tail("select"))), n5),
    ]
    rows = []
    for name, params, request, elements in kinds:
        for world in (2, 3):
            with tempfile.TemporaryDirectory(prefix="crypten-lite-offline-") as tmp:
                summary = write_stores((request,), world, Path(tmp) / "s", "bench")
            total = sum(summary.sizes)
            rows.append(BenchRecord.from_timing(
                SUITE, "generate", Timing(summary.seconds, summary.seconds, 1),
                params={**params, "kind": name}, parties=world, transport="offline",
                extra={"elements_per_s": round(elements / summary.seconds),
                       "MB_per_s": round(total / summary.seconds / 1e6, 1),
                       "store_MB": round(total / 1e6, 2)},
            ))
    return rows


def _store_size_rows(quick: bool) -> list[BenchRecord]:
    n6 = 1_000_000 // (100 if quick else 1)
    lenet_case = next(c for c in suite_models.cases(quick) if c.name == "lenet")
    rows = []
    for world in (2, 3):
        plans = (
            ("per 1e6 mul", record_plan(lambda s: s.provider.get("mul", ((n6,), (n6,))), world)),
            ("per LeNet b32", record_plan(lambda s: _one_run(s, lenet_case), world)),
        )
        for name, plan in plans:
            with tempfile.TemporaryDirectory(prefix="crypten-lite-offline-") as tmp:
                summary = write_stores(plan, world, Path(tmp) / "s", "bench")
            rows.append(BenchRecord.from_timing(
                SUITE, "store-size", Timing(summary.seconds, summary.seconds, 1),
                params={"what": name, "requests": len(plan)}, parties=world, transport="offline",
                extra={"store_MB_all_parties": round(sum(summary.sizes) / 1e6, 2),
                       "store_MB_last_party": round(summary.sizes[-1] / 1e6, 2)},
            ))
    return rows


def _one_run(session: Any, case: OpCase) -> None:
    """One evaluation of ``case`` (the model encrypted first), nothing revealed."""
    import crypten_lite as cl

    secure = case.secure if case.prepare is None else functools.partial(case.secure, case.prepare())
    inputs = case.inputs(np.random.default_rng(11))
    secure(*[cl.cryptensor(a, src=i % session.world_size) for i, a in enumerate(inputs)])


def _online_inprocess(case: OpCase, world: int, reps: int) -> BenchRecord:
    plan = _plan(case, world, reps)
    with tempfile.TemporaryDirectory(prefix="crypten-lite-offline-") as tmp:
        write_stores(plan, world, Path(tmp) / "s", "bench")
        config = SessionConfig(provider="OfflineStore", store=str(Path(tmp) / "s"))
        with suite_ops.one_blas_thread():
            results = run_parties(lambda s: suite_ops.run_case(s, case, reps), world,
                                  config=config, timeout_s=3600)
    row = suite_ops.record_of(case, results, world, reps, "OfflineStore", "inprocess", SUITE)
    return dataclasses.replace(row, name=f"{case.name}-online")


def run(reps: int, quick: bool) -> list[BenchRecord]:
    """Generation rates, store sizes, and in-process rows with the dealer and from stores."""
    rows = _generation_rows(quick) + _store_size_rows(quick)
    for case in cases(quick):
        for world in (2, 3):
            dealer = with_crypten(suite_ops.measure(case, world, reps, "TrustedDealer", SUITE),
                                  case, world)
            online = with_crypten(_online_inprocess(case, world, reps), case, world)
            ratio = online.wall_s_median / max(dealer.wall_s_median, 1e-12)
            rows += [dealer, dataclasses.replace(
                online, extra={**online.extra, "vs_dealer_online": round(ratio, 3)})]
    return rows


_GRPC_SCRIPT = """
import json, sys
from dataclasses import asdict
import crypten_lite as cl
from benchmarks import suite_offline, suite_ops

out_dir, reps, quick = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
session = cl.current_session()
results = [asdict(suite_ops.run_case(session, c, reps)) for c in suite_offline.cases(quick)]
with open(f"{out_dir}/offline-{session.rank}.json", "w") as f:
    json.dump(results, f)
"""


def _launch_all(world: int, reps: int, quick: bool, store: Path | None) -> list[list[Any]]:
    with tempfile.TemporaryDirectory(prefix="crypten-lite-offline-grpc-") as tmp:
        script = Path(tmp) / "offline_grpc.py"
        script.write_text(_GRPC_SCRIPT)
        session = SessionConfig() if store is None else SessionConfig(
            provider="OfflineStore", store=str(store))
        log = io.StringIO()
        code = launch(script, [tmp, str(reps), "1" if quick else "0"],
                      LaunchOptions(world_size=world, timeout_s=600, session=session,
                                    blas_threads=1),
                      stdout=log, stderr=log)
        if code != 0:
            raise RuntimeError(f"offline suite over gRPC failed:\n{log.getvalue()}")
        per_rank = [
            json.loads((Path(tmp) / f"offline-{r}.json").read_text()) for r in range(world)
        ]
    return [[suite_ops.PartyResult(**per_rank[r][i]) for r in range(world)]
            for i in range(len(per_rank[0]))]


def run_grpc(reps: int, quick: bool) -> list[BenchRecord]:
    """The linear cases between launched processes over gRPC with mutual TLS: dealer online,
    then from stores generated ahead (generation time not included)."""
    rows = []
    all_cases = cases(quick)
    for world in (2, 3):
        dealer = _launch_all(world, reps, quick, None)
        plan = record_plan(
            lambda s: [suite_ops.run_case(s, c, reps) for c in all_cases], world)
        with tempfile.TemporaryDirectory(prefix="crypten-lite-offline-") as tmp:
            start = time.perf_counter()
            write_stores(plan, world, Path(tmp) / "s", "bench")
            generation_s = time.perf_counter() - start
            online = _launch_all(world, reps, quick, Path(tmp) / "s")
        for case, d, o in zip(all_cases, dealer, online, strict=True):
            drow = with_crypten(
                suite_ops.record_of(case, d, world, reps, "TrustedDealer", "grpc-mtls", SUITE),
                case, world)
            orow = with_crypten(
                suite_ops.record_of(case, o, world, reps, "OfflineStore", "grpc-mtls", SUITE),
                case, world)
            ratio = orow.wall_s_median / max(drow.wall_s_median, 1e-12)
            rows += [drow, dataclasses.replace(
                orow, name=f"{case.name}-online",
                extra={**orow.extra, "vs_dealer_online": round(ratio, 3),
                       "plan_generation_s": round(generation_s, 2)})]
    return rows
