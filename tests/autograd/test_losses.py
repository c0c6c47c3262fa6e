"""Losses: values and gradients against float64, bad input, the deferred value, BCE fused
with a preceding sigmoid (2 and 3 parties)."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.autograd import Parameter, Variable
from crypten_lite.runtime.testing import PartyFailure, run_parties

RNG = np.random.default_rng(7)
LOGITS = RNG.uniform(-3, 3, size=(6, 4))
LABELS = np.array([0, 3, 1, 2, 3, 0])
ONE_HOT = np.eye(4)[LABELS]
PROBS = RNG.uniform(0.2, 0.8, size=(6, 1))
BINARY = (RNG.random((6, 1)) > 0.5).astype(np.float64)


def _plain(loss_name: str, x: np.ndarray, target: np.ndarray, reduction: str):
    p = Parameter(x.copy())
    inp = p.sigmoid() if loss_name == "bce_sigmoid" else p
    fn = {
        "ce": cl.nn.CrossEntropyLoss,
        "nll": cl.nn.NLLLoss,
        "mse": cl.nn.MSELoss,
        "l1": cl.nn.L1Loss,
        "bce": cl.nn.BCELoss,
        "bce_sigmoid": cl.nn.BCELoss,
        "bce_logits": cl.nn.BCEWithLogitsLoss,
    }[loss_name](reduction=reduction)
    loss = fn(inp, target)
    grad = np.ones(loss.shape) if loss.shape else None
    loss.backward(grad)
    return np.asarray(loss.get_plain_text()), p.grad


CASES = [
    ("ce", LOGITS, LABELS, 2e-3),
    ("nll", LOGITS - 3.0, LABELS, 1e-4),
    ("mse", LOGITS, LOGITS[::-1].copy(), 1e-3),
    ("l1", LOGITS, np.zeros_like(LOGITS) + 0.5, 1e-3),
    ("bce", PROBS, BINARY, 1e-2),
    ("bce_sigmoid", LOGITS[:, :1], BINARY, 1e-2),
    ("bce_logits", LOGITS[:, :1], BINARY, 1e-2),
]


def _reference(name, x, target, reduction):
    """float64 loss and gradient by formulas independent of the library."""
    if name in ("ce", "nll"):
        hot = np.eye(x.shape[1])[target]
        if name == "ce":
            e = np.exp(x - x.max(1, keepdims=True))
            sm = e / e.sum(1, keepdims=True)
            per, grad = -(np.log(sm) * hot).sum(1), sm - hot
        else:
            per, grad = -(x * hot).sum(1), -hot
    elif name == "mse":
        per, grad = (x - target) ** 2, 2 * (x - target)
    elif name == "l1":
        per, grad = np.abs(x - target), np.sign(x - target)
    else:
        p = x if name == "bce" else 1 / (1 + np.exp(-x))
        per = -(target * np.log(p) + (1 - target) * np.log(1 - p))
        grad = (p - target) / (p * (1 - p)) if name == "bce" else p - target
    if reduction == "none":
        return per, grad
    scale = 1.0 / per.size if reduction == "mean" else 1.0
    return per.sum() * scale, grad * scale


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("name", "x", "target", "tol"), CASES, ids=[c[0] for c in CASES])
def test_plaintext_losses_match_float64(name, x, target, tol, reduction):
    value, grad = _plain(name, x, target, reduction)
    ref_value, ref_grad = _reference(name, x, target, reduction)
    np.testing.assert_allclose(value, ref_value, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize(("name", "x", "target", "tol"), CASES, ids=[c[0] for c in CASES])
def test_encrypted_losses_match_plaintext(name, x, target, tol, world):
    def job(session):
        with session.activate():
            p = Parameter(cl.cryptensor(x, src=0))
            inp = p.sigmoid() if name == "bce_sigmoid" else p
            secret_target = name not in ("ce", "nll")
            tgt = cl.cryptensor(target, src=1) if secret_target else target
            fn = {
                "ce": cl.nn.CrossEntropyLoss(),
                "nll": cl.nn.NLLLoss(),
                "mse": cl.nn.MSELoss(),
                "l1": cl.nn.L1Loss(),
                "bce": cl.nn.BCELoss(),
                "bce_sigmoid": cl.nn.BCELoss(),
                "bce_logits": cl.nn.BCEWithLogitsLoss(),
            }[name]
            loss = fn(inp, tgt)
            loss.backward()
            grad = p.grad  # public when it does not depend on a secret (NLL, public labels)
            plain = grad.get_plain_text() if isinstance(grad, cl.MPCTensor) else grad
            return loss.get_plain_text(), plain

    value, grad = run_parties(job, world)[0]
    ref_value, ref_grad = _reference(name, x, target, "mean")
    assert abs(float(value) - ref_value) < 10 * tol
    np.testing.assert_allclose(grad, ref_grad, atol=tol)


def test_secret_one_hot_targets_match_public_labels():
    def job(session):
        with session.activate():
            p = Parameter(cl.cryptensor(LOGITS, src=0))
            cl.nn.CrossEntropyLoss()(p, cl.cryptensor(ONE_HOT, src=1)).backward()
            return p.grad.get_plain_text()

    _, ref_grad = _reference("ce", LOGITS, LABELS, "mean")
    np.testing.assert_allclose(run_parties(job, 2)[0], ref_grad, atol=2e-3)


def test_loss_value_is_deferred_and_backward_does_not_need_it():
    def job(session):
        with session.activate():
            p = Parameter(cl.cryptensor(LOGITS, src=0))
            loss = cl.nn.CrossEntropyLoss()(p, LABELS)
            before = session.stats.rounds
            loss.backward()
            backward_rounds = session.stats.rounds - before
            loss.get_plain_text()  # now the log_softmax runs
            return backward_rounds, session.stats.rounds - before - backward_rounds

    backward_rounds, value_rounds = run_parties(job, 2)[0]
    assert backward_rounds > 0 and value_rounds > 1  # the value costs a log_softmax + reveal


def test_bce_after_sigmoid_skips_the_division():
    def job(session):
        with session.activate():
            p = Parameter(cl.cryptensor(LOGITS[:, :1], src=0))
            loss = cl.nn.BCELoss()(p.sigmoid(), cl.cryptensor(BINARY, src=1))
            before = session.stats.rounds
            loss.backward()
            return session.stats.rounds - before

    assert run_parties(job, 2)[0] == 0  # (p - y) / n goes straight to the logits: local


@pytest.mark.parametrize(
    ("loss", "x", "target", "error", "match"),
    [
        (cl.nn.CrossEntropyLoss(), LOGITS, np.array([0, 1, 2, 3, 4, 0]), ValueError, "label 4"),
        (cl.nn.CrossEntropyLoss(), LOGITS, np.array([0, 1]), ValueError, "labels of shape"),
        (cl.nn.CrossEntropyLoss(), LOGITS[0], LABELS[:1], ValueError, "shape \\(N, C\\)"),
        (cl.nn.NLLLoss(), LOGITS, np.array([-1, 0, 0, 0, 0, 0]), ValueError, "label -1"),
        (cl.nn.MSELoss(), LOGITS, LOGITS[:2], ValueError, "differ"),
        (cl.nn.BCELoss(), PROBS, BINARY + 1.0, ValueError, r"\[0, 1\]"),
        (cl.nn.BCEWithLogitsLoss(), LOGITS[:, :1], BINARY[:3], ValueError, "differ"),
    ],
)
def test_bad_loss_input_is_a_clear_error(loss, x, target, error, match):
    with pytest.raises(error, match=match):
        loss(Variable(x), target)


def test_bad_loss_input_raises_on_every_party_without_hanging():
    def job(session):
        with session.activate():
            p = Parameter(cl.cryptensor(LOGITS, src=0))
            cl.nn.CrossEntropyLoss()(p, np.array([0, 1, 2, 3, 9, 0]))

    with pytest.raises(PartyFailure) as info:
        run_parties(job, 2, timeout_s=30)
    parties = [info.value.failures.get(rank, "") for rank in (0, 1)]
    assert all("label 9 is out of range" in text for text in parties)


def test_bad_reduction_is_refused():
    with pytest.raises(ValueError, match="reduction"):
        cl.nn.MSELoss(reduction="avg")
