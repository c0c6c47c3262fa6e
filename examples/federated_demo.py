"""Federated learning with secure aggregation: what ``make demo`` runs.

``crypten-lite-launch -n 2 --clients 10 examples/federated_demo.py [--rounds R] [--out DIR]``

Two aggregation servers (the MPC parties, gRPC with mutual TLS) and N edge clients (separate
processes, ``client-<i>`` certificates) train a classifier of scikit-learn's digits with
FedAvg. Each client holds a non-IID slice of the training set (mostly 2 classes), trains
locally in numpy from the public global model, and uploads ``[w·Δ, w]`` (its weighted model
delta and weight, int16-quantized) additively shared between the servers: server 0 receives a
32-byte seed, server 1 the masked vector. The servers agree on the clients that reached both,
sum their shares and open only the sum; neither sees any client's update. One client drops
out in round 2: it uploads to server 0 only and exits; the servers exclude it on both sides
and the round completes with the others.

Robust aggregation (on by default): before a client's update enters the sum, the servers
check in MPC that every element lies in the clip range and its weight in ``[0, 1]``; only one
accept bit per client is opened. ``--malicious-client`` adds one more client (the last one,
holding no data) that sends a poisoned upload every round, in turn: values far outside the
clip (they would wrap the 32-bit sum), inconsistent shares (the seed of one update, the masked
vector of another), and a negative weight. It is rejected on both servers every round; the
honest clients hold the same data as in a run without it, so the final accuracy is the same.

``crypten-lite-launch -n 1 --clients 10 examples/federated_demo.py --servers 1`` runs the same
training with one server and single-server secure aggregation (SecAgg+,
``examples/federated_secagg.py``): the dropout then leaves after sharing its keys and the
server rebuilds its masks from its neighbours' shares.

The same script runs on every process: a client process has ``CRYPTEN_LITE_CLIENT`` set.
Server 0 prints per-round test accuracy and bytes per client and writes ``summary.json`` and
``accuracy.png`` (if matplotlib is installed) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np
from fl_training import (  # examples/fl_training.py: the demo's local training, numpy only
    ModelSpec,
    accuracy,
    init_params,
    load_digits_split,
    local_train,
    partition_non_iid,
)

from crypten_lite.client import pack_weighted_update
from crypten_lite.client.config import ClientConfig
from crypten_lite.client.edge_client import EdgeClient
from crypten_lite.edge.encode import encode_update
from crypten_lite.edge.messages import (
    NONCE_SIZE,
    EdgeRequestError,
    QuantSpec,
    RoundInfo,
    RoundState,
    UpdateShare,
)
from crypten_lite.edge.shares import split_update

QUANT = QuantSpec("int16", 2.0)  # per-coordinate clip of w·Δ, resolution 2/32767
RING_BITS = 32


def parse_args() -> argparse.Namespace:
    from crypten_lite.runtime import launched_clients

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=launched_clients() or 10)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("federated_out"))
    parser.add_argument("--model", choices=["logreg", "mlp"], default="logreg")
    parser.add_argument("--epochs", type=int, default=5, help="local epochs per round")
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--drop-client", type=int, default=3, help="-1: nobody drops out")
    parser.add_argument("--drop-round", type=int, default=2)
    parser.add_argument("--collect-timeout", type=float, default=5.0,
                        help="seconds a server waits for missing uploads")
    parser.add_argument("--seed", type=int, default=0, help="public seed of the data split")
    parser.add_argument("--malicious-client", action="store_true",
                        help="the last client sends a poisoned update every round")
    parser.add_argument("--servers", type=int, default=None,
                        help="1: single-server SecAgg+; 2 or more: the launched servers "
                             "share the updates (default: as many as were launched)")
    return parser.parse_args()


def check_servers(args: argparse.Namespace, launched: int) -> None:
    if args.servers is not None and args.servers != launched:
        raise SystemExit(f"--servers {args.servers}, but {launched} server(s) were launched "
                         f"(crypten-lite-launch -n {args.servers})")
    if launched == 1 and args.malicious_client:
        raise SystemExit("--malicious-client needs 2 or more servers: one server cannot check "
                         "a masked update's range (it clips the aggregate instead)")


def client_data(args: argparse.Namespace, index: int) -> tuple[np.ndarray, np.ndarray, float]:
    data = load_digits_split(seed=args.seed)
    parts = partition_non_iid(data.y_train, honest_clients(args), classes_per_client=2,
                              seed=args.seed)
    cap = max(len(p) for p in parts)  # public weight cap: every w = n_k / cap lies in (0, 1]
    mine = parts[index]
    return data.x_train[mine], data.y_train[mine], len(mine) / cap


def honest_clients(args: argparse.Namespace) -> int:
    """The clients holding data (the malicious one, if any, is the last and holds none)."""
    return args.clients - (1 if args.malicious_client else 0)


# -- client role ------------------------------------------------------------------------------
ATTACKS = ("wrap", "inconsistent", "negative-weight")


def poisoned_shares(kind: str, info: RoundInfo) -> list[UpdateShare]:
    """What a malicious client uploads (bypassing the SDK's clipping), one share per server."""
    m, bits = info.num_elements, info.ring_bits
    nonce = secrets.token_bytes(NONCE_SIZE)
    if kind == "wrap":  # -2^30 units per element: far outside the clip, wraps the ring sum
        seeds, masked = split_update(np.full(m, -(2**30), np.int64).astype(np.uint32), 2, bits)
    elif kind == "inconsistent":  # the seed of one update, the masked vector of another
        up = encode_update(np.full(m, QUANT.clip), QUANT, bits)
        seeds, _ = split_update(up, 2, bits)
        _, masked = split_update(encode_update(-np.full(m, QUANT.clip), QUANT, bits), 2, bits)
    else:  # in the clip range, but a negative FedAvg weight
        seeds, masked = split_update(encode_update(np.append(np.full(m - 1, 0.5), -1.0),
                                                   QUANT, bits), 2, bits)
    common = dict(round=info.round, nonce=nonce, num_elements=m, ring_bits=bits)
    return [UpdateShare(seed=seeds[0], **common), UpdateShare(vector=masked, **common)]


def run_attacker(config: ClientConfig) -> None:
    tag = f"{config.client_id}: "
    print(f"{tag}MALICIOUS: sends a poisoned update every round", flush=True)
    with EdgeClient.connect(config) as edge:
        last = 0
        while True:
            info = edge.wait_for_round(after=last, timeout=600)
            if info.state is RoundState.FINISHED:
                break
            kind = ATTACKS[(info.round - 1) % len(ATTACKS)]
            try:
                for link, share in zip(edge.links, poisoned_shares(kind, info), strict=True):
                    link.submit(share)
                print(f"{tag}round {info.round}: uploaded a poisoned update ({kind})",
                      flush=True)
            except EdgeRequestError as err:
                print(f"{tag}round {info.round}: refused: {err}", flush=True)
            last = info.round


def run_client(args: argparse.Namespace, config: ClientConfig) -> None:
    index = int(config.client_id.rsplit("-", 1)[1])
    check_servers(args, len(config.servers))
    if len(config.servers) == 1:
        from federated_secagg import run_secagg_client

        run_secagg_client(args, config, client_data(args, index), index)
        return
    if args.malicious_client and index == args.clients - 1:
        run_attacker(config)
        return
    spec = ModelSpec(args.model)
    x, y, weight = client_data(args, index)
    tag = f"{config.client_id}: "
    print(f"{tag}{len(y)} examples of classes {sorted(set(y.tolist()))}", flush=True)
    reports = []
    with EdgeClient.connect(config) as edge:
        last = 0
        while True:
            info = edge.wait_for_round(after=last, timeout=600)
            if info.state is RoundState.FINISHED:
                break
            model = np.asarray(info.model, dtype=np.float64)
            trained = local_train(spec, model, x, y, epochs=args.epochs, lr=args.lr,
                                  seed=1000 * index + info.round)
            update = pack_weighted_update(trained - model, weight)
            if index == args.drop_client and info.round == args.drop_round:
                report = edge.submit_update(update, info, servers=[0])
                print(f"{tag}DROPOUT in round {info.round}: uploaded to server 0 only "
                      f"({report.total_bytes} B) and leaves the job", flush=True)
                return
            reports.append(edge.submit_update(update, info))
            last = info.round
    if reports:
        cpu = 1e3 * float(np.median([r.cpu_seconds for r in reports]))
        print(f"{tag}{len(reports)} updates, {reports[-1].total_bytes} B each "
              f"({reports[-1].ratio:.3f}x the plaintext int32 payload), "
              f"median client CPU {cpu:.1f} ms per update", flush=True)


# -- server role ------------------------------------------------------------------------------
class Progress:
    """One progress-bar line per round on server 0: tqdm's meter if installed, else a plain
    textual bar (the launcher pipes output line by line, so no carriage-return redraws)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.start = time.perf_counter()
        try:
            from tqdm import tqdm

            self.meter = tqdm.format_meter
        except ImportError:
            self.meter = None

    def write(self, line: str) -> None:
        if self.enabled:
            print(line, flush=True)

    def step(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.meter is not None:
            elapsed = time.perf_counter() - self.start
            line = self.meter(self.done, self.total, elapsed, ncols=72, ascii=True,
                              prefix="rounds", unit="round")
        else:
            filled = 30 * self.done // self.total
            line = f"rounds [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}"
        print(line, flush=True)


def run_server(args: argparse.Namespace) -> None:
    import crypten_lite as cl
    from crypten_lite.fl import (
        AggregationConfig,
        AggregationService,
        TooFewClientsError,
        fedavg_update,
    )

    session = cl.current_session()
    check_servers(args, session.world_size)
    lead = session.rank == 0
    spec = ModelSpec(args.model)
    data = load_digits_split(seed=args.seed)
    install = getattr(session.comm, "set_edge_handler", None)
    if install is None:
        raise SystemExit("run through crypten-lite-launch: clients need the gRPC servers")
    if session.world_size == 1:
        from federated_secagg import run_secagg_server

        log = run_secagg_server(args, install, spec, data, QUANT, RING_BITS,
                                Progress(args.rounds, True), honest_clients(args))
        write_outputs(args, spec, log, servers=1)
        return
    config = AggregationConfig(
        job_id="federated-demo",
        num_elements=spec.num_params + 1,  # [w·Δ, w]
        ring_bits=RING_BITS,
        quant=QUANT,
        min_clients=max(1, honest_clients(args) // 2),
        weight_max=1.0,  # every honest w = n_k / cap lies in (0, 1]; range check on (default)
        expected_clients=args.clients,
        collect_timeout_s=args.collect_timeout,
        first_round_timeout_s=180.0,
    )
    service = AggregationService(session, config)
    install(service)
    model = init_params(spec).astype(np.float32)
    plain_bytes = config.num_elements * RING_BITS // 8
    log = []
    if lead:
        print(f"{session.world_size} aggregation servers (gRPC, mutual TLS), {args.clients} "
              f"clients, {args.rounds} rounds, {args.model} with {spec.num_params} parameters, "
              f"updates int16-quantized in a {RING_BITS}-bit ring", flush=True)
    progress = Progress(args.rounds, lead)
    for _ in range(args.rounds):
        start = time.perf_counter()
        try:
            result = service.run_round(model)
        except TooFewClientsError as err:
            progress.write(f"round {service.round}: skipped ({err})")
            progress.step()
            continue
        step = fedavg_update(model, result.aggregate, num_clients=len(result.clients))
        model = step.model
        # bytes each aggregated client sent to each server: public sizes, summed over servers
        mine = sum(result.payload_bytes[c] for c in result.clients)
        total = int(sum(int(v[0]) for v in session.comm.all_gather(np.array([mine], np.int64))))
        per_client = total / len(result.clients)
        acc = accuracy(spec, model, data.x_test, data.y_test)
        entry = {
            "round": result.round,
            "accuracy": acc,
            "clients": len(result.clients),
            "excluded": list(result.excluded),
            "rejected": list(result.rejected),
            "check_s": result.check_s,
            "bytes_per_client": per_client,
            "plaintext_bytes": plain_bytes,
            "upload_ratio": per_client / plain_bytes,
            "round_s": time.perf_counter() - start,
            "aggregate_s": result.aggregate_s,
        }
        log.append(entry)
        progress.write(
            f"round {result.round:2d}: test accuracy {acc:6.1%}  clients "
            f"{len(result.clients):3d}  {per_client:,.0f} B/client "
            f"({entry['upload_ratio']:.3f}x plaintext)  {entry['round_s']:.2f}s"
        )
        for cid in result.excluded:
            progress.write(
                f"round {result.round:2d}: DROPOUT {cid} reached server 0 but not server 1: "
                "excluded on both servers; the round completed with "
                f"{len(result.clients)} clients"
            )
        for cid in result.rejected:
            progress.write(
                f"round {result.round:2d}: REJECTED {cid}: its update failed the range check "
                "in MPC (values outside the clip range, inconsistent shares or a bad weight); "
                f"excluded on both servers, the round completed with {len(result.clients)} "
                "clients"
            )
        progress.step()
    service.finish(model)
    time.sleep(2.5)  # let clients poll FINISHED before the servers go away
    if lead:
        write_outputs(args, spec, log, servers=session.world_size)


def write_outputs(args: argparse.Namespace, spec: ModelSpec, log: list[dict[str, Any]],
                  servers: int) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    dropouts = [{"round": e["round"], "client": c} for e in log for c in e["excluded"]]
    summary = {
        "servers": servers,
        "protocol": "secagg+" if servers == 1 else "additive shares + MPC range check",
        "clients": args.clients,
        "rounds": args.rounds,
        "completed_rounds": len(log),
        "model": args.model,
        "num_params": spec.num_params,
        "quant": {"scheme": QUANT.scheme, "clip": QUANT.clip, "ring_bits": RING_BITS},
        "final_accuracy": log[-1]["accuracy"] if log else None,
        "dropouts": dropouts,
        "malicious_client": f"client-{args.clients - 1}" if args.malicious_client else None,
        "rejections": [{"round": e["round"], "client": c} for e in log for c in e["rejected"]],
        "per_round": log,
    }
    path = args.out / "summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {path}", flush=True)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping the accuracy plot "
              "(pip install 'crypten-lite[demo]')", flush=True)
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([e["round"] for e in log], [100 * e["accuracy"] for e in log], marker="o")
    for d in dropouts:
        ax.axvline(d["round"], color="grey", linestyle=":", label=f"{d['client']} drops out")
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"FedAvg with secure aggregation: {args.clients} clients, non-IID digits")
    ax.grid(alpha=0.3)
    if dropouts:
        ax.legend()
    fig.tight_layout()
    plot = args.out / "accuracy.png"
    fig.savefig(plot, dpi=100)
    print(f"wrote {plot}", flush=True)


def main() -> None:
    args = parse_args()
    config = ClientConfig.from_environment()
    if config is not None:
        run_client(args, config)
    else:
        run_server(args)


main()
