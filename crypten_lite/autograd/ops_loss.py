"""Loss functions with their gradients: MSE, L1, BCE, BCE with logits, cross-entropy, NLL.

Targets are constants: public (numpy, checked: shapes, label range, values in [0, 1] for
BCE) or secret-shared (an MPCTensor, e.g. labels held by another party; only the shapes can
be checked). A loss value that needs a logarithm is *deferred* (``Variable.deferred``): it is
computed when first read (``get_plain_text``), so a training step that never reads it does
not pay for it — the gradients below do not need it.

Gradients (``s`` the reduction's scale, ``1/n`` for ``mean``; rounds with 2 parties):

* cross_entropy: ``(softmax(x) - onehot) s``: one softmax; the loss value adds a log_softmax.
* binary_cross_entropy of ``p = sigmoid(z)`` (the usual case): ``(p - y) s`` straight to
  ``z``, local (the sigmoid's own rule and its division by ``p (1 - p)`` are skipped; exact
  chain rule). Of any other ``p``: ``(p - y) / (p (1 - p)) s``, a reciprocal (accurate for
  ``p (1 - p) >= 0.1``, i.e. ``p`` in about [0.13, 0.87]: prefer logits).
* binary_cross_entropy_with_logits: ``(sigmoid(z) - y) s``: one sigmoid (5 rounds).
* mse: ``2 (x - y) s``: local with a public upstream gradient. l1: ``sign(x - y) s`` with the
  forward's comparison bit. nll: ``-onehot s``: local.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from crypten_lite.autograd import ops_arith, ops_shape, ops_unary
from crypten_lite.autograd.graph import record
from crypten_lite.autograd.ops_arith import unpack
from crypten_lite.autograd.values import Value, vsum
from crypten_lite.tensor import MPCTensor
from crypten_lite.tensor import cat as mpc_cat

if TYPE_CHECKING:
    from crypten_lite.autograd.variable import Variable

__all__ = [
    "Reduction",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "l1_loss",
    "mse_loss",
    "nll_loss",
]

Reduction = Literal["mean", "sum", "none"]
F64 = npt.NDArray[np.float64]
_LOG_FLOOR = -100.0  # torch clamps log(p) at -100 in binary_cross_entropy


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _target(target: Any, name: str) -> Value:
    from crypten_lite.autograd.variable import Variable

    value = target.data if isinstance(target, Variable) else target
    if isinstance(value, MPCTensor):
        return value
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: target must be numeric or an MPCTensor")
    return np.asarray(arr, dtype=np.float64)


def _same_shape(name: str, a: tuple[int, ...], b: tuple[int, ...]) -> None:
    if a != b:
        raise ValueError(f"{name}: input of shape {a} and target of shape {b} differ")


def _reduce(value: Value, reduction: Reduction) -> Value:
    if reduction == "none":
        return value
    total = vsum(value, tuple(range(value.ndim)), keepdim=False)
    if reduction == "sum":
        return total
    return total * (1.0 / max(int(np.prod(value.shape)), 1))


def _spread(g: Value, shape: tuple[int, ...], reduction: Reduction) -> Value:
    """The upstream gradient of the reduced loss, per element (times ``1/n`` for mean)."""
    if reduction == "none":
        return g
    scale = 1.0 / max(int(np.prod(shape)), 1) if reduction == "mean" else 1.0
    if isinstance(g, MPCTensor):
        return g.expand(*shape).mul(scale)
    return np.broadcast_to(np.asarray(g) * scale, shape).copy()


def _reduce_variable(loss: Variable, reduction: Reduction) -> Variable:
    if reduction == "none":
        return loss
    return ops_shape.sum(loss) if reduction == "sum" else ops_shape.mean(loss)


def mse_loss(x: Any, target: Any, reduction: Reduction = "mean") -> Variable:
    """``(x - y)^2``, reduced. Forward: one product (1 round)."""
    _check_reduction(reduction)
    y = _target(target, "mse_loss")
    vx, _ = unpack(x, "mse_loss")
    _same_shape("mse_loss", tuple(vx.shape), tuple(y.shape))
    d = ops_arith.sub(x, y)
    return _reduce_variable(ops_arith.mul(d, d), reduction)


def l1_loss(x: Any, target: Any, reduction: Reduction = "mean") -> Variable:
    """``|x - y|``, reduced. Forward: one comparison and product (4 rounds)."""
    _check_reduction(reduction)
    y = _target(target, "l1_loss")
    vx, _ = unpack(x, "l1_loss")
    _same_shape("l1_loss", tuple(vx.shape), tuple(y.shape))
    return _reduce_variable(ops_unary.abs(ops_arith.sub(x, y)), reduction)


def _check_probabilities(y: Value, name: str) -> None:
    if isinstance(y, np.ndarray) and y.size and (float(y.min()) < 0 or float(y.max()) > 1):
        raise ValueError(f"{name}: targets must lie in [0, 1]")


def binary_cross_entropy(p: Any, target: Any, reduction: Reduction = "mean") -> Variable:
    """``-(y log p + (1 - y) log(1 - p))``, reduced; value deferred (one batched ``log``:
    7 rounds when read); gradient: see module doc."""
    from crypten_lite.autograd.variable import Variable

    _check_reduction(reduction)
    y = _target(target, "binary_cross_entropy")
    vp, sp = unpack(p, "binary_cross_entropy")
    shape = tuple(vp.shape)
    _same_shape("binary_cross_entropy", shape, tuple(y.shape))
    _check_probabilities(y, "binary_cross_entropy")
    if isinstance(vp, np.ndarray) and vp.size and (vp.min() < 0 or vp.max() > 1):
        raise ValueError("binary_cross_entropy: inputs must lie in [0, 1]")

    def value() -> Value:
        if isinstance(vp, MPCTensor):
            both = mpc_cat([vp.reshape(-1), (1.0 - vp).reshape(-1)], 0).log()
            n = int(np.prod(shape))
            log_p, log_q = both[:n].reshape(*shape), both[n:].reshape(*shape)
            per: Value = -(log_q + (log_p - log_q) * y)
        else:
            with np.errstate(divide="ignore"):
                plain_p = np.maximum(np.log(vp), _LOG_FLOOR)
                plain_q = np.maximum(np.log(1.0 - vp), _LOG_FLOOR)
            per = -(y * plain_p + (1.0 - y) * plain_q)
        return _reduce(per, reduction)

    out_shape = shape if reduction == "none" else ()
    out = Variable.deferred(out_shape, value)
    fused = sp.grad_fn.sigmoid_of if sp is not None and sp.grad_fn is not None else None
    if fused is not None:

        def backward_logits(g: Value) -> tuple[Value]:
            return (_spread(g, shape, reduction) * (vp - y),)

        return record(out, (fused,), backward_logits, "BinaryCrossEntropyWithSigmoid")

    def backward(g: Value) -> tuple[Value]:
        odds = vp - vp * vp
        inverse: Value
        inverse = odds.reciprocal(all_pos=True) if isinstance(odds, MPCTensor) else 1.0 / odds
        return (_spread(g, shape, reduction) * ((vp - y) * inverse),)

    return record(out, (sp,), backward, "BinaryCrossEntropy")


def binary_cross_entropy_with_logits(
    z: Any, target: Any, reduction: Reduction = "mean"
) -> Variable:
    """``softplus(z) - y z``, reduced; value deferred (``relu(z) + log(1 + e^-|z|) - y z``: one
    comparison, one exp, one log when read); gradient ``(sigmoid(z) - y) s`` (5 rounds)."""
    from crypten_lite.autograd.variable import Variable

    _check_reduction(reduction)
    y = _target(target, "binary_cross_entropy_with_logits")
    vz, sz = unpack(z, "binary_cross_entropy_with_logits")
    shape = tuple(vz.shape)
    _same_shape("binary_cross_entropy_with_logits", shape, tuple(y.shape))
    _check_probabilities(y, "binary_cross_entropy_with_logits")

    def value() -> Value:
        per: Value
        if isinstance(vz, MPCTensor):
            positive, _ = vz.relu_with_mask()
            magnitude = positive * 2 - vz
            per = positive + ((-magnitude).exp() + 1.0).log() - vz * y
        else:
            per = np.maximum(vz, 0) + np.log1p(np.exp(-np.abs(vz))) - vz * y
        return _reduce(per, reduction)

    out = Variable.deferred(shape if reduction == "none" else (), value)

    def backward(g: Value) -> tuple[Value]:
        probs: Value = vz.sigmoid() if isinstance(vz, MPCTensor) else _sigmoid(vz)
        return (_spread(g, shape, reduction) * (probs - y),)

    return record(out, (sz,), backward, "BinaryCrossEntropyWithLogits")


def _sigmoid(x: F64) -> F64:
    e = np.exp(-np.abs(x))
    return np.asarray(np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)), dtype=np.float64)


def _one_hot(target: Any, shape: tuple[int, ...], name: str) -> Value:
    """Public integer labels ``(N,)`` as a one-hot ``(N, C)`` array (checked), or public class
    probabilities / a secret one-hot tensor ``(N, C)`` as they are."""
    from crypten_lite.autograd.variable import Variable

    value = target.data if isinstance(target, Variable) else target
    if isinstance(value, MPCTensor):
        _same_shape(name, shape, tuple(value.shape))
        return value
    labels = np.asarray(value)
    n, classes = shape
    if labels.dtype.kind == "f" and labels.shape == shape:  # class probabilities, as torch
        _check_probabilities(labels, name)
        return np.asarray(labels, dtype=np.float64)
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"{name}: public targets are integer class labels (N,) or class probabilities "
            f"{shape}, got dtype {labels.dtype} and shape {labels.shape}"
        )
    if labels.shape != (n,):
        raise ValueError(f"{name}: input of shape {shape} needs labels of shape ({n},), "
                         f"got {labels.shape}")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        bad = int(labels.min()) if int(labels.min()) < 0 else int(labels.max())
        raise ValueError(f"{name}: label {bad} is out of range for {classes} classes")
    hot = np.zeros(shape, dtype=np.float64)
    hot[np.arange(n), labels] = 1.0
    return hot


def _per_sample_mean(per: Value, reduction: Reduction) -> Value:
    return _reduce(per, reduction)


def cross_entropy(x: Any, target: Any, reduction: Reduction = "mean") -> Variable:
    """torch's cross_entropy on logits ``(N, C)`` with integer labels ``(N,)`` (public) or a
    one-hot/probability target ``(N, C)`` (public or secret). Value deferred (one
    log_softmax when read); gradient ``(softmax(x) - y) s`` (one softmax)."""
    from crypten_lite.autograd.variable import Variable

    _check_reduction(reduction)
    vx, sx = unpack(x, "cross_entropy")
    if vx.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (N, C), got {tuple(vx.shape)}")
    shape = (int(vx.shape[0]), int(vx.shape[1]))
    hot = _one_hot(target, shape, "cross_entropy")
    per_shape = (shape[0],)

    def value() -> Value:
        logp: Value
        if isinstance(vx, MPCTensor):
            logp = vx.log_softmax(1)
        else:
            shifted = vx - np.max(vx, axis=1, keepdims=True)
            logp = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        per = -vsum(logp * hot, (1,), keepdim=False)
        return _per_sample_mean(per, reduction)

    out = Variable.deferred(per_shape if reduction == "none" else (), value)

    def backward(g: Value) -> tuple[Value]:
        probs: Value
        if isinstance(vx, MPCTensor):
            probs = vx.softmax(1)
        else:
            e = np.exp(vx - np.max(vx, axis=1, keepdims=True))
            probs = e / np.sum(e, axis=1, keepdims=True)
        scale = _spread(g, per_shape, reduction)
        scale = scale.reshape(shape[0], 1)
        return (scale * (probs - hot),)

    return record(out, (sx,), backward, "CrossEntropy")


def nll_loss(logp: Any, target: Any, reduction: Reduction = "mean") -> Variable:
    """torch's nll_loss on log-probabilities ``(N, C)``: ``-logp[i, y_i]``, reduced (local for
    public labels; one product for a secret one-hot). Gradient ``-onehot s`` (local)."""
    _check_reduction(reduction)
    vx, sx = unpack(logp, "nll_loss")
    if vx.ndim != 2:
        raise ValueError(f"nll_loss expects input of shape (N, C), got {tuple(vx.shape)}")
    shape = (int(vx.shape[0]), int(vx.shape[1]))
    hot = _one_hot(target, shape, "nll_loss")
    per = -vsum(vx * hot, (1,), keepdim=False)
    per_shape = (shape[0],)

    def backward(g: Value) -> tuple[Value]:
        scale = _spread(g, per_shape, reduction).reshape(shape[0], 1)
        return (-(scale * hot),)

    return record(_reduce(per, reduction), (sx,), backward, "NLLLoss")
