"""BatchNorm and Dropout in training mode: plaintext autograd against float64 references,
encrypted (2 and 3 parties) against the numpy Variable run."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite import nn
from crypten_lite.autograd import Variable
from crypten_lite.runtime.testing import run_parties

WORLDS = [2, 3]


def _bn_reference(x, w, b, eps, g):
    axes = (0, 2, 3)
    shape = (1, -1, 1, 1)
    n = x.size // x.shape[1]
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    inv = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * inv
    out = xhat * w.reshape(shape) + b.reshape(shape)
    gw = (g * xhat).sum(axis=axes)
    gb = g.sum(axis=axes)
    gx_hat = g * w.reshape(shape)
    gx = inv / n * (n * gx_hat - gx_hat.sum(axis=axes, keepdims=True)
                    - xhat * (gx_hat * xhat).sum(axis=axes, keepdims=True))
    return out, gw, gb, gx


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4, 3, 3, 3)) * np.array([0.5, 1.0, 2.0])[None, :, None, None] + 0.3
    g = rng.normal(size=x.shape)
    w = rng.uniform(0.5, 1.5, size=3)
    b = rng.normal(size=3)
    return x, g, w, b


def _numpy_run(x, g, w, b, steps=1):
    bn = nn.BatchNorm2d(3)
    bn.weight, bn.bias = w.copy(), b.copy()
    bn.requires_grad_()
    for _ in range(steps):
        xv = Variable(x, requires_grad=True)
        out = bn(xv)
        bn.zero_grad()
        out.backward(g)
    return bn, out, xv


def test_batchnorm_training_plaintext_autograd_matches_reference():
    x, g, w, b = _data()
    bn, out, xv = _numpy_run(x, g, w, b)
    want, gw, gb, gx = _bn_reference(x, w, b, 1e-5, g)
    np.testing.assert_allclose(out.data, want, atol=1e-12)
    np.testing.assert_allclose(bn.weight.grad, gw, atol=1e-10)
    np.testing.assert_allclose(bn.bias.grad, gb, atol=1e-10)
    np.testing.assert_allclose(xv.grad, gx, atol=1e-10)
    # running statistics as the plain numpy path (torch's update)
    plain = nn.BatchNorm2d(3)
    plain(x)
    np.testing.assert_allclose(bn.running_mean, plain.running_mean, atol=1e-12)
    np.testing.assert_allclose(bn.running_var, plain.running_var, atol=1e-12)
    assert int(bn.num_batches_tracked) == 1


def test_batchnorm_training_against_torch():
    torch = pytest.importorskip("torch")
    x, g, w, b = _data(1)
    bn, out, xv = _numpy_run(x, g, w, b)
    tb = torch.nn.BatchNorm2d(3).double()
    with torch.no_grad():
        tb.weight.copy_(torch.tensor(w))
        tb.bias.copy_(torch.tensor(b))
    tx = torch.tensor(x, requires_grad=True)
    tout = tb(tx)
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(xv.grad, tx.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(bn.running_var, tb.running_var.numpy(), atol=1e-10)


@pytest.mark.parametrize("world", WORLDS)
def test_batchnorm_training_encrypted(world):
    x, g, w, b = _data(2)
    ref, ref_out, ref_x = _numpy_run(x, g, w, b, steps=2)

    def party(session):
        bn = nn.BatchNorm2d(3)
        bn.weight, bn.bias = w.copy(), b.copy()
        bn.encrypt().requires_grad_()
        for _ in range(2):
            xv = Variable(cl.cryptensor(x, src=0), requires_grad=True)
            out = bn(xv)
            bn.zero_grad()
            out.backward(cl.cryptensor(g, src=0))
        return (
            out.get_plain_text(), bn.weight.grad.get_plain_text(),
            bn.bias.grad.get_plain_text(), xv.grad.get_plain_text(),
            bn.running_mean.get_plain_text(), bn.running_var.get_plain_text(),
            int(bn.num_batches_tracked),
        )

    out, gw, gb, gx, rm, rv, count = run_parties(party, world)[0]
    np.testing.assert_allclose(out, ref_out.data, atol=1e-2)
    np.testing.assert_allclose(gw, ref.weight.grad, atol=1e-2)
    np.testing.assert_allclose(gb, ref.bias.grad, atol=1e-2)
    np.testing.assert_allclose(gx, ref_x.grad, atol=1e-2)
    np.testing.assert_allclose(rm, ref.running_mean, atol=1e-3)
    np.testing.assert_allclose(rv, ref.running_var, atol=1e-3)
    assert count == 2


def test_batchnorm_eval_unchanged_and_encrypted_input_plain_module():
    x, _, _, _ = _data(3)

    def party(session):
        bn = nn.BatchNorm2d(3)
        out = bn(cl.cryptensor(x, src=0))  # training mode, plaintext module, MPCTensor input
        bn.eval()
        ev = bn(cl.cryptensor(x, src=0))
        return out.get_plain_text(), ev.get_plain_text(), bn.running_mean.get_plain_text()

    out, ev, rm = run_parties(party, 2)[0]
    plain = nn.BatchNorm2d(3)
    want = plain(x)
    np.testing.assert_allclose(out, want, atol=1e-2)
    np.testing.assert_allclose(rm, plain.running_mean, atol=1e-3)
    plain.eval()
    np.testing.assert_allclose(ev, plain(x), atol=1e-2)


# -- dropout -------------------------------------------------------------------------------
@pytest.mark.parametrize("world", WORLDS)
def test_dropout_encrypted_shared_public_mask(world):
    p = 0.3
    x = np.random.default_rng(4).uniform(1.0, 2.0, size=(100, 100))
    g = np.random.default_rng(5).normal(size=x.shape)

    def party(session):
        calls = []
        original = session.comm.broadcast

        def counting(value, src):
            calls.append(src)
            return original(value, src)

        layer = nn.Dropout(p)
        xv = Variable(cl.cryptensor(x, src=0), requires_grad=True)
        session.comm.broadcast = counting
        try:
            out = layer(xv)
            second = layer(cl.cryptensor(x, src=0))
            broadcasts = len(calls)
        finally:
            session.comm.broadcast = original
        out.backward(cl.cryptensor(g, src=0))
        layer.eval()
        ev = layer(cl.cryptensor(x, src=0))
        return (out.get_plain_text(), xv.grad.get_plain_text(), second.get_plain_text(),
                ev.get_plain_text(), broadcasts)

    results = run_parties(party, world)
    out, grad, second, ev, broadcasts = results[0]
    # one seed broadcast (plus the cryptensor announcements made inside the window: one)
    assert broadcasts == 2
    for other in results[1:]:
        np.testing.assert_array_equal(other[0] == 0, out == 0)
    kept = out != 0
    assert abs(kept.mean() - (1 - p)) < 0.02
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), atol=1e-3)
    np.testing.assert_allclose(grad, kept * g / (1 - p), atol=1e-3)
    assert not np.array_equal(second != 0, kept)  # the stream moves on
    np.testing.assert_allclose(ev, x, atol=1e-4)


def test_dropout_plaintext_keeps_rng_behaviour():
    x = np.ones((50, 50))
    a = nn.Dropout(0.5, rng=np.random.default_rng(0))(x)
    b = nn.Dropout(0.5, rng=np.random.default_rng(0))(x)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, 2.0}
    layer = nn.Dropout(0.5)
    layer.eval()
    np.testing.assert_array_equal(layer(x), x)
