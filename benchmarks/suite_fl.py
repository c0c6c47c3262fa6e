"""``fl`` suite: secure aggregation rounds (issue 9).

For each (clients, parameters) point:

* **client**: ``EdgeClient.submit_update`` of an int16 update (encode + seed-compressed split +
  request serialization) into links whose handler only records the share: the CPU seconds the
  SDK reports (``thread_time``), median over up to 20 clients; upload bytes (serialized
  requests to both servers) against the plaintext payload at the same precision
  (``num_elements · ring_bits / 8``).
* **server**: wall time of one round on 2 servers (threads, in-process hub between them, so
  the server-server part is *not* over gRPC here): the already-received uploads are submitted
  (validation, seed expansion on server 0, running sum), then agreement, sum and the opening
  of the aggregate. The max over the two servers per round, median over ``reps`` rounds.
  Decoding client requests off the wire (gRPC gateway) is not included.
* ``max_abs_err``: revealed aggregate vs the plaintext sum of the quantized updates (exact
  integer arithmetic: must be 0).
* Robust aggregation (the default range check in MPC) is in ``secagg_round`` (in-process:
  10/100 clients x 10^4/10^5 parameters; gRPC: 100 x 10^4 and the other gRPC points);
  ``check_s`` is its share of the round. ``secagg_nocheck`` rows (``range_check=False``) are
  the format-checks-only baseline, including the 500-client points.
"""

from __future__ import annotations

import io
import json
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.record import BenchRecord, Timing
from crypten_lite.client.edge_client import EdgeClient
from crypten_lite.client.links import DirectServerLink
from crypten_lite.edge.encode import decode_aggregate, encode_update
from crypten_lite.edge.messages import (
    InferenceQuery,
    InferenceShare,
    QuantSpec,
    RoundInfo,
    RoundState,
    UpdateShare,
)
from crypten_lite.fl import AggregationConfig, AggregationService
from crypten_lite.runtime import LaunchOptions, launch
from crypten_lite.runtime.testing import run_parties
from crypten_lite.session import Session

__all__ = ["run", "run_grpc"]

FULL = [(c, p) for p in (10_000, 100_000) for c in (10, 100)]
NOCHECK_FULL = [(c, p) for p in (10_000, 100_000) for c in (10, 100, 500)]
QUICK = [(4, 1_000)]
NORM_FULL = [(10, 10_000)]
NORM_QUICK = [(3, 200)]
GRPC_FULL = [(100, 10_000), (10, 10_000), (10, 100_000), (100, 100_000)]
GRPC_QUICK = [(3, 1_000)]
RING_BITS = 32
QUANT = QuantSpec("int16", 1.0)


class _Recorder:
    """An EdgeHandler that keeps what it is sent (the bench's stand-in for the network)."""

    def __init__(self) -> None:
        self.shares: dict[str, UpdateShare] = {}
        self._lock = threading.Lock()

    def round_info(self, client_id: str) -> RoundInfo:
        raise NotImplementedError

    def submit(self, client_id: str, share: UpdateShare) -> None:
        with self._lock:
            self.shares[client_id] = share

    def infer(self, client_id: str, query: InferenceQuery) -> InferenceShare:
        raise NotImplementedError


def _uploads(
    clients: int, params: int, rng: np.random.Generator, ring_bits: int = RING_BITS
) -> tuple[list[dict[str, UpdateShare]], list[float], list[int], int, np.ndarray]:
    info = RoundInfo(
        job_id="bench", round=1, state=RoundState.OPEN, num_elements=params,
        ring_bits=ring_bits, quant=QUANT, num_servers=2, server_index=0, min_clients=1,
    )
    recorders = [_Recorder(), _Recorder()]
    cpu, sizes = [], []
    total = np.zeros(params, np.int64)
    for i in range(clients):
        cid = f"client-{i}"
        x = rng.uniform(-0.05, 0.05, params)
        edge = EdgeClient([DirectServerLink(r, cid) for r in recorders])
        report = edge.submit_update(x, info)
        cpu.append(report.cpu_seconds)
        sizes.append(report.total_bytes)
        signed = np.int32 if ring_bits == 32 else np.int64
        total += encode_update(x, QUANT, ring_bits).view(signed)
        plain = report.plaintext_bytes
    unsigned = np.uint32 if ring_bits == 32 else np.uint64
    expected = decode_aggregate(total.astype(unsigned), QUANT, ring_bits)
    return [r.shares for r in recorders], cpu, sizes, plain, expected


def _server_rounds(
    shares: list[dict[str, UpdateShare]],
    expected: np.ndarray,
    clients: int,
    params: int,
    reps: int,
    norm_bound: float | None = None,
    range_check: bool = True,
) -> tuple[Timing, float, int, int, float]:
    config = AggregationConfig(
        job_id="bench", num_elements=params, ring_bits=32 if norm_bound is None else 64,
        quant=QUANT, min_clients=clients, expected_clients=clients, norm_bound=norm_bound,
        range_check=range_check,
    )
    start_line = threading.Barrier(2)

    def job(session: Session) -> tuple[list[float], float, int, int, list[float]]:
        svc = AggregationService(session, config)
        mine = shares[session.rank]
        walls, err, checks = [], 0.0, []
        before = session.stats.snapshot()
        for r in range(1, reps + 2):  # round 1 is the warm-up
            batch = [
                (cid, replace(s, round=r, nonce=r.to_bytes(4, "big") + s.nonce[4:]))
                for cid, s in mine.items()
            ]
            start_line.wait()
            t0 = time.perf_counter()
            svc.open_round(np.zeros(0))
            for cid, share in batch:
                svc.submit(cid, share)
            result = svc.close_and_aggregate(wait=False)
            walls.append(time.perf_counter() - t0)
            checks.append(result.check_s)
            if len(result.clients) != clients:
                raise RuntimeError(f"honest clients rejected: {result.rejected}")
            err = max(err, float(np.max(np.abs(result.aggregate - expected))))
            if r == 1:
                before = session.stats.snapshot()
        used = session.stats.snapshot() - before
        return walls[1:], err, used.rounds // reps, used.bytes_sent // reps, checks[1:]

    out = run_parties(job, 2, timeout_s=1800)
    per_round = [max(a, b) for a, b in zip(out[0][0], out[1][0], strict=True)]
    timing = Timing(statistics.median(per_round), min(per_round), len(per_round))
    check = statistics.median(max(a, b) for a, b in zip(out[0][4], out[1][4], strict=True))
    return timing, max(o[1] for o in out), out[0][2], max(o[3] for o in out), check


def _record(
    name: str, clients: int, params: int, ring_bits: int, transport: str, timing: Timing,
    rounds: int, sent: int, err: float, cpu: list[float], sizes: list[int], plain: int,
    **extra: float,
) -> BenchRecord:
    upload = int(statistics.median(sizes))
    return BenchRecord.from_timing(
        "fl", name, timing,
        params={"clients": clients, "params": params, "ring": ring_bits, "quant": QUANT.scheme},
        parties=2, transport=transport, rounds=rounds, bytes_sent_per_party=sent,
        max_abs_err=err,
        extra={
            "client_cpu_ms": statistics.median(cpu[:20]) * 1e3,
            "upload_B": upload,
            "plain_B": plain,
            "upload_ratio": upload / plain,
            "vs_int16_ratio": upload / (2 * params),
            **extra,
        },
    )


def run(reps: int, quick: bool) -> list[BenchRecord]:
    """Secure-aggregation rounds in-process; then rounds with the MPC norm bound (64-bit
    ring); each ``(clients, params)`` point once."""
    records = []
    rng = np.random.default_rng(0)
    points = QUICK if quick else NOCHECK_FULL
    checked = set(QUICK if quick else FULL)
    for clients, params in points:
        shares, cpu, sizes, plain, expected = _uploads(clients, params, rng)
        for name, check in (("secagg_round", True), ("secagg_nocheck", False)):
            if check and (clients, params) not in checked:
                continue
            timing, err, rounds, sent, check_s = _server_rounds(
                shares, expected, clients, params, max(1, reps), range_check=check
            )
            records.append(_record(name, clients, params, RING_BITS, "inprocess",
                                   timing, rounds, sent, err, cpu, sizes, plain,
                                   check_s=check_s))
        del shares
    for clients, params in NORM_QUICK if quick else NORM_FULL:
        shares, cpu, sizes, plain, expected = _uploads(clients, params, rng, ring_bits=64)
        timing, err, rounds, sent, check_s = _server_rounds(
            shares, expected, clients, params, max(1, reps), norm_bound=0.05 * params**0.5
        )
        records.append(_record("secagg_norm", clients, params, 64, "inprocess",
                               timing, rounds, sent, err, cpu, sizes, plain, check_s=check_s))
    return records


_GRPC_SCRIPT = """
import json, sys, time
import numpy as np
from crypten_lite.client.config import ClientConfig
from crypten_lite.edge.messages import QuantSpec, RoundState

out_dir, params, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
quant = QuantSpec("int16", 1.0)
config = ClientConfig.from_environment()
if config is not None:
    from crypten_lite.client.edge_client import EdgeClient
    index = int(config.client_id.rsplit("-", 1)[1])
    reports, last = [], 0
    with EdgeClient.connect(config) as edge:
        edge.poll_s = 0.005
        while True:
            info = edge.wait_for_round(after=last, timeout=600)
            if info.state is RoundState.FINISHED:
                break
            x = np.random.default_rng([index, info.round]).uniform(-0.05, 0.05, params)
            reports.append(edge.submit_update(x, info))
            last = info.round
    with open(f"{out_dir}/{config.client_id}.json", "w") as f:
        json.dump([[r.cpu_seconds, r.total_bytes, r.plaintext_bytes] for r in reports], f)
else:
    import crypten_lite as cl
    from crypten_lite.fl import AggregationConfig, AggregationService
    from crypten_lite.runtime import launched_clients
    session = cl.current_session()
    n = launched_clients()
    service = AggregationService(session, AggregationConfig(
        job_id="bench", num_elements=params, ring_bits=32, quant=quant, min_clients=n,
        expected_clients=n, first_round_timeout_s=300))
    session.comm.set_edge_handler(service)
    rows = []
    for _ in range(rounds + 1):
        t0, s0 = time.perf_counter(), session.stats.snapshot()
        result = service.run_round(np.zeros(0))
        used = session.stats.snapshot() - s0
        rows.append([time.perf_counter() - t0, result.collect_s, result.aggregate_s,
                     len(result.clients), used.rounds, used.bytes_sent, result.check_s])
    service.finish()
    time.sleep(1.5)
    np.save(f"{out_dir}/aggregate-{session.rank}.npy", result.aggregate)
    with open(f"{out_dir}/server-{session.rank}.json", "w") as f:
        json.dump(rows[1:], f)
"""


def run_grpc(reps: int, quick: bool) -> list[BenchRecord]:
    """Rounds between 2 launched servers (gRPC, mutual TLS, server-server over gRPC too) and
    real client processes. The round wall time runs from opening the round to the opened
    aggregate, so it includes the clients' polling latency, local encoding and the uploads;
    ``aggregate_s`` is the part after collection."""
    records = []
    rounds = max(1, reps)
    for clients, params in GRPC_QUICK if quick else GRPC_FULL:
        with tempfile.TemporaryDirectory(prefix="crypten-lite-fl-grpc-") as tmp:
            script = Path(tmp) / "fl_grpc.py"
            script.write_text(_GRPC_SCRIPT)
            log = io.StringIO()
            code = launch(
                script, [tmp, str(params), str(rounds)],
                LaunchOptions(world_size=2, clients=clients, timeout_s=600),
                stdout=log, stderr=log,
            )
            if code != 0:
                raise RuntimeError(f"fl over gRPC failed:\n{log.getvalue()}")
            servers = [json.loads((Path(tmp) / f"server-{r}.json").read_text()) for r in (0, 1)]
            reports = [
                row
                for i in range(clients)
                for row in json.loads((Path(tmp) / f"client-{i}.json").read_text())
            ]
            aggregate = np.load(Path(tmp) / "aggregate-0.npy")
        total = np.zeros(params, np.int64)
        for i in range(clients):
            x = np.random.default_rng([i, rounds + 1]).uniform(-0.05, 0.05, params)
            total += encode_update(x, QUANT, RING_BITS).view(np.int32)
        expected = decode_aggregate(total.astype(np.uint32), QUANT, RING_BITS)
        walls = [max(a[0], b[0]) for a, b in zip(servers[0], servers[1], strict=True)]
        timing = Timing(statistics.median(walls), min(walls), len(walls))
        agg_s = statistics.median(max(a[2], b[2]) for a, b in zip(*servers, strict=True))
        check_s = statistics.median(max(a[6], b[6]) for a, b in zip(*servers, strict=True))
        records.append(_record(
            "secagg_round", clients, params, RING_BITS, "grpc-mtls", timing,
            servers[0][0][4], max(r[5] for r in servers[0] + servers[1]),
            float(np.max(np.abs(aggregate - expected))),
            [r[0] for r in reports], [r[1] for r in reports], reports[0][2],
            aggregate_s=agg_s, check_s=check_s,
        ))
    return records
