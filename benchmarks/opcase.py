"""One benchmarked MPCTensor operation: inputs, the secure op, its plaintext twin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import crypten_lite as cl

__all__ = ["Array", "OpCase"]

Array = np.ndarray


@dataclass(frozen=True)
class OpCase:
    name: str
    params: dict[str, Any]
    inputs: Callable[[np.random.Generator], list[Array]]
    secure: Callable[..., cl.MPCTensor]
    plain: Callable[..., Any]
    crypten_ms: tuple[float, float] | None = None  # 2 parties: insecure / secure dealer
    #: run once per session before timing (e.g. encrypt a model); its result is passed to
    #: ``secure`` as the first argument
    prepare: Callable[[], Any] | None = None
