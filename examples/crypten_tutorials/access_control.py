"""CrypTen Tutorial 3 ("Introduction to Access Control") ported to crypten_lite.

Alice (party 0) and Bob (party 1) each hold data in PLAINTEXT files on their own machine;
``cl.load_from_party(path, src=...)`` has the owner read its file and secret-share it, so
the other party never sees it. Three ways of splitting one data set::

    1. data labeling        Alice holds the features, Bob the labels
    2. feature aggregation  Alice holds features 0..4, Bob features 5..9 (vertical split)
    3. dataset augmentation Alice holds the first half of the examples, Bob the second
                            half (horizontal split); labels come from Alice

In each scenario the parties train the tutorial's linear SVM on the secret-shared data,
reveal the weights (and only the weights) and evaluate them on a public test set. A numpy
run of the same algorithm on the same data is the reference.

Run it on 2 parties (separate processes, gRPC with mutual TLS)::

    crypten-lite-launch -n 2 examples/crypten_tutorials/access_control.py

or in-process: ``run_parties(lambda session: access_control.main(), world_size=2)``.

Differences from the notebook: numpy ``.npy`` files (written with
``cl.save_from_party(obj, path, src=...)``; no pickle) instead of ``torch.save``; each party
writes and reads only its own private directory (nothing is shared through the file
system); ``@mpc.run_multiprocess`` is replaced by the launcher or ``run_parties`` (or
``cl.run_multiprocess``); a smaller data set (10 features, 200 examples, 10 epochs).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import crypten_lite as cl

ALICE = 0
BOB = 1
NUM_FEATURES = 10
NUM_TRAIN = 200
NUM_TEST = 100
EPOCHS = 10
LR = 1.0
SEED = 1


def make_data() -> dict[str, np.ndarray]:
    """The tutorial's synthetic data set (features are ``(num_features, num_examples)``)."""
    rng = np.random.default_rng(SEED)
    features = rng.normal(size=(NUM_FEATURES, NUM_TRAIN))
    w_true = rng.normal(size=(1, NUM_FEATURES))
    b_true = rng.normal(size=(1,))
    labels = np.sign(w_true @ features + b_true)
    test_features = rng.normal(size=(NUM_FEATURES, NUM_TEST))
    test_labels = np.sign(w_true @ test_features + b_true)
    w_init = 0.1 * rng.normal(size=(1, NUM_FEATURES))  # public initial weights
    return {
        "features": features,
        "labels": labels,
        "test_features": test_features,
        "test_labels": test_labels,
        "w_init": w_init,
    }


def train_linear_svm(features: Any, labels: Any, w: Any, b: Any, epochs: int, lr: float) -> Any:
    """The tutorial's ``train_linear_svm`` (``examples/mpc_linear_svm``): the same code runs
    on MPCTensors and, with ``sign``/``matmul`` from numpy, on plaintext arrays."""
    for _ in range(epochs):
        predictions = (w @ features + b).sign() if hasattr(w, "sign") else np.sign(
            w @ features + b
        )
        correct = predictions * labels
        loss_grad = -labels * (1 - correct) * 0.5  # hinge loss
        b_grad = loss_grad.mean()
        w_grad = (loss_grad @ features.transpose(1, 0)) / features.shape[1]
        w = w - w_grad * lr
        b = b - b_grad * lr
    return w, b


def accuracy(w: np.ndarray, b: np.ndarray, features: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.sign(w @ features + b) == labels))


def _write_private_files(data: dict[str, np.ndarray], directory: Path) -> dict[str, Path]:
    """The tutorial's ``save_all_data``: each file is written by its owner only."""
    features, labels = data["features"], data["labels"]
    half_f, half_n = NUM_FEATURES // 2, NUM_TRAIN // 2
    plan = {
        "features": (features, ALICE),
        "labels": (labels, BOB),
        "features_alice": (features[:half_f], ALICE),
        "features_bob": (features[half_f:], BOB),
        "samples_alice": (features[:, :half_n], ALICE),
        "samples_bob": (features[:, half_n:], BOB),
        "labels_alice": (labels, ALICE),
    }
    paths = {}
    for name, (array, owner) in plan.items():
        paths[name] = directory / f"{name}.npy"
        cl.save_from_party(array, paths[name], src=owner)  # only `owner` writes its file
    return paths


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args(argv or [])
    session = cl.current_session()
    if session.world_size < 2:
        raise SystemExit("run on at least 2 parties: crypten-lite-launch -n 2 ...")
    rank = session.rank
    data = make_data()
    w0, b0 = data["w_init"], np.zeros(1)
    w_plain, b_plain = train_linear_svm(
        data["features"], data["labels"], w0, b0, args.epochs, LR
    )
    results: dict[str, Any] = {
        "plaintext": {
            "w": w_plain,
            "b": b_plain,
            "accuracy": accuracy(w_plain, b_plain, data["test_features"], data["test_labels"]),
        }
    }
    with tempfile.TemporaryDirectory(prefix=f"access-control-party{rank}-") as private:
        files = _write_private_files(data, Path(private))

        # 1. data labeling: Alice loads the features, Bob the labels
        features_enc = cl.load_from_party(files["features"], src=ALICE)
        labels_enc = cl.load_from_party(files["labels"], src=BOB)
        scenarios = {"data_labeling": (features_enc, labels_enc)}

        # 2. feature aggregation (vertical split): concatenate along the feature dim
        alice = cl.load_from_party(files["features_alice"], src=ALICE)
        bob = cl.load_from_party(files["features_bob"], src=BOB)
        labels_enc = cl.load_from_party(files["labels_alice"], src=ALICE)
        scenarios["feature_aggregation"] = (cl.cat([alice, bob], dim=0), labels_enc)

        # 3. dataset augmentation (horizontal split): concatenate along the example dim
        alice = cl.load_from_party(files["samples_alice"], src=ALICE)
        bob = cl.load_from_party(files["samples_bob"], src=BOB)
        scenarios["dataset_augmentation"] = (cl.cat([alice, bob], dim=1), labels_enc)

    for name, (features, labels) in scenarios.items():
        w = cl.cryptensor(w0)  # public initial weights, shared from party 0
        b = cl.cryptensor(b0)
        w, b = train_linear_svm(features, labels, w, b, args.epochs, LR)
        w_out, b_out = w.get_plain_text(), b.get_plain_text()  # only the model is revealed
        acc = accuracy(w_out, b_out, data["test_features"], data["test_labels"])
        results[name] = {"w": w_out, "b": b_out, "accuracy": acc}
        if rank == 0:
            deviation = float(np.max(np.abs(w_out - w_plain)))
            plain_acc = results["plaintext"]["accuracy"]
            print(
                f"{name:<22} test accuracy {acc:.3f} (plaintext {plain_acc:.3f}), "
                f"max |w - w_plain| = {deviation:.1e}",
                flush=True,
            )
    return results


if __name__ == "__main__":
    main()
