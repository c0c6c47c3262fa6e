"""Optimizers (torch's names and argument order) over autograd Parameters."""

from __future__ import annotations

__all__: list[str] = []
