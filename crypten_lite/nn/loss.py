"""Loss modules with torch's names and argument order; the maths and the gradients live in
:mod:`crypten_lite.autograd.ops_loss` (see there for costs and for the deferred loss value)."""

from __future__ import annotations

from typing import Any

from crypten_lite.autograd import ops_loss
from crypten_lite.autograd.ops_loss import Reduction
from crypten_lite.nn.module import Module

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "L1Loss",
    "MSELoss",
    "NLLLoss",
]


class _Loss(Module):
    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction: Reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"

    def _pair(self, args: tuple[Any, ...]) -> tuple[Any, Any]:
        if len(args) != 2:
            raise TypeError(f"{type(self).__name__} takes (input, target), got {len(args)} args")
        return args[0], args[1]


class MSELoss(_Loss):
    """Mean squared error."""

    def forward(self, *args: Any) -> Any:
        return ops_loss.mse_loss(*self._pair(args), reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error."""

    def forward(self, *args: Any) -> Any:
        return ops_loss.l1_loss(*self._pair(args), reduction=self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities (fused with a preceding sigmoid; see
    ``ops_loss``)."""

    def forward(self, *args: Any) -> Any:
        return ops_loss.binary_cross_entropy(*self._pair(args), reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits."""

    def forward(self, *args: Any) -> Any:
        return ops_loss.binary_cross_entropy_with_logits(
            *self._pair(args), reduction=self.reduction
        )


class CrossEntropyLoss(_Loss):
    """Cross-entropy on logits ``(N, C)``: integer labels (public) or one-hot targets
    (public or secret-shared)."""

    def forward(self, *args: Any) -> Any:
        return ops_loss.cross_entropy(*self._pair(args), reduction=self.reduction)


class NLLLoss(_Loss):
    """Negative log-likelihood on log-probabilities ``(N, C)``."""

    def forward(self, *args: Any) -> Any:
        return ops_loss.nll_loss(*self._pair(args), reduction=self.reduction)
