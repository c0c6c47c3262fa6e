"""The backward engine: accumulation, reuse, detach, no_grad, freed graphs, argument errors,
named tensors; and the exact rounds of a few backward rules (``session.stats``)."""

from __future__ import annotations

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.autograd import Parameter, Variable, enable_grad, no_grad
from crypten_lite.runtime.testing import run_parties
from crypten_lite.tensor import MPCTensor

_DATA = np.random.default_rng(20260312)
A = _DATA.uniform(-2, 2, (3, 4))
B = _DATA.uniform(-2, 2, (3, 4))
R = _DATA.normal(size=(3, 4))


def leaf(a: np.ndarray = A) -> Variable:
    return Variable(a.copy(), requires_grad=True)


# -- accumulation and reuse -----------------------------------------------------------------
def test_two_backward_calls_accumulate():
    x = leaf()
    (x * R).sum().backward()
    first = x.grad.copy()
    (x * x).sum().backward()
    np.testing.assert_allclose(first, R)
    np.testing.assert_allclose(x.grad, R + 2 * A, rtol=1e-12)
    x.zero_grad()
    assert x.grad is None


def test_value_used_twice_gets_the_sum():
    x = leaf()
    y = x * 3.0
    loss = (y * R).sum() + (y * y).sum() + x.sum()
    loss.backward()
    np.testing.assert_allclose(x.grad, 3 * R + 18 * A + 1, rtol=1e-12)


def test_diamond_graph():
    x = leaf()
    y = x.exp()
    a, b = y * 2.0, y.sum(1, keepdim=True)
    (a * b * R).sum().backward()
    e = np.exp(A)
    s = e.sum(1, keepdims=True)
    want = 2 * R * s * e + (2 * e * R).sum(1, keepdims=True) * e
    np.testing.assert_allclose(x.grad, want, rtol=1e-10)


def test_leaf_grads_add_up_over_several_leaves_and_numbers():
    x, y = leaf(A), leaf(B)
    loss = (x * y + 2 * x - y / 4).sum()
    loss.backward()
    np.testing.assert_allclose(x.grad, B + 2, rtol=1e-12)
    np.testing.assert_allclose(y.grad, A - 0.25, rtol=1e-12)


def test_leaf_grads_are_independent_objects():
    x, z = leaf(A), leaf(B)
    (x + z).sum().backward()
    assert x.grad is not z.grad
    x.grad *= 2.0
    np.testing.assert_allclose(z.grad, np.ones_like(B))


# -- detach and no_grad ---------------------------------------------------------------------
def test_detach_stops_gradients():
    x = leaf()
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    np.testing.assert_array_equal(d.data, x.data)
    (x * d).sum().backward()
    np.testing.assert_allclose(x.grad, A)  # d acts as a constant


def test_no_grad_records_no_graph():
    x = leaf()
    with no_grad():
        y = (x * 2.0).exp().sum()
        with enable_grad():
            z = x * 2.0
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    assert x.grad is None


def test_public_operands_get_no_grad():
    x, frozen = leaf(A), Variable(B.copy())
    (x * frozen + B).sum().backward()
    assert frozen.grad is None and not frozen.requires_grad
    np.testing.assert_allclose(x.grad, B)


# -- freed graphs and argument errors -------------------------------------------------------
def test_backward_twice_needs_retain_graph():
    x = leaf()
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()  # the first call retained the graph
    np.testing.assert_allclose(x.grad, 4 * A, rtol=1e-12)
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_freed_graph_raises_before_touching_grads():
    x = leaf()
    y = x * 2.0
    y.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        (y * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, 2.0 * np.ones_like(A))


def test_backward_non_scalar_needs_gradient():
    x = leaf()
    y = x * 2.0
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    y.backward(R)  # an explicit gradient works
    np.testing.assert_allclose(x.grad, 2 * R)


def test_backward_with_variable_gradient():
    x = leaf()
    (x * 2.0).backward(Variable(R.copy()))
    np.testing.assert_allclose(x.grad, 2 * R)


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Variable(A.copy()).sum().backward()


@pytest.mark.parametrize("shape", [(4, 3), (3,), (1, 3, 4), ()])
def test_backward_gradient_of_wrong_shape_raises(shape):
    x = leaf()
    y = x * 2.0
    with pytest.raises(ValueError, match="gradient of shape"):
        y.backward(np.ones(shape))
    assert x.grad is None


def test_requires_grad_argument_checks():
    with pytest.raises(TypeError):
        Variable(A, requires_grad=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Variable(leaf())
    y = leaf() * 2.0
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    p = Parameter(A.copy())
    assert p.requires_grad and p.is_leaf


def test_pow_rejects_non_integer_exponents():
    x = leaf()
    for exponent in (0, -1, 0.5, True):
        with pytest.raises(ValueError, match="exponent"):
            x.pow(exponent)  # type: ignore[arg-type]


# -- encrypted engine -----------------------------------------------------------------------
@pytest.mark.parametrize("world_size", [2, 3])
def test_encrypted_accumulation_reuse_detach_no_grad(world_size):
    def job(session):
        x = Parameter(cl.cryptensor(A, src=0))
        y = x * 2.0
        loss = (y * y).sum() + (y * R).sum()
        loss.backward(retain_graph=True)
        loss.backward()  # accumulates: twice the gradient
        twice = x.grad.get_plain_text()
        with pytest.raises(RuntimeError, match="second time"):
            loss.backward()
        x.zero_grad()
        (x * x.detach()).sum().backward()  # detach: gradient x, not 2x
        detached = x.grad.get_plain_text()
        with no_grad():
            z = x.relu() * 2.0
        return twice, detached, z.requires_grad, z.grad_fn is None, isinstance(x.grad, MPCTensor)

    twice, detached, z_grad, z_no_fn, private = run_parties(job, world_size)[0]
    np.testing.assert_allclose(twice, 2 * (8 * A + 2 * R), atol=5e-4)
    np.testing.assert_allclose(detached, A, atol=1e-4)
    assert not z_grad and z_no_fn and private


@pytest.mark.parametrize("world_size", [2, 3])
def test_named_leaf_grad_keeps_names(world_size):
    def job(session):
        x = Parameter(cl.cryptensor(A, src=0, names=("N", "C")))
        out = {}
        s = (x * x).sum("N")  # private gradient
        assert s.names == ("C",)
        (s * R[0]).sum().backward()
        out["sum_N"] = (x.grad.names, x.grad.get_plain_text())
        x.zero_grad()
        m = (x * x).mean("C", keepdim=True)
        m.backward(cl.cryptensor(R[:, :1], src=1, names=("N", "C")))
        out["mean_C"] = (x.grad.names, x.grad.get_plain_text())
        x.zero_grad()
        x.softmax("C").backward(cl.cryptensor(R, src=1))
        out["softmax_C"] = (x.grad.names, None)
        return out

    out = run_parties(job, world_size)[0]
    names, grad = out["sum_N"]
    assert names == ("N", "C")
    np.testing.assert_allclose(grad, 2 * A * R[0], atol=1e-4)
    names, grad = out["mean_C"]
    assert names == ("N", "C")
    np.testing.assert_allclose(grad, 2 * A * R[:, :1] / 4, atol=1e-4)
    assert out["softmax_C"][0] == ("N", "C")


# -- rounds of the backward alone -----------------------------------------------------------
def _backward_rounds(session, loss, gradient=None):
    before = session.stats.snapshot().rounds
    loss.backward(gradient)
    return session.stats.snapshot().rounds - before


def test_backward_rounds_two_parties():
    perm = (_DATA.permutation(32) - 16) * 0.125

    def job(session):
        x = Parameter(cl.cryptensor(A, src=0))
        y = Parameter(cl.cryptensor(B, src=1))
        w = Parameter(cl.cryptensor(B.T, src=1))
        img = Parameter(cl.cryptensor(perm.reshape(1, 2, 4, 4), src=0))
        g_private = cl.cryptensor(R, src=1)  # shared before counting
        g_mm = cl.cryptensor(R[:, :3], src=1)
        rounds = {}
        # relu: one product with the forward's integer bit, no comparison
        rounds["relu"] = _backward_rounds(session, (x.relu() * R).sum())
        # mul, both private and requiring grad, private upstream gradient: 2 products
        rounds["mul"] = _backward_rounds(session, x * y, g_private)
        # matmul, both private: 2 Beaver matmuls
        rounds["matmul"] = _backward_rounds(session, x @ w, g_mm)
        # linear rules with a public upstream gradient: local
        rounds["linear"] = _backward_rounds(
            session, ((x + y).sum(0) * R[0]).sum() + x.t().reshape(-1)[3:].sum()
        )
        # max_pool2d 2x2: ceil(log2 4) = 2 levels of products with the tournament bits
        pooled = img.max_pool2d(2, 2)
        rounds["max_pool2d"] = _backward_rounds(session, pooled, np.ones(pooled.shape))
        rounds["exp"] = _backward_rounds(session, x.exp(), g_private)
        return rounds

    rounds = run_parties(job, 2)[0]
    assert rounds == {
        "relu": 1,
        "mul": 2,
        "matmul": 2,
        "linear": 0,
        "max_pool2d": 2,
        "exp": 1,
    }


def test_squeeze_and_unsqueeze_keep_names_on_named_tensors():
    def job(session):
        with session.activate():
            x = Parameter(cl.cryptensor(np.ones((2, 3)), src=0, names=("N", "C")))
            y = x.unsqueeze(1)
            z = y.squeeze(1)
            (z * z).sum().backward()
            return y.names, z.names, x.grad.names

    assert run_parties(job, 2)[0] == (("N", None, "C"), ("N", "C"), ("N", "C"))
