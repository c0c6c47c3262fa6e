"""Small models and data shared by the explain tests (test data only)."""

from __future__ import annotations

import numpy as np

from crypten_lite import nn

N_IN, N_HIDDEN, N_CLASSES = 6, 8, 3


def mlp(seed: int = 7) -> nn.Sequential:
    """Linear-Tanh-Linear: smooth, so integration errors shrink with n_steps."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Linear(N_IN, N_HIDDEN, rng=rng), nn.Tanh(), nn.Linear(N_HIDDEN, N_CLASSES, rng=rng)
    )


def cnn(seed: int = 11) -> nn.Sequential:
    """Conv2d-ReLU-MaxPool2d-Flatten-Linear on 1x8x8 images."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(18, N_CLASSES, rng=rng),
    )


def mlp_inputs(n: int = 3, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, N_IN))


def cnn_inputs(n: int = 2, seed: int = 9) -> np.ndarray:
    # distinct values: no ties in max pooling, no exact zeros at relu
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(64).reshape(1, 8, 8) / 32.0 - 1.0 + 1 / 64 for _ in range(n)])


def numpy_forward(model: nn.Module, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x), dtype=np.float64)


def finite_difference(
    model: nn.Module, x: np.ndarray, target: list[int], h: float = 1e-6
) -> np.ndarray:
    """d F(x)_target / dx by central differences (float64)."""
    grad = np.zeros_like(x)
    rows = np.arange(x.shape[0])
    for idx in np.ndindex(*x.shape[1:]):
        plus, minus = x.copy(), x.copy()
        plus[(slice(None), *idx)] += h
        minus[(slice(None), *idx)] -= h
        diff = numpy_forward(model, plus)[rows, target] - numpy_forward(model, minus)[rows, target]
        grad[(slice(None), *idx)] = diff / (2 * h)
    return grad
