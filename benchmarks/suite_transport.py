"""Suite ``transport``: the gRPC transport between real processes on 127.0.0.1, started by
the launcher (2 parties + dealer), with mutual TLS and, for reference, in plaintext:

After a warm-up of 32 MiB (the connection's flow-control windows grow from gRPC's
bandwidth-delay estimate; the first megabytes of a job are slower):

- ``throughput``: party 0 sends one uint64 tensor of 1-256 MiB to party 1, which answers
  with one element; the rate counts the whole exchange, so it includes one round trip
  (target: >= 0.5 GB/s with TLS);
- ``throughput-stream``: the sustained rate: party 0 sends a burst of tensors of one size
  back to back (at least 4, and 64 MiB in all for small sizes), party 1 answers once at the
  end; time per tensor;
- ``round``: one ``exchange`` of an 8-byte message each way (target: median <= 0.5 ms);
- ``mul``: a Beaver product of two shared tensors of 10^6 elements, beside the same product
  in-process (threads) in this process (target: within 2x).
"""

from __future__ import annotations

import io
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import crypten_lite as cl
from benchmarks.record import BenchRecord, Timing
from crypten_lite.runtime import LaunchOptions, launch, run_parties

__all__ = ["run"]

SUITE = "transport"

_SCRIPT = """
import json, sys, time
import numpy as np
import crypten_lite as cl

out_dir, reps, quick = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
s = cl.current_session()
comm, peer = s.comm, 1 - s.rank
result = {"throughput": {}, "stream": {}, "mul": {}}

sizes_mib = [1, 4] if quick else [1, 4, 16, 64, 256]
# Warm-up: a fresh connection starts with small HTTP/2 flow-control windows that gRPC grows
# from its bandwidth-delay estimate; measure the steady state, as a long job sees it.
warm = np.zeros((1 << 20) // 8, dtype=np.uint64)
for _ in range(4 if quick else 32):
    if s.rank == 0:
        comm.send(1, warm)
    else:
        comm.recv(0)
comm.exchange({peer: warm[:1]}, [peer])
for mib in sizes_mib:
    data = np.zeros(mib * (1 << 20) // 8, dtype=np.uint64)
    samples = []
    for rep in range(max(reps, 64 // mib) + 1):
        start = time.perf_counter()
        if s.rank == 0:
            comm.send(1, data)
            comm.recv(1)
        else:
            comm.recv(0)
            comm.send(0, data[:1])
        if rep:
            samples.append(time.perf_counter() - start)
    result["throughput"][mib] = samples
    burst = max(4, 64 // mib)
    samples = []
    for rep in range(reps + 1):
        start = time.perf_counter()
        if s.rank == 0:
            for _ in range(burst):
                comm.send(1, data)
            comm.recv(1)
        else:
            for _ in range(burst):
                comm.recv(0)
            comm.send(0, data[:1])
        if rep:
            samples.append((time.perf_counter() - start) / burst)
    result["stream"][mib] = {"burst": burst, "samples": samples}
    del data

small = np.arange(1, dtype=np.uint64)
rounds = []
for rep in range(200 if quick else 2000):
    start = time.perf_counter()
    comm.exchange({peer: small}, [peer])
    rounds.append(time.perf_counter() - start)
result["round"] = rounds[len(rounds) // 10:]  # drop the warm-up tenth

n = 10_000 if quick else 1_000_000
rng = np.random.default_rng(3)
x = cl.cryptensor(rng.uniform(-4, 4, n), src=0)
y = cl.cryptensor(rng.uniform(-4, 4, n), src=1)
x * y  # warm-up
s.stats.reset()
samples = []
for rep in range(reps):
    start = time.perf_counter()
    z = x * y
    samples.append(time.perf_counter() - start)
snap = s.stats.snapshot()
result["mul"] = {"n": n, "samples": samples, "rounds": snap.rounds // reps,
                 "bytes_sent": snap.bytes_sent // reps}
with open(f"{out_dir}/bench-{s.rank}.json", "w") as f:
    json.dump(result, f)
"""


def _launch_bench(reps: int, quick: bool, insecure: bool) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="crypten-lite-bench-") as tmp:
        script = Path(tmp) / "bench_transport.py"
        script.write_text(_SCRIPT)
        log = io.StringIO()
        code = launch(
            script,
            [tmp, str(reps), "1" if quick else "0"],
            LaunchOptions(world_size=2, timeout_s=120, insecure_plaintext=insecure),
            stdout=log,
            stderr=log,
        )
        if code != 0:
            raise RuntimeError(f"transport benchmark failed:\n{log.getvalue()}")
        return [json.loads((Path(tmp) / f"bench-{r}.json").read_text()) for r in (0, 1)]


def _timing(samples: list[float]) -> Timing:
    return Timing(statistics.median(samples), min(samples), len(samples))


def _inprocess_mul(n: int, reps: int) -> float:
    rng = np.random.default_rng(3)
    a, b = rng.uniform(-4, 4, n), rng.uniform(-4, 4, n)

    def job(session: cl.Session) -> list[float]:
        x, y = cl.cryptensor(a, src=0), cl.cryptensor(b, src=1)
        x * y
        samples = []
        for _ in range(reps):
            start = time.perf_counter()
            x * y
            samples.append(time.perf_counter() - start)
        return samples

    per_party = run_parties(job, 2, timeout_s=600)
    return statistics.median(max(p[i] for p in per_party) for i in range(reps))


def _throughput_row(
    name: str, mib: int, samples: list[float], params: dict[str, Any], transport: str
) -> BenchRecord:
    timing = _timing(samples)
    return BenchRecord.from_timing(
        SUITE,
        name,
        timing,
        params={"MiB": mib, **params},
        parties=2,
        transport=transport,
        rounds=1,
        bytes_sent_per_party=mib << 20,
        extra={
            "GB_per_s": (mib << 20) / timing.median / 1e9,
            **({"target_GB_per_s": 0.5} if transport == "grpc-mtls" else {}),
        },
    )


def _records(results: list[dict[str, Any]], transport: str, inproc_mul: float) -> list[BenchRecord]:
    rows = []
    tls = transport == "grpc-mtls"
    for mib, samples in results[0]["throughput"].items():
        rows.append(_throughput_row("throughput", int(mib), samples, {}, transport))
    for mib, stream in results[0]["stream"].items():
        burst = {"burst": stream["burst"]}
        rows.append(
            _throughput_row("throughput-stream", int(mib), stream["samples"], burst, transport)
        )
    rounds = results[0]["round"]
    timing = _timing(rounds)
    rows.append(
        BenchRecord.from_timing(
            SUITE,
            "round",
            timing,
            params={"bytes": 8},
            parties=2,
            transport=transport,
            rounds=1,
            bytes_sent_per_party=8,
            extra={
                "median_ms": timing.median * 1e3,
                "p90_ms": float(np.percentile(rounds, 90)) * 1e3,
                **({"target_ms": 0.5} if tls else {}),
            },
        )
    )
    mul = [r["mul"] for r in results]
    walls = [max(m["samples"][i] for m in mul) for i in range(len(mul[0]["samples"]))]
    timing = _timing(walls)
    rows.append(
        BenchRecord.from_timing(
            SUITE,
            "mul",
            timing,
            params={"n": mul[0]["n"]},
            parties=2,
            transport=transport,
            rounds=mul[0]["rounds"],
            bytes_sent_per_party=max(m["bytes_sent"] for m in mul),
            extra={
                "inprocess_s": inproc_mul,
                "ratio": timing.median / inproc_mul,
                **({"target_ratio": 2.0} if tls else {}),
            },
        )
    )
    return rows


def run(reps: int, quick: bool) -> list[BenchRecord]:
    """Throughput, round latency and mul over gRPC (mutual TLS, then plaintext)."""
    reps = max(reps, 3)
    inproc_mul = _inprocess_mul(10_000 if quick else 1_000_000, reps)
    rows = []
    for insecure in (False, True):
        results = _launch_bench(reps, quick, insecure)
        rows += _records(results, "grpc-plain" if insecure else "grpc-mtls", inproc_mul)
    return rows
