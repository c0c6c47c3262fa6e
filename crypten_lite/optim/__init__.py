"""Optimizers (torch's names and argument order) over autograd Parameters, on public and
secret-shared values, and learning-rate schedules (``optim.lr_scheduler``)."""

from __future__ import annotations

from crypten_lite.optim import lr_scheduler
from crypten_lite.optim.adam import Adam, AdamW
from crypten_lite.optim.optimizer import Optimizer
from crypten_lite.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "lr_scheduler"]
