"""Integration rules of Integrated Gradients: Captum 0.9's ``approximation_methods`` in numpy.

``alphas(n)`` are the points of the path ``baseline + alpha (x - baseline)`` and
``step_sizes(n)`` their weights; both are public float64 arrays. Gauss-Legendre nodes and
weights come from ``np.polynomial.legendre.leggauss(n)`` rescaled from ``[-1, 1]`` to
``[0, 1]`` exactly as Captum does (``0.5 (1 + nodes)``, ``0.5 weights``); the Riemann rules
use ``linspace`` points and equal steps ``1/n`` (halved at both ends for the trapezoid).
"""

from __future__ import annotations

from typing import Any, Literal, cast, get_args

import numpy as np
import numpy.typing as npt

__all__ = [
    "SUPPORTED_METHODS",
    "SUPPORTED_RIEMANN_METHODS",
    "Method",
    "approximation_parameters",
]

F64 = npt.NDArray[np.float64]

#: Captum's integration rules for the path integral.
Method = Literal[
    "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"
]
SUPPORTED_METHODS: tuple[str, ...] = get_args(Method)
SUPPORTED_RIEMANN_METHODS = SUPPORTED_METHODS[:4]


def check_method(method: Any, n_steps: Any) -> tuple[Method, int]:
    """Validate ``method`` and ``n_steps`` (ValueError/TypeError naming them)."""
    if not isinstance(method, str) or method not in SUPPORTED_METHODS:
        raise ValueError(
            f"method must be one of {', '.join(SUPPORTED_METHODS)}, got {method!r}"
        )
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer):
        raise TypeError(f"n_steps must be an int, got {type(n_steps).__name__}")
    n = int(n_steps)
    if n < 1:
        raise ValueError(f"n_steps must be at least 1, got {n}")
    if method != "gausslegendre" and n < 2:
        raise ValueError(f"n_steps must be at least 2 for {method} (Captum's rule), got {n}")
    return cast(Method, method), n


def approximation_parameters(method: str, n_steps: int) -> tuple[F64, F64]:
    """``(step_sizes, alphas)`` of ``method`` with ``n_steps`` points (Captum's values)."""
    method, n = check_method(method, n_steps)
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return np.asarray(0.5 * weights, np.float64), np.asarray(0.5 * (1 + nodes), np.float64)
    steps = np.full(n, 1.0 / n)
    if method == "riemann_trapezoid":
        steps[0] /= 2
        steps[-1] /= 2
        alphas = np.linspace(0.0, 1.0, n)
    elif method == "riemann_left":
        alphas = np.linspace(0.0, 1.0 - 1.0 / n, n)
    elif method == "riemann_middle":
        alphas = np.linspace(1.0 / (2 * n), 1.0 - 1.0 / (2 * n), n)
    else:  # riemann_right
        alphas = np.linspace(1.0 / n, 1.0, n)
    return steps, alphas
