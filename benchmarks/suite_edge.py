"""Suite ``edge``: concurrent private-inference queries from edge clients.

1, 10 and 100 clients (threads, each its own client identity) query the digits MLP
(64-32-10, one sample per query) held in shares by 2 servers, for a fixed number of queries
each; the servers micro-batch what arrives together (``InferenceService``). Reported:
throughput (answered queries per second of wall time) and p50/p99 latency of one query as a
client sees it (split, both servers' replies, reconstruction). Servers and clients run in
this process (``run_parties`` threads, ``DirectServerLink``): no gRPC here, so the numbers
show the serving loop and batching, not the transport.
"""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from benchmarks.record import BenchRecord, Timing
from crypten_lite import nn
from crypten_lite.client import DirectServerLink, EdgeClient
from crypten_lite.inference import InferenceService
from crypten_lite.runtime.testing import run_parties

__all__ = ["run"]

SUITE = "edge"


def _mlp() -> nn.Module:
    rng = np.random.default_rng(5)
    return nn.Sequential(nn.Linear(64, 32, rng=rng), nn.ReLU(), nn.Linear(32, 10, rng=rng))


def _measure(clients: int, per_client: int) -> dict[str, Any]:
    services: dict[int, InferenceService] = {}
    ready = threading.Event()
    lock = threading.Lock()
    outcome: dict[str, Any] = {}

    def server(session: Any) -> int:
        service = InferenceService(
            session, {"mlp": _mlp().encrypt(src=0)}, input_shapes={"mlp": (64,)},
            query_timeout_s=20.0, max_batch=512, batch_window_s=0.002,
        )
        with lock:
            services[session.rank] = service
            if len(services) == 2:
                ready.set()
        return service.serve()

    def one_client(index: int) -> list[float]:
        edge = EdgeClient([DirectServerLink(services[r], f"client-{index}") for r in (0, 1)])
        rng = np.random.default_rng(index)
        latencies = []
        for _ in range(per_client):
            x = rng.uniform(0, 16, (1, 64))
            start = time.perf_counter()
            edge.infer("mlp", x)
            latencies.append(time.perf_counter() - start)
        return latencies

    def drive() -> None:
        try:
            ready.wait(60)
            start = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                per = list(pool.map(one_client, range(clients)))
            outcome["wall"] = time.perf_counter() - start
            outcome["latencies"] = [t for ts in per for t in ts]
        finally:
            if ready.is_set():
                services[0].stop()

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    served = run_parties(server, 2, timeout_s=600)
    thread.join(30)
    latencies = sorted(outcome["latencies"])
    return {
        "wall": outcome["wall"],
        "served": served[0],
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


def run(reps: int, quick: bool) -> list[BenchRecord]:
    """1, 10 and 100 concurrent clients (4, 1 and 1 with ``--quick``)."""
    points = [(1, 4), (4, 2)] if quick else [(1, 20), (10, 10), (100, 5)]
    rows = []
    for clients, per_client in points:
        m = _measure(clients, per_client * max(1, reps // 5))
        queries = m["served"]
        rows.append(BenchRecord.from_timing(
            SUITE, "infer", Timing(m["wall"], m["wall"], 1),
            params={"clients": clients, "queries": queries, "model": "mlp 64-32-10"},
            parties=2, transport="inprocess",
            extra={"queries_per_s": round(queries / m["wall"], 1),
                   "p50_ms": round(m["p50"] * 1e3, 1), "p99_ms": round(m["p99"] * 1e3, 1),
                   "target": "100 clients: >=100 q/s, p99 <= 2 s (over gRPC)"},
        ))
    return rows
