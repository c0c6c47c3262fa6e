"""Suites ``ops-grpc`` and ``models-grpc``: the ``ops`` / ``models`` cases between real
processes started by the launcher (parties + dealer on 127.0.0.1, gRPC with mutual TLS),
measured by the same code as the in-process suites (``suite_ops.run_case``), so the tables
compare directly."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

from benchmarks import suite_models, suite_ops
from benchmarks.record import BenchRecord
from crypten_lite.runtime import LaunchOptions, launch

__all__ = ["run", "run_models", "run_suite"]

_SCRIPT = """
import json, sys
from dataclasses import asdict
import crypten_lite as cl
from benchmarks import suite_explain, suite_models, suite_ops, suite_train

out_dir, reps, quick, suite = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
cases = {"ops": suite_ops.cases, "models": suite_models.cases, "train": suite_train.cases,
         "explain": suite_explain.cases}[suite](quick)
session = cl.current_session()
results = [asdict(suite_ops.run_case(session, case, reps)) for case in cases]
with open(f"{out_dir}/ops-{session.rank}.json", "w") as f:
    json.dump(results, f)
"""


def _one_blas_thread_per_process() -> contextlib.AbstractContextManager[None]:
    """Each launched rank runs BLAS on one thread (CrypTen's reference: 1 thread each)."""
    keys = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    return suite_ops.environment(dict.fromkeys(keys, "1"))


def _launch(
    world_size: int, reps: int, quick: bool, suite: str
) -> list[list[suite_ops.PartyResult]]:
    with tempfile.TemporaryDirectory(prefix="crypten-lite-ops-grpc-") as tmp:
        script = Path(tmp) / "ops_grpc.py"
        script.write_text(_SCRIPT)
        log = io.StringIO()
        with _one_blas_thread_per_process():
            code = launch(
                script,
                [tmp, str(reps), "1" if quick else "0", suite],
                LaunchOptions(world_size=world_size, timeout_s=600),
                stdout=log,
                stderr=log,
            )
        if code != 0:
            raise RuntimeError(f"ops over gRPC failed:\n{log.getvalue()}")
        per_rank = [
            json.loads((Path(tmp) / f"ops-{r}.json").read_text()) for r in range(world_size)
        ]
    # regroup: per case, the results of every rank
    return [
        [suite_ops.PartyResult(**per_rank[r][i]) for r in range(world_size)]
        for i in range(len(per_rank[0]))
    ]


def run_suite(suite: str, reps: int, quick: bool) -> list[BenchRecord]:
    """The cases of ``suite`` (``ops``, ``models``, ``train`` or ``explain``) over gRPC with
    mutual TLS, for 2 and 3 parties."""
    from benchmarks import suite_explain, suite_train  # they import this module

    cases = {
        "ops": suite_ops.cases,
        "models": suite_models.cases,
        "train": suite_train.cases,
        "explain": suite_explain.cases,
    }[suite](quick)
    rows = []
    for world_size in (2, 3):
        grouped = _launch(world_size, reps, quick, suite)
        for case, results in zip(cases, grouped, strict=True):
            rows.append(
                suite_ops.record_of(
                    case, results, world_size, reps, "TrustedDealer", "grpc-mtls", suite
                )
            )
    return rows


def run(reps: int, quick: bool) -> list[BenchRecord]:
    """Every ``ops`` case over gRPC with mutual TLS, for 2 and 3 parties."""
    return run_suite("ops", reps, quick)


def run_models(reps: int, quick: bool) -> list[BenchRecord]:
    """The ``models`` cases over gRPC with mutual TLS, for 2 and 3 parties."""
    return run_suite("models", reps, quick)
