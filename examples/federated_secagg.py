"""The single-server roles of the federated demo (``--servers 1``): SecAgg/SecAgg+ with one
aggregation server instead of two non-colluding ones (``examples/federated_demo.py``).

Each round a client advertises two X25519 keys, Shamir-shares its self-mask seed and mask key
among its neighbours (sealed for each with AES-GCM, relayed by the server), uploads its update
masked with its self mask and one pairwise mask per neighbour, and answers the unmasking. The
server learns only the sum. In ``--drop-round`` the ``--drop-client`` shares its keys and then
leaves before its masked upload: the server rebuilds that client's mask key from its
neighbours' shares, removes its pairwise masks from the others' inputs, and the round
completes without it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from fl_training import ModelSpec, accuracy, init_params, local_train

from crypten_lite.client import pack_weighted_update
from crypten_lite.client.config import ClientConfig
from crypten_lite.client.secagg_client import SecAggClient, SecAggRoundFailed
from crypten_lite.edge.messages import QuantSpec, RoundState
from crypten_lite.edge.secagg_messages import SecAggStage


def run_secagg_client(
    args: argparse.Namespace,
    config: ClientConfig,
    data: tuple[np.ndarray, np.ndarray, float],
    index: int,
) -> None:
    spec = ModelSpec(args.model)
    x, y, weight = data
    tag = f"{config.client_id}: "
    reports = []
    with SecAggClient.connect(config) as client:
        last = 0
        while True:
            info = client.wait_for_round(after=last, timeout=600)
            if info.state is RoundState.FINISHED:
                break
            model = np.asarray(info.model, dtype=np.float64)
            trained = local_train(spec, model, x, y, epochs=args.epochs, lr=args.lr,
                                  seed=1000 * index + info.round)
            update = pack_weighted_update(trained - model, weight)
            last = info.round
            if index == args.drop_client and info.round == args.drop_round:
                client.advertise(info)
                client.share_keys(client.wait_for_stage(info.round, SecAggStage.SHARE_KEYS, 600))
                print(f"{tag}DROPOUT in round {info.round}: shared its keys, then leaves "
                      "before its masked upload", flush=True)
                return
            try:
                reports.append(client.run_round(update, info, timeout=600))
            except SecAggRoundFailed as err:
                print(f"{tag}round {info.round} failed: {err}", flush=True)
    if reports:
        cpu = 1e3 * float(np.median([r.cpu_seconds for r in reports]))
        last_report = reports[-1]
        print(f"{tag}{len(reports)} updates; last: {last_report.upload_bytes} B up "
              f"({last_report.upload_bytes / last_report.plaintext_bytes:.3f}x the plaintext "
              f"int32 payload, {last_report.neighbours} neighbours), "
              f"{last_report.download_bytes} B down, median client CPU {cpu:.1f} ms per update",
              flush=True)


def run_secagg_server(
    args: argparse.Namespace,
    install: Callable[[Any], None],
    spec: ModelSpec,
    data: Any,
    quant: QuantSpec,
    ring_bits: int,
    progress: Any,
    honest: int,
) -> list[dict[str, Any]]:
    from crypten_lite.fl import TooFewClientsError, fedavg_update
    from crypten_lite.fl.secagg import SecAggConfig, SecAggService

    config = SecAggConfig(
        job_id="federated-demo",
        num_elements=spec.num_params + 1,  # [w·Δ, w]
        ring_bits=ring_bits,
        quant=quant,
        min_clients=max(3, honest // 2),
        expected_clients=args.clients,
        collect_timeout_s=args.collect_timeout,
        first_round_timeout_s=180.0,
        weight_max=1.0,
    )
    service = SecAggService(config)
    install(service)
    model = init_params(spec).astype(np.float32)
    plain_bytes = config.num_elements * ring_bits // 8
    progress.write(f"1 aggregation server (gRPC, mutual TLS, SecAgg+), {args.clients} clients, "
                   f"{args.rounds} rounds, {args.model} with {spec.num_params} parameters, "
                   f"updates int16-quantized in a {ring_bits}-bit ring")
    log: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        try:
            result = service.run_round(model)
        except TooFewClientsError as err:
            progress.write(f"round {service.round}: skipped ({err})")
            progress.step()
            continue
        model = fedavg_update(model, result.aggregate, num_clients=len(result.clients)).model
        acc = accuracy(spec, model, data.x_test, data.y_test)
        dropped = [c for stage in result.dropped.values() for c in stage]
        entry = {
            "round": result.round,
            "accuracy": acc,
            "clients": len(result.clients),
            "excluded": dropped + list(result.excluded),
            "rejected": [],
            "clipped": result.clipped,
            "masked_bytes_per_client": plain_bytes,
            "plaintext_bytes": plain_bytes,
            "server_cpu_s": result.server_cpu_s,
            "round_s": time.perf_counter() - start,
            "aggregate_s": result.aggregate_s,
        }
        log.append(entry)
        progress.write(f"round {result.round:2d}: test accuracy {acc:6.1%}  clients "
                       f"{len(result.clients):3d}  server CPU {1e3 * result.server_cpu_s:.0f} ms"
                       f"  {entry['round_s']:.2f}s")
        for stage, clients in result.dropped.items():
            for cid in clients:
                progress.write(f"round {result.round:2d}: DROPOUT {cid} before {stage}: "
                               f"handled, the round completed with {len(result.clients)} "
                               "clients")
        progress.step()
    service.finish(model)
    time.sleep(2.5)  # let clients poll FINISHED before the server goes away
    return log
