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

__all__ = ["run", "run_grpc"]

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


_GRPC_SCRIPT = """
import json, sys, threading, time
import numpy as np
from crypten_lite.client.config import ClientConfig

out_dir, threads, per_thread = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = ClientConfig.from_environment()
if config is not None:
    from crypten_lite.client.edge_client import EdgeClient
    index = int(config.client_id.rsplit("-", 1)[1])
    times = []
    lock = threading.Lock()

    def worker(t):
        edge = EdgeClient.connect(config)
        rng = np.random.default_rng([index, t])
        edge.infer("mlp", rng.uniform(0, 16, (1, 64)))  # warm-up: waits for the service
        mine = []
        for _ in range(per_thread):
            start = time.time()
            edge.infer("mlp", rng.uniform(0, 16, (1, 64)))
            mine.append((start, time.time()))
        with lock:
            times.extend(mine)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    with open(f"{out_dir}/{config.client_id}.json", "w") as f:
        json.dump(times, f)
else:
    import crypten_lite as cl
    from benchmarks.suite_edge import _mlp
    from crypten_lite.inference import InferenceService
    session = cl.current_session()
    service = InferenceService(session, {"mlp": _mlp().encrypt(src=0)},
                               input_shapes={"mlp": (64,)}, query_timeout_s=60.0,
                               max_batch=512, batch_window_s=0.005, max_pending=4096)
    session.comm.set_edge_handler(service)
    served = service.serve(idle_timeout_s=3.0)
    if session.rank == 0:
        print(f"served {served}", flush=True)
"""


def run_grpc(reps: int, quick: bool) -> list[BenchRecord]:
    """2 launched servers (gRPC, mutual TLS, trusted dealer) and client processes running
    threads that query concurrently: 1 (1 x 1), 10 (2 x 5) and 100 (10 x 10) clients. A
    client process has one certificate identity; its threads are separate clients to the
    servers (distinct queries, their own channels)."""
    import io
    import json
    import tempfile
    from pathlib import Path

    from crypten_lite.runtime import LaunchOptions, launch
    from crypten_lite.transport.grpc import GrpcOptions

    points = [(1, 1, 4), (2, 2, 2)] if quick else [(1, 1, 20), (2, 5, 10), (10, 10, 5)]
    rows = []
    for processes, threads, per_thread in points:
        per = per_thread * max(1, reps // 5)
        with tempfile.TemporaryDirectory(prefix="crypten-lite-edge-") as tmp:
            script = Path(tmp) / "edge_grpc.py"
            script.write_text(_GRPC_SCRIPT)
            log = io.StringIO()
            grpc = GrpcOptions(edge_max_concurrent_calls=4 * processes * threads + 8,
                               edge_max_calls_per_client=4 * threads + 2)
            code = launch(script, [tmp, str(threads), str(per)],
                          LaunchOptions(world_size=2, clients=processes, timeout_s=120,
                                        grpc=grpc),
                          stdout=log, stderr=log)
            if code != 0:
                raise RuntimeError(f"edge suite over gRPC failed:\n{log.getvalue()}")
            spans = [tuple(t) for i in range(processes)
                     for t in json.loads((Path(tmp) / f"client-{i}.json").read_text())]
        latencies = sorted(end - start for start, end in spans)
        wall = max(end for _, end in spans) - min(start for start, _ in spans)
        clients = processes * threads
        rows.append(BenchRecord.from_timing(
            SUITE, "infer", Timing(wall, wall, 1),
            params={"clients": clients, "queries": len(spans), "model": "mlp 64-32-10"},
            parties=2, transport="grpc-mtls",
            extra={"queries_per_s": round(len(spans) / wall, 1),
                   "p50_ms": round(statistics.median(latencies) * 1e3, 1),
                   "p99_ms": round(latencies[min(len(latencies) - 1,
                                                 int(0.99 * len(latencies)))] * 1e3, 1),
                   "client_processes": processes,
                   "target": "100 clients: >=100 q/s, p99 <= 2 s"},
        ))
    return rows
