"""``fl --servers 1`` / ``fl-grpc --servers 1`` suites: single-server secure aggregation
(SecAgg+, issue 19); the gRPC rows are described at :func:`run_grpc`.

Clients run in this process (as in Flower's simulation) over ``DirectServerLink`` s, which
encode every request and state reply with the gRPC wire encoder, so the byte counts are those
of the protobuf messages (without gRPC/TLS framing). A round is driven stage by stage: every
client answers a stage, then the server closes it; after the unmasking the server rebuilds
the secrets, removes the masks and decodes.

* ``server_s`` (the row's time): the server's CPU seconds in the round — every handler call
  (validation, key checks, the running sum, building each client's state), the stage
  closings, the Shamir reconstructions, the mask regeneration and the decoding
  (``SecAggRoundResult.server_cpu_s``, ``thread_time``; clients run in the same thread
  between the server's calls, so this is also its wall time). Median over ``reps`` rounds.
* ``client_ms``: median over clients of ``SecAggReport.cpu_seconds`` (keys, Shamir sharing,
  sealing, opening the inbox, encoding and masking, the unmasking answer).
* ``up_ratio``: a client's upload (all four requests) over the plaintext payload at the same
  precision (``m · ring_bits / 8``); ``masked_ratio``: the masked-input request alone over
  it; ``key_bytes``: the rest (keys, sealed shares, commitment, unmasking shares; per
  neighbour ``key_per_nb``); ``down_bytes``: state replies.
* ``rounds``: 4 (one request and one state poll per stage, without the polls that find the
  stage not yet advanced).
* dropouts leave after sharing their keys (the costly case: the server rebuilds each one's
  mask key and regenerates its pairwise masks with every surviving neighbour).
* ``flower_s``: Flower 1.42 SecAgg+ server time per round for the same point, measured on a
  2-core machine like this one (lower end of the quoted range; the issue's figures), and
  ``vs_flower`` = ``flower_s / server_s``.
* ``max_abs_err``: aggregate vs the exact sum of the survivors' quantized updates (must be 0).
"""

from __future__ import annotations

import io
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.record import BenchRecord, Timing
from crypten_lite.client.links import DirectServerLink
from crypten_lite.client.secagg_client import SecAggClient, SecAggReport
from crypten_lite.edge.encode import decode_aggregate, encode_update
from crypten_lite.edge.messages import QuantSpec
from crypten_lite.edge.secagg_messages import SecAggStage
from crypten_lite.edge.secagg_params import SecAggParams
from crypten_lite.fl.secagg import SecAggConfig, SecAggRoundResult, SecAggService
from crypten_lite.runtime import LaunchOptions, launch

__all__ = ["run", "run_grpc"]

QUANT = QuantSpec("int16", 1.0)
RING_BITS = 32
FULL = [(c, p) for p in (10_000, 100_000) for c in (10, 100, 500)]
QUICK = [(5, 1_000)]
#: Flower 1.42 SecAgg+ server seconds per round (5 shares, threshold 3), lower end.
FLOWER_S = {
    (10, 10_000): 0.11,
    (100, 10_000): 0.93,
    (500, 10_000): 4.7,
    (100, 100_000): 1.1,
    (500, 100_000): 6.3,
}


def _round(
    service: SecAggService, clients: list[SecAggClient], updates: np.ndarray, drop: set[int]
) -> tuple[SecAggRoundResult, list[SecAggReport]]:
    """One round driven stage by stage; clients in ``drop`` leave after sharing keys."""
    number = service.open_round(np.zeros(0, np.float32))
    info = service.round_info("client-0")
    for client in clients:
        client.advertise(info)
    service.close_stage()
    for client in clients:
        client.share_keys(client.link.secagg_state(number))
    service.close_stage()
    live = [(i, c) for i, c in enumerate(clients) if i not in drop]
    for i, client in live:
        client.masked_input(client.link.secagg_state(number), updates[i])
    service.close_stage()
    for _, client in live:
        client.unmask(client.link.secagg_state(number))
    service.close_stage()
    result = service.finish_round()
    return result, [c.report(SecAggStage.DONE) for _, c in live]


def _point(num_clients: int, num_params: int, num_drop: int, reps: int) -> BenchRecord:
    rng = np.random.default_rng(num_clients * 7 + num_params)
    updates = rng.uniform(-QUANT.clip, QUANT.clip, (num_clients, num_params))
    config = SecAggConfig(
        job_id="bench-secagg",
        num_elements=num_params,
        ring_bits=RING_BITS,
        quant=QUANT,
        params=SecAggParams("auto"),
        min_clients=3,
    )
    server_s: list[float] = []
    reports: list[SecAggReport] = []
    err = 0.0
    neighbours = 0
    for rep in range(reps):
        service = SecAggService(config)
        clients = [
            SecAggClient(DirectServerLink(service, f"client-{i}")) for i in range(num_clients)
        ]
        step = max(1, num_clients // max(num_drop, 1))
        drop = set(range(rep % step, num_clients, step)[:num_drop])
        result, round_reports = _round(service, clients, updates, drop)
        server_s.append(result.server_cpu_s)
        reports += round_reports
        neighbours = round_reports[0].neighbours
        keep = [i for i in range(num_clients) if i not in drop]
        plain = np.zeros(num_params, np.uint64)
        for i in keep:
            plain += encode_update(updates[i], QUANT, RING_BITS)
        want = decode_aggregate(plain, QUANT, RING_BITS)
        err = max(err, float(np.max(np.abs(result.aggregate - want))))
    median = statistics.median(server_s)
    first = reports[0]
    flower = FLOWER_S.get((num_clients, num_params))
    extra: dict[str, object] = {
        "client_ms": 1e3 * statistics.median(r.cpu_seconds for r in reports),
        "up_ratio": first.upload_bytes / first.plaintext_bytes,
        "masked_ratio": first.masked_bytes / first.plaintext_bytes,
        "key_bytes": first.upload_bytes - first.masked_bytes,
        "key_per_nb": (first.upload_bytes - first.masked_bytes) / max(neighbours, 1),
        "down_bytes": first.download_bytes,
        "neighbours": neighbours,
        "dropouts": num_drop,
    }
    if flower is not None:
        extra |= {"flower_s": flower, "vs_flower": flower / median}
    return BenchRecord.from_timing(
        "fl",
        "secagg_1server",
        Timing(median, min(server_s), len(server_s)),
        params={"clients": num_clients, "params": num_params, "dropouts": num_drop},
        parties=1,
        transport="in-process",
        rounds=4,
        bytes_sent_per_party=first.upload_bytes,
        max_abs_err=err,
        extra=extra,
    )


def run(reps: int, quick: bool) -> list[BenchRecord]:
    """Rows for every (clients, params) point with 0, 1 and 10% dropouts."""
    records = []
    for num_clients, num_params in QUICK if quick else FULL:
        for num_drop in sorted({0, 1, max(1, num_clients // 10)}):
            records.append(_point(num_clients, num_params, num_drop, min(reps, 3)))
    return records


GRPC_FULL = [(10, 10_000), (100, 10_000), (10, 100_000), (100, 100_000)]
GRPC_QUICK = [(4, 1_000)]

_GRPC_SCRIPT = """
import json, sys, time
import numpy as np
from crypten_lite.client.config import ClientConfig
from crypten_lite.edge.messages import QuantSpec, RoundState
from crypten_lite.edge.secagg_messages import SecAggStage

out_dir, params, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
quant = QuantSpec("int16", 1.0)
config = ClientConfig.from_environment()
if config is not None:
    from crypten_lite.client.secagg_client import SecAggClient
    index = int(config.client_id.rsplit("-", 1)[1])
    rows, last = [], 0
    with SecAggClient.connect(config) as client:
        while True:
            info = client.wait_for_round(after=last, timeout=600)
            if info.state is RoundState.FINISHED:
                break
            x = np.random.default_rng([index, info.round]).uniform(-0.5, 0.5, params)
            r = client.run_round(x, info, timeout=600)
            rows.append([r.cpu_seconds, r.upload_bytes, r.masked_bytes, r.download_bytes,
                         r.plaintext_bytes, r.neighbours, r.polls])
            last = info.round
    with open(f"{out_dir}/{config.client_id}.json", "w") as f:
        json.dump(rows, f)
else:
    from crypten_lite.fl.secagg import SecAggConfig, SecAggService
    from crypten_lite.runtime import launched_clients
    import crypten_lite as cl
    session = cl.current_session()
    n = launched_clients()
    service = SecAggService(SecAggConfig(
        job_id="bench", num_elements=params, ring_bits=32, quant=quant, min_clients=3,
        expected_clients=n, first_round_timeout_s=300, collect_timeout_s=60))
    session.comm.set_edge_handler(service)
    rows = []
    for _ in range(rounds + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        result = service.run_round(np.zeros(0))
        rows.append([time.perf_counter() - t0, time.process_time() - c0, result.server_cpu_s,
                     len(result.clients)])
    service.finish()
    time.sleep(6.0)  # 100 client processes on 2 cores may poll FINISHED seconds late
    np.save(f"{out_dir}/aggregate.npy", result.aggregate)
    with open(f"{out_dir}/server.json", "w") as f:
        json.dump(rows[1:], f)
"""


def run_grpc(reps: int, quick: bool) -> list[BenchRecord]:
    """Rounds on one launched server (gRPC, mutual TLS) with real client processes. The
    row's time is the server process's CPU seconds per round (``process_time``: handlers,
    protobuf, gRPC and TLS threads); ``round_s`` the wall time from opening the round to the
    aggregate (clients' polling latency, local work and uploads included); ``handler_s`` the
    part spent in the service's own code."""
    records = []
    rounds = max(1, reps)
    for clients, params in GRPC_QUICK if quick else GRPC_FULL:
        with tempfile.TemporaryDirectory(prefix="crypten-lite-secagg-grpc-") as tmp:
            script = Path(tmp) / "secagg_grpc.py"
            script.write_text(_GRPC_SCRIPT)
            log = io.StringIO()
            code = launch(
                script,
                [tmp, str(params), str(rounds)],
                LaunchOptions(world_size=1, clients=clients, timeout_s=900),
                stdout=log,
                stderr=log,
            )
            if code != 0:
                raise RuntimeError(f"secagg over gRPC failed:\n{log.getvalue()}")
            server = json.loads((Path(tmp) / "server.json").read_text())
            rows = [
                row
                for i in range(clients)
                for row in json.loads((Path(tmp) / f"client-{i}.json").read_text())
            ]
            aggregate = np.load(Path(tmp) / "aggregate.npy")
        total = np.zeros(params, np.uint64)
        for i in range(clients):
            x = np.random.default_rng([i, rounds + 1]).uniform(-0.5, 0.5, params)
            total += encode_update(x, QUANT, RING_BITS)
        expected = decode_aggregate(total, QUANT, RING_BITS)
        cpu = [r[1] for r in server]
        first = rows[0]
        flower = FLOWER_S.get((clients, params))
        extra: dict[str, object] = {
            "round_s": statistics.median(r[0] for r in server),
            "handler_s": statistics.median(r[2] for r in server),
            "client_ms": 1e3 * statistics.median(r[0] for r in rows),
            "up_ratio": first[1] / first[4],
            "masked_ratio": first[2] / first[4],
            "key_bytes": first[1] - first[2],
            "down_bytes": first[3],
            "neighbours": first[5],
            "polls": statistics.median(r[6] for r in rows),
        }
        if flower is not None:
            extra |= {"flower_s": flower, "vs_flower": flower / statistics.median(cpu)}
        records.append(
            BenchRecord.from_timing(
                "fl",
                "secagg_1server",
                Timing(statistics.median(cpu), min(cpu), len(cpu)),
                params={"clients": clients, "params": params, "dropouts": 0},
                parties=1,
                transport="grpc-mtls",
                rounds=4,
                bytes_sent_per_party=int(first[1]),
                max_abs_err=float(np.max(np.abs(aggregate - expected))),
                extra=extra,
            )
        )
    return records
