"""Plain-numpy training of the two models used by ``examples/private_inference.py``.

The data are scikit-learn's bundled digits (1797 8x8 images, no download), scaled to [0, 1]
and split once with a fixed seed. Both models are trained with softmax cross-entropy, Adam
and hand-written gradients; the CNN's convolution is an im2col matmul. Everything is
deterministic (fixed numpy seeds), and the returned state dicts use torch's layouts and the
key names of the ``crypten_lite.nn.Sequential`` models that ``build_mlp``/``build_cnn`` in
the example define (``Linear.weight`` is ``(out, in)``, ``Conv2d.weight`` is
``(out, in, kh, kw)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
StateDict = dict[str, Array]

BATCH, LEARNING_RATE = 32, 3e-3


def load_split(seed: int = 0) -> tuple[Array, Array, Array, Array]:
    """``x_train, x_test, y_train, y_test``: images ``(n, 64)`` in [0, 1], labels 0..9;
    25% (450 images) held out."""
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

    digits = load_digits()
    x = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed)
    return x_train, x_test, y_train, y_test


def _softmax_grad(logits: Array, y: Array) -> Array:
    """Gradient of the mean softmax cross-entropy with respect to the logits."""
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return np.asarray(p / len(y))


class _Adam:
    def __init__(self, params: StateDict, lr: float = LEARNING_RATE) -> None:
        self.params, self.lr, self.t = params, lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads: StateDict, b1: float = 0.9, b2: float = 0.999) -> None:
        self.t += 1
        for k, g in grads.items():
            self.m[k] = b1 * self.m[k] + (1 - b1) * g
            self.v[k] = b2 * self.v[k] + (1 - b2) * g * g
            m_hat = self.m[k] / (1 - b1**self.t)
            v_hat = self.v[k] / (1 - b2**self.t)
            self.params[k] -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def _init(rng: np.random.Generator, fan_in: int, shape: tuple[int, ...]) -> Array:
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape)


# -- MLP 64-32-10: keys of Sequential(Linear, ReLU, Linear) ------------------------------------
def mlp_forward(p: StateDict, x: Array) -> tuple[Array, Array]:
    """Logits and the hidden activations of ``x`` ``(n, 64)``."""
    h = np.maximum(x @ p["0.weight"].T + p["0.bias"], 0.0)
    return h @ p["2.weight"].T + p["2.bias"], h


def train_mlp(x: Array, y: Array, epochs: int = 40, seed: int = 0) -> StateDict:
    rng = np.random.default_rng(seed)
    p = {
        "0.weight": _init(rng, 64, (32, 64)),
        "0.bias": _init(rng, 64, (32,)),
        "2.weight": _init(rng, 32, (10, 32)),
        "2.bias": _init(rng, 32, (10,)),
    }
    opt = _Adam(p)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            xb, yb = x[order[start : start + BATCH]], y[order[start : start + BATCH]]
            logits, h = mlp_forward(p, xb)
            d_logits = _softmax_grad(logits, yb)
            d_h = (d_logits @ p["2.weight"]) * (h > 0)
            opt.step(
                {
                    "0.weight": d_h.T @ xb,
                    "0.bias": d_h.sum(0),
                    "2.weight": d_logits.T @ h,
                    "2.bias": d_logits.sum(0),
                }
            )
    return p


# -- CNN: Sequential(Conv2d(1, 8, 3, padding=1), ReLU, MaxPool2d(2), Flatten, Linear(128, 10)) -
def _im2col(x: Array) -> Array:
    """``(n, 64)`` images -> ``(n, 64, 9)``: the 3x3 patch (zero padding 1) at each pixel."""
    padded = np.pad(x.reshape(-1, 8, 8), ((0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
    return windows.reshape(len(x), 64, 9)


def cnn_forward(p: StateDict, x: Array) -> tuple[Array, tuple[Array, Array, Array, Array]]:
    """Logits of ``x`` ``(n, 64)`` and what the backward pass needs."""
    n = len(x)
    cols = _im2col(x)
    conv = cols @ p["0.weight"].reshape(8, 9).T + p["0.bias"]  # (n, 64 pixels, 8 channels)
    act = np.maximum(conv, 0.0).transpose(0, 2, 1).reshape(n, 8, 4, 2, 4, 2)  # (n, C, H, W)
    pooled = act.max(axis=(3, 5))  # (n, 8, 4, 4)
    flat = pooled.reshape(n, 128)  # torch's Flatten: C, H, W order
    return flat @ p["4.weight"].T + p["4.bias"], (cols, act, pooled, flat)


def train_cnn(x: Array, y: Array, epochs: int = 25, seed: int = 0) -> StateDict:
    rng = np.random.default_rng(seed)
    p = {
        "0.weight": _init(rng, 9, (8, 1, 3, 3)),
        "0.bias": _init(rng, 9, (8,)),
        "4.weight": _init(rng, 128, (10, 128)),
        "4.bias": _init(rng, 128, (10,)),
    }
    opt = _Adam(p)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            xb, yb = x[order[start : start + BATCH]], y[order[start : start + BATCH]]
            n = len(xb)
            logits, (cols, act, pooled, flat) = cnn_forward(p, xb)
            d_logits = _softmax_grad(logits, yb)
            d_pooled = (d_logits @ p["4.weight"]).reshape(n, 8, 4, 1, 4, 1)
            # max pool backward: route to the window's maximum (ties share; relu zeros get 0)
            mask = (act == pooled[:, :, :, None, :, None]) & (act > 0)
            d_conv = (mask * d_pooled).reshape(n, 8, 64).transpose(0, 2, 1)  # (n, 64, 8)
            d_conv = d_conv.reshape(-1, 8)
            opt.step(
                {
                    "0.weight": (d_conv.T @ cols.reshape(-1, 9)).reshape(8, 1, 3, 3),
                    "0.bias": d_conv.sum(0),
                    "4.weight": d_logits.T @ flat,
                    "4.bias": d_logits.sum(0),
                }
            )
    return p


def accuracy(logits: Array, y: Array) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == y))
