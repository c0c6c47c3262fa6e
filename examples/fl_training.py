"""Local training on an edge client for the federated demo: numpy only, hand-written
gradients. Demo code, not part of the SDK (the SDK's FedAvg packing is
:func:`crypten_lite.client.pack_weighted_update`).

Two models over flat float64 parameter vectors: multinomial logistic regression
(``kind="logreg"``: ``W (features x classes)`` then ``b``) and a one-hidden-layer MLP with
ReLU (``kind="mlp"``: ``W1, b1, W2, b2``). Cross-entropy loss, mini-batch SGD.

Data: scikit-learn's bundled digits (8x8 images, 10 classes, offline), imported lazily so
this module needs only numpy. :func:`partition_non_iid` gives each client mostly
``classes_per_client`` classes (McMahan et al.'s sort-and-shard split).

"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "DigitsData",
    "ModelSpec",
    "accuracy",
    "init_params",
    "load_digits_split",
    "local_train",
    "partition_non_iid",
    "predict_logits",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ModelSpec:
    """Which model and its sizes; ``num_params`` is the flat vector's length."""

    kind: str = "logreg"
    features: int = 64
    classes: int = 10
    hidden: int = 32

    def __post_init__(self) -> None:
        if self.kind not in ("logreg", "mlp"):
            raise ValueError(f"kind must be 'logreg' or 'mlp', got {self.kind!r}")
        for name in ("features", "classes", "hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        if self.kind == "logreg":
            return [(self.features, self.classes), (self.classes,)]
        return [
            (self.features, self.hidden),
            (self.hidden,),
            (self.hidden, self.classes),
            (self.classes,),
        ]

    @property
    def num_params(self) -> int:
        return sum(int(np.prod(s)) for s in self.shapes)

    def unflatten(self, params: F64) -> list[F64]:
        if params.shape != (self.num_params,):
            raise ValueError(f"params must have shape ({self.num_params},), got {params.shape}")
        out, offset = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            out.append(params[offset : offset + size].reshape(shape))
            offset += size
        return out


@dataclass(frozen=True)
class DigitsData:
    """Train/test split of the digits (pixels scaled to [0, 1])."""

    x_train: F64
    y_train: I64
    x_test: F64
    y_test: I64


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> DigitsData:
    """Digits from scikit-learn (lazy import), shuffled with a public ``seed`` and split."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]  # lazy

    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    cut = round(len(y) * (1 - test_fraction))
    train, test = order[:cut], order[cut:]
    return DigitsData(x[train], y[train], x[test], y[test])


def partition_non_iid(
    labels: npt.ArrayLike, num_clients: int, classes_per_client: int = 2, seed: int = 0
) -> list[I64]:
    """Indices for each client: sort by label, cut into ``num_clients·classes_per_client``
    shards, deal each client ``classes_per_client`` random shards (so mostly that many
    classes). Every client gets at least one example."""
    y = np.asarray(labels).reshape(-1)
    if isinstance(num_clients, bool) or not isinstance(num_clients, int) or num_clients < 1:
        raise ValueError(f"num_clients must be a positive int, got {num_clients!r}")
    if classes_per_client < 1:
        raise ValueError(f"classes_per_client must be >= 1, got {classes_per_client!r}")
    shards = num_clients * classes_per_client
    if shards > y.size:
        raise ValueError(f"{y.size} examples cannot make {shards} non-empty shards")
    rng = np.random.default_rng(seed)
    order = np.argsort(y, kind="stable")
    pieces = np.array_split(order, shards)
    deal = rng.permutation(shards).reshape(num_clients, classes_per_client)
    return [np.sort(np.concatenate([pieces[s] for s in row])).astype(np.int64) for row in deal]


def init_params(spec: ModelSpec, seed: int = 0) -> F64:
    """Initial parameters (public seed): zeros for logreg, scaled Gaussian for the MLP."""
    if spec.kind == "logreg":
        return np.zeros(spec.num_params)
    rng = np.random.default_rng(seed)
    parts = []
    for shape in spec.shapes:
        if len(shape) == 2:
            parts.append(rng.normal(0, np.sqrt(2.0 / shape[0]), size=shape).reshape(-1))
        else:
            parts.append(np.zeros(shape[0]))
    return np.concatenate(parts)


def predict_logits(spec: ModelSpec, params: npt.ArrayLike, x: npt.ArrayLike) -> F64:
    p = spec.unflatten(np.asarray(params, dtype=np.float64))
    xs = np.asarray(x, dtype=np.float64)
    if spec.kind == "logreg":
        return xs @ p[0] + p[1]
    hidden = np.maximum(xs @ p[0] + p[1], 0.0)
    return hidden @ p[2] + p[3]


def accuracy(spec: ModelSpec, params: npt.ArrayLike, x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Fraction of ``x`` classified as ``y``."""
    return float(np.mean(predict_logits(spec, params, x).argmax(axis=1) == np.asarray(y)))


def _softmax_grad(logits: F64, y: I64) -> F64:
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z)
    probs /= probs.sum(axis=1, keepdims=True)
    probs[np.arange(y.size), y] -= 1.0
    out: F64 = probs / y.size  # d(mean cross-entropy)/d(logits)
    return out


def _gradient(spec: ModelSpec, params: F64, x: F64, y: I64, l2: float) -> F64:
    p = spec.unflatten(params)
    if spec.kind == "logreg":
        g = _softmax_grad(x @ p[0] + p[1], y)
        grads = [x.T @ g + l2 * p[0], g.sum(axis=0)]
    else:
        pre = x @ p[0] + p[1]
        hidden = np.maximum(pre, 0.0)
        g = _softmax_grad(hidden @ p[2] + p[3], y)
        g_hidden = (g @ p[2].T) * (pre > 0)
        grads = [
            x.T @ g_hidden + l2 * p[0],
            g_hidden.sum(axis=0),
            hidden.T @ g + l2 * p[2],
            g.sum(axis=0),
        ]
    out: F64 = np.concatenate([gr.reshape(-1) for gr in grads])
    return out


def local_train(
    spec: ModelSpec,
    params: npt.ArrayLike,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    epochs: int = 5,
    lr: float = 0.5,
    batch_size: int = 32,
    l2: float = 1e-4,
    seed: int = 0,
) -> F64:
    """Mini-batch SGD from ``params`` on ``(x, y)``; returns the trained parameters."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.int64).reshape(-1)
    if xs.ndim != 2 or xs.shape[1] != spec.features or xs.shape[0] != ys.size:
        raise ValueError(f"x must have shape (n, {spec.features}) matching y, got {xs.shape}")
    if epochs < 0 or batch_size < 1 or not lr > 0:
        raise ValueError("epochs must be >= 0, batch_size >= 1 and lr > 0")
    out = np.array(params, dtype=np.float64).reshape(-1)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(ys.size)
        for start in range(0, ys.size, batch_size):
            idx = order[start : start + batch_size]
            out -= lr * _gradient(spec, out, xs[idx], ys[idx], l2)
    return out
