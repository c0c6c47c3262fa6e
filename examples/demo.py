"""The demo job: ``crypten-lite-launch -n 3 examples/demo.py`` (what ``make demo`` runs).

Three parties and a trusted dealer run as separate processes talking gRPC with mutual TLS.
Party 0 owns a batch of data, party 1 owns the weights of a small layer; together they
compute ``softmax(relu(x @ w))`` and its argmax on secret shares, and only the result is
revealed. Each party checks the result against plaintext numpy (the demo data come from a
public seed so that the check is possible) and prints its traffic.
"""

from __future__ import annotations

import time

import numpy as np

import crypten_lite as cl

FEATURES, HIDDEN, BATCH = 64, 10, 256


def demo_data() -> tuple[np.ndarray, np.ndarray]:
    """Demo inputs from a public seed (numpy's generator: demo data, never secret randomness)."""
    data = np.random.default_rng(0)
    return data.normal(size=(BATCH, FEATURES)), data.normal(size=(FEATURES, HIDDEN)) / 8


def main() -> None:
    session = cl.current_session()
    x, w = demo_data()
    x_shared = cl.cryptensor(x if session.rank == 0 else None, src=0, names=("N", "F"))
    w_shared = cl.cryptensor(w if session.rank == 1 else None, src=1, names=("F", "H"))
    session.stats.reset()
    start = time.perf_counter()
    hidden = (x_shared @ w_shared).relu()
    probs = hidden.softmax(dim="H")
    best = probs.argmax(dim="H", one_hot=False)
    revealed_probs = probs.get_plain_text()
    revealed_best = best.get_plain_text()
    elapsed = time.perf_counter() - start
    stats = session.stats.snapshot()

    logits = np.maximum(x @ w, 0)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    err = float(np.max(np.abs(np.asarray(revealed_probs) - expected)))
    agree = float(np.mean(np.rint(np.asarray(revealed_best)) == expected.argmax(1)))
    print(
        f"party {session.rank}/{session.world_size}: softmax(relu(x @ w)) over names "
        f"{probs.names}, max |secure - plaintext| = {err:.1e}, argmax agreement {agree:.1%}"
    )
    print(
        f"party {session.rank}: {elapsed * 1e3:.0f} ms, {stats.rounds} rounds, "
        f"{stats.bytes_sent / 1e6:.2f} MB sent, {stats.bytes_received / 1e6:.2f} MB received"
    )


main()
