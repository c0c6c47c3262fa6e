"""Whether operations record a graph: ``no_grad()`` / ``enable_grad()`` (context variable, per
thread and per task like the current session; no module state)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

__all__ = ["enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]

_GRAD_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "crypten_lite_grad_enabled", default=True
)


def is_grad_enabled() -> bool:
    """True unless inside :func:`no_grad`."""
    return _GRAD_ENABLED.get()


@contextlib.contextmanager
def set_grad_enabled(mode: bool) -> Iterator[None]:
    """Record graphs inside the block iff ``mode``."""
    if not isinstance(mode, bool):
        raise TypeError(f"set_grad_enabled expects a bool, got {type(mode).__name__}")
    token = _GRAD_ENABLED.set(mode)
    try:
        yield
    finally:
        _GRAD_ENABLED.reset(token)


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Inside the block operations record no graph (inference, optimizer updates)."""
    return set_grad_enabled(False)


def enable_grad() -> contextlib.AbstractContextManager[None]:
    """Record graphs inside the block, also within :func:`no_grad`."""
    return set_grad_enabled(True)
