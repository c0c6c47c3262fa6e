"""A short tour of what crypten_lite does today: three parties and a trusted dealer (threads of
this process) evaluate a small linear + ReLU layer on data none of them sees in the clear,
then compare with plaintext numpy. Later issues turn this into the federated demo over gRPC."""

from __future__ import annotations

import time

import numpy as np

import crypten_lite as cl
from crypten_lite.runtime.testing import run_parties

FEATURES, HIDDEN, BATCH = 64, 32, 256


def demo_data() -> tuple[np.ndarray, np.ndarray]:
    """Demo inputs (numpy's generator: demo data only, never secret randomness)."""
    data = np.random.default_rng(0)
    return data.normal(size=(BATCH, FEATURES)), data.normal(size=(FEATURES, HIDDEN)) / 8


def private_layer(session: cl.Session) -> dict[str, object]:
    """Party 0 owns the data, party 1 owns the weights; everyone learns only the result."""
    x, w = demo_data()
    x_shared = cl.cryptensor(x if session.rank == 0 else None, src=0)
    w_shared = cl.cryptensor(w if session.rank == 1 else None, src=1)
    session.stats.reset()
    start = time.perf_counter()
    hidden = (x_shared @ w_shared).relu()
    scores = hidden.sum(dim=1)
    best = scores.argmax(one_hot=False)
    elapsed = time.perf_counter() - start
    stats = session.stats.snapshot()
    return {
        "scores": scores.get_plain_text(),
        "best": best.get_plain_text(),
        "seconds": elapsed,
        "rounds": stats.rounds,
        "bytes": stats.bytes_sent,
    }


def main() -> None:
    cl.show_config()
    results = run_parties(private_layer, world_size=3)
    x, w = demo_data()
    plain_scores = np.maximum(x @ w, 0).sum(axis=1)
    first = results[0]
    err = float(np.max(np.abs(np.asarray(first["scores"]) - plain_scores)))
    print(f"\n3 parties + dealer: relu(x @ w).sum(1) and its argmax on a {BATCH}x{FEATURES} batch")
    print(f"  max |secure - plaintext| = {err:.2e}")
    secure_best = int(np.asarray(first["best"]))
    print(f"  argmax: secure {secure_best}, plaintext {int(plain_scores.argmax())}")
    for rank, r in enumerate(results):
        print(
            f"  party {rank}: {r['seconds'] * 1e3:7.1f} ms, {r['rounds']} rounds, "
            f"{int(r['bytes']) / 1e6:.2f} MB sent"  # type: ignore[call-overload]
        )

    scale, zero_point = cl.encoding.calculate_qparams(
        w.min(axis=0), w.max(axis=0), "qint8", "per_channel_symmetric"
    )
    q = cl.encoding.quantize(w, scale, zero_point, "qint8", axis=1)
    w_hat = cl.encoding.dequantize(q, scale, zero_point, axis=1)
    print(f"int8 per-channel weights: max |w - dequant(quant(w))| = {np.abs(w - w_hat).max():.2e}")


if __name__ == "__main__":
    main()
