"""Every backward rule of ``crypten_lite.autograd`` checked three ways.

For each case ``loss = (op(*inputs) * R).sum()`` with a fixed random ``R``:

* public: the numpy ``Variable``'s ``.grad`` against a float64 central finite difference
  (each input element perturbed by +-1e-6) to 1e-5;
* encrypted: the same rule on ``MPCTensor`` inputs (``Parameter(cl.cryptensor(...))``), 2 and
  3 parties, ``.grad`` revealed and compared with the public run's ``.grad``, in three modes
  (``MODES``): ``R`` public; ``R`` secret-shared (so the rules' MPCTensor paths see a private
  upstream gradient); public leaves requiring grad under a secret-shared ``R`` (public forward
  values, private gradients);
* mixed operands: a public operand (numpy array, or a Variable with ``requires_grad=False``,
  public or private) gets no gradient (``.grad is None``).

All cases of one world size run in one ``run_parties`` call (cached), then each case is its
own test. Inputs lie inside each approximation's documented range (crypten_lite/tensor/
approx.py); max_pool2d inputs have no ties and relu inputs satisfy ``|x| >= 0.05``.

Measured max deviation of the encrypted grad from the public one (16 fractional bits, default
config, max over the 3 encrypted modes and over several runs with different inputs; ``abs`` =
max |enc - pub|, ``rel`` = abs / max |pub|), and the tolerance each case uses
(``|enc - pub| <= atol + rtol |pub|``):

=========================================  =================  =================  ==============
op (cases)                                 2 parties abs/rel  3 parties abs/rel  atol / rtol
=========================================  =================  =================  ==============
add, sub, neg (all operand kinds)          1.8e-5 / 7.8e-6    1.8e-5 / 7.8e-6    1e-4
mul (broadcast, public, private const)     7.8e-5 / 3.5e-5    6.3e-5 / 3.5e-5    3e-4
square, pow 2, x * x                       1.4e-4 / 1.7e-5    1.4e-4 / 1.7e-5    3e-4
pow 3                                      1.5e-4 / 7.6e-6    1.3e-4 / 7.6e-6    5e-4
div by a public divisor                    1.6e-5 / 2.0e-5    1.6e-5 / 2.0e-5    1e-4
div by a private divisor, 2 / x            3.5e-2 / 2.5e-3    3.4e-2 / 2.5e-3    1e-3 / 1e-2
matmul (1-D, batched, broadcast batch)     5.2e-5 / 3.7e-5    5.2e-5 / 3.7e-5    2e-4
relu                                       6.4e-6 / 2.8e-6    6.4e-6 / 2.8e-6    1e-4
sigmoid                                    2.6e-4 / 5.9e-4    2.6e-4 / 5.9e-4    2e-3
tanh                                       1.1e-3 / 8.6e-4    8.8e-4 / 8.1e-4    4e-3
gelu                                       1.6e-3 / 5.7e-4    1.6e-3 / 5.8e-4    1e-2
exp                                        8.4e-4 / 1.5e-4    9.6e-4 / 2.9e-4    1e-3 / 5e-3
log                                        1.8e-3 / 1.1e-3    1.8e-3 / 1.1e-3    1e-3 / 1e-2
reciprocal                                 6.1e-3 / 1.8e-3    6.1e-3 / 1.8e-3    1e-3 / 2e-2
sqrt                                       3.6e-5 / 6.6e-5    3.6e-5 / 6.6e-5    1e-3 / 5e-3
inv_sqrt                                   2.9e-4 / 1.7e-4    1.7e-4 / 9.7e-5    1e-3 / 5e-3
softmax (dim 0, 1, -1)                     1.2e-4 / 2.2e-4    8.0e-5 / 2.2e-4    1e-3
log_softmax (dim 0, 1)                     1.1e-3 / 6.1e-4    1.2e-3 / 7.8e-4    4e-3
sum, mean                                  1.3e-5 / 5.3e-4    1.6e-5 / 5.3e-4    1e-4
var                                        7.6e-5 / 6.4e-4    6.3e-5 / 5.1e-4    3e-4
reshape/view/transpose/t/T/permute/        9.9e-6 / 7.2e-6    9.9e-6 / 7.2e-6    1e-4
flatten/squeeze/unsqueeze/expand
indexing, cat, stack, pad                  8.5e-6 / 8.5e-6    8.5e-6 / 8.5e-6    1e-4
conv1d, conv2d (stride/pad/dil/groups)     7.2e-5 / 1.8e-5    6.2e-5 / 1.8e-5    5e-4
conv_transpose2d                           9.7e-5 / 1.2e-5    9.7e-5 / 1.2e-5    5e-4
avg_pool2d, adaptive_avg_pool2d            3.1e-5 / 8.4e-5    2.3e-5 / 8.4e-5    2e-4
max_pool2d (k2s2, k3s2p1, dilation 2)      1.4e-5 / 6.2e-6    1.4e-5 / 6.2e-6    1e-4
chains (mlp-like, reuse)                   6.3e-5 / 3.0e-4    6.5e-5 / 3.1e-4    2e-4
=========================================  =================  =================  ==============

The worst case measured against its own tolerance uses 0.85 of it (log_softmax dim 1); the
rest stay below 0.65. Linear rules on a public upstream gradient give public (numpy) grads that
equal the public run's exactly; the deviations above come from a private ``R`` or from
products, truncations and approximations on shares.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import crypten_lite as cl
from crypten_lite.autograd import Parameter, Variable, cat, no_grad, stack
from crypten_lite.runtime.testing import run_parties
from crypten_lite.tensor import MPCTensor

WORLDS = [2, 3]
FD_STEP = 1e-6
FD_TOL = 1e-5

_DATA = np.random.default_rng(20260311)


def U(*shape: int, lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    return _DATA.uniform(lo, hi, shape)


def POS(*shape: int) -> np.ndarray:
    """Inside the documented range of reciprocal / log / sqrt / inv_sqrt."""
    return _DATA.uniform(0.5, 8.0, shape)


def AWAY(*shape: int, gap: float = 0.05, hi: float = 2.0) -> np.ndarray:
    """|x| >= gap (relu's kink stays out of the finite differences)."""
    return _DATA.uniform(gap, hi, shape) * _DATA.choice([-1.0, 1.0], shape)


def DISTINCT(*shape: int, step: float = 0.0625) -> np.ndarray:
    """Pairwise distinct values (no ties for max_pool2d)."""
    n = int(np.prod(shape))
    return ((_DATA.permutation(n) - n / 2) * step).reshape(shape)


# -- cases ----------------------------------------------------------------------------------
# Kinds of input: "g" a leaf that requires a gradient (Parameter of a cryptensor when
# encrypted), "c" a private constant (Variable of a cryptensor, requires_grad=False), "v" a
# public Variable with requires_grad=False, "p" a raw numpy array, "m" a raw MPCTensor
# (numpy in the public run).


@dataclass(frozen=True)
class Case:
    name: str
    fn: Callable[..., Any]
    inputs: tuple[tuple[str, np.ndarray], ...]
    atol: float
    rtol: float
    xfail: str | None


CASES: list[Case] = []


def case(
    name: str,
    fn: Callable[..., Any],
    *inputs: tuple[str, np.ndarray],
    atol: float = 1e-4,
    rtol: float = 0.0,
    xfail: str | None = None,
) -> None:
    assert name not in {c.name for c in CASES}, name
    CASES.append(Case(name, fn, tuple(inputs), atol, rtol, xfail))


def g(a: np.ndarray) -> tuple[str, np.ndarray]:
    return ("g", a)


def c(a: np.ndarray) -> tuple[str, np.ndarray]:
    return ("c", a)


def v(a: np.ndarray) -> tuple[str, np.ndarray]:
    return ("v", a)


def p(a: np.ndarray) -> tuple[str, np.ndarray]:
    return ("p", a)


def m(a: np.ndarray) -> tuple[str, np.ndarray]:
    return ("m", a)


LIN = {"atol": 1e-4}  # linear, at most one truncation per output
PROD = {"atol": 3e-4}  # Beaver products and their sums (var, broadcast reductions)
POOL = {"atol": 2e-4}

# arithmetic, broadcasting, public and private operands
case("add_bcast_row", lambda x, y: x + y, g(U(3, 4)), g(U(4)), **LIN)
case("add_bcast_both", lambda x, y: x + y, g(U(3, 1)), g(U(1, 4)), **LIN)
case("add_public_numpy", lambda x, y: x + y, g(U(3, 4)), p(U(4)), **LIN)
case("radd_public_numpy", lambda x, y: y + x, g(U(2, 3)), p(U(3)), **LIN)
case("add_scalar", lambda x: 2.5 + x + 1.0, g(U(2, 3)), **LIN)
case("add_private_const", lambda x, y: x + y, g(U(3, 4)), c(U(3, 1)), **LIN)
case("add_public_variable", lambda x, y: y + x, g(U(3, 4)), v(U(4)), **LIN)
case("add_raw_mpctensor_left", lambda x, y: y + x, g(U(3, 4)), m(U(4)), **LIN)
case("sub_bcast", lambda x, y: x - y, g(U(2, 3, 1)), g(U(3, 4)), **LIN)
case("rsub_public_numpy", lambda x, y: y - x, g(U(4)), p(U(3, 4)), **LIN)
case("sub_private_const", lambda x, y: x - y, g(U(3, 4)), c(U(4)), **LIN)
case("rsub_private_const", lambda x, y: y - x, g(U(3, 4)), c(U(4)), **LIN)
case("rsub_scalar", lambda x: 1.5 - x, g(U(2, 3)), **LIN)
case("neg", lambda x: -x, g(U(3, 4)), **LIN)
case("neg_method", lambda x: x.neg(), g(U(3, 4)), **LIN)
case("mul_bcast", lambda x, y: x * y, g(U(3, 4)), g(U(3, 1)), **PROD)
case("mul_bcast_3d", lambda x, y: x * y, g(U(2, 1, 4)), g(U(3, 1)), **PROD)
case("mul_public_numpy", lambda x, y: x * y, g(U(3, 4)), p(U(4)), **PROD)
case("rmul_public_numpy", lambda x, y: y * x, g(U(3, 4)), p(U(3, 1)), **PROD)
case("mul_scalar", lambda x: 3.0 * x * 0.5, g(U(3, 4)), **PROD)
case("mul_private_const", lambda x, y: x * y, g(U(3, 4)), c(U(4)), **PROD)
case("mul_raw_mpctensor", lambda x, y: x * y, g(U(3, 4)), m(U(3, 4)), **PROD)
case("mul_public_variable", lambda x, y: y * x, g(U(3, 4)), v(U(3, 4)), **PROD)
case("mul_same_operand", lambda x: x * x, g(U(3, 4)), **PROD)
case("square", lambda x: x.square(), g(U(3, 4)), **PROD)
case("pow2", lambda x: x**2, g(U(3, 4)), **PROD)
case("pow3", lambda x: x.pow(3), g(U(3, 4)), atol=5e-4)
case("div_public_numpy", lambda x, y: x / y, g(U(3, 4)), p(AWAY(4, gap=0.5)), **LIN)
case("div_scalar", lambda x: x / 4.0, g(U(3, 4)), **LIN)
case("div_public_variable", lambda x, y: x / y, g(U(3, 4)), v(AWAY(3, 1, gap=0.5)), **LIN)
DIV = {"atol": 1e-3, "rtol": 1e-2}
case("div_private", lambda x, y: x / y, g(U(3, 4)), g(POS(3, 4)), **DIV)
case("div_private_bcast", lambda x, y: x / y, g(U(3, 4)), g(POS(4)), **DIV)
case("div_private_const_divisor", lambda x, y: x / y, g(U(3, 4)), c(POS(3, 4)), **DIV)
case("div_public_by_private", lambda x, y: x / y, p(U(3, 4)), g(POS(3, 4)), **DIV)
case("rdiv_scalar", lambda x: 2.0 / x, g(POS(3, 4)), **DIV)
MM = {"atol": 2e-4}
case("matmul_2d", lambda x, y: x @ y, g(U(3, 4)), g(U(4, 2)), **MM)
case("matmul_method", lambda x, y: x.matmul(y), g(U(3, 4)), g(U(4, 2)), **MM)
case("matmul_1d_left", lambda x, y: x @ y, g(U(4)), g(U(4, 3)), **MM)
case("matmul_1d_right", lambda x, y: x @ y, g(U(3, 4)), g(U(4)), **MM)
case("matmul_1d_1d", lambda x, y: x @ y, g(U(5)), g(U(5)), **MM)
case("matmul_batched", lambda x, y: x @ y, g(U(2, 3, 4)), g(U(2, 4, 2)), **MM)
case("matmul_batch_bcast", lambda x, y: x @ y, g(U(2, 1, 3, 4)), g(U(3, 4, 2)), **MM)
case("matmul_batch_vs_2d", lambda x, y: x @ y, g(U(2, 3, 4)), g(U(4, 2)), **MM)
case("matmul_1d_vs_batched", lambda x, y: x @ y, g(U(4)), g(U(2, 4, 3)), **MM)
case("matmul_public_right", lambda x, y: x @ y, g(U(3, 4)), p(U(4, 2)), **MM)
case("rmatmul_public_left", lambda x, y: y @ x, g(U(4, 2)), p(U(3, 4)), **MM)
case("matmul_private_const", lambda x, y: y @ x, g(U(4, 2)), c(U(2, 3, 4)), **MM)

# nonlinear
case("relu", lambda x: x.relu(), g(AWAY(3, 5)), **LIN)
case("sigmoid", lambda x: x.sigmoid(), g(U(4, 5, lo=-6, hi=6)), atol=4e-3)
case("tanh", lambda x: x.tanh(), g(U(4, 5, lo=-6, hi=6)), atol=4e-3)
case("gelu", lambda x: x.gelu(), g(U(4, 5, lo=-3, hi=3)), atol=1e-2)
case("exp", lambda x: x.exp(), g(U(4, 5, lo=-4, hi=2)), atol=1e-3, rtol=5e-3)
case("log", lambda x: x.log(), g(POS(4, 5)), atol=1e-3, rtol=1e-2)
case("reciprocal", lambda x: x.reciprocal(), g(POS(4, 5)), atol=1e-3, rtol=2e-2)
case("sqrt", lambda x: x.sqrt(), g(POS(4, 5)), atol=1e-3, rtol=5e-3)
case("inv_sqrt", lambda x: x.inv_sqrt(), g(POS(4, 5)), atol=1e-3, rtol=5e-3)
case("softmax_dim0", lambda x: x.softmax(0), g(U(4, 5, lo=-3, hi=3)), atol=1e-3)
case("softmax_dim1", lambda x: x.softmax(1), g(U(4, 5, lo=-3, hi=3)), atol=1e-3)
case("softmax_dim_neg", lambda x: x.softmax(-1), g(U(2, 3, 4, lo=-3, hi=3)), atol=1e-3)
case("log_softmax_dim0", lambda x: x.log_softmax(0), g(U(4, 5, lo=-3, hi=3)), atol=4e-3)
case("log_softmax_dim1", lambda x: x.log_softmax(1), g(U(4, 5, lo=-3, hi=3)), atol=4e-3)

# reductions
case("sum_all", lambda x: x.sum(), g(U(3, 4)), **LIN)
case("sum_dim1", lambda x: x.sum(1), g(U(3, 4)), **LIN)
case("sum_dim_neg", lambda x: x.sum(-1), g(U(2, 3, 4)), **LIN)
case("sum_dims", lambda x: x.sum((0, 2)), g(U(2, 3, 4)), **LIN)
case("sum_keepdim", lambda x: x.sum(1, keepdim=True), g(U(2, 3, 4)), **LIN)
case("sum_dims_keepdim", lambda x: x.sum((0, 2), keepdim=True), g(U(2, 3, 4)), **LIN)
case("mean_all", lambda x: x.mean(), g(U(3, 4)), **LIN)
case("mean_dim0", lambda x: x.mean(0), g(U(3, 4)), **LIN)
case("mean_dims", lambda x: x.mean((1, 2)), g(U(2, 3, 4)), **LIN)
case("mean_keepdim", lambda x: x.mean(-1, keepdim=True), g(U(2, 3, 4)), **LIN)
case("var_all", lambda x: x.var(), g(U(3, 4)), **PROD)
case("var_dim1", lambda x: x.var(1), g(U(3, 4)), **PROD)
case("var_dim0_keepdim", lambda x: x.var(0, keepdim=True), g(U(4, 3)), **PROD)
case("var_biased_dims", lambda x: x.var((1, 2), unbiased=False), g(U(2, 3, 4)), **PROD)

# shape
case("reshape", lambda x: x.reshape(4, 6), g(U(2, 3, 4)), **LIN)
case("reshape_tuple", lambda x: x.reshape((3, -1)), g(U(2, 3, 4)), **LIN)
case("view", lambda x: x.view(-1), g(U(2, 3, 4)), **LIN)
case("transpose", lambda x: x.transpose(0, 2), g(U(2, 3, 4)), **LIN)
case("transpose_neg", lambda x: x.transpose(-1, -2), g(U(2, 3, 4)), **LIN)
case("t", lambda x: x.t(), g(U(3, 4)), **LIN)
case("T", lambda x: x.T, g(U(2, 3, 4)), **LIN)
case("permute", lambda x: x.permute(2, 0, 1), g(U(2, 3, 4)), **LIN)
case("permute_list", lambda x: x.permute([1, 2, 0]), g(U(2, 3, 4)), **LIN)
case("flatten", lambda x: x.flatten(), g(U(2, 3, 4)), **LIN)
case("flatten_start1", lambda x: x.flatten(1), g(U(2, 3, 4)), **LIN)
case("flatten_range", lambda x: x.flatten(0, 1), g(U(2, 3, 4)), **LIN)
case("squeeze_all", lambda x: x.squeeze(), g(U(2, 1, 3, 1)), **LIN)
case("squeeze_dim", lambda x: x.squeeze(1), g(U(2, 1, 3, 1)), **LIN)
case("squeeze_noop", lambda x: x.squeeze(0), g(U(2, 1, 3)), **LIN)
case("unsqueeze", lambda x: x.unsqueeze(1), g(U(3, 4)), **LIN)
case("unsqueeze_neg", lambda x: x.unsqueeze(-1), g(U(3, 4)), **LIN)
case("expand", lambda x: x.expand(3, 4), g(U(1, 4)), **LIN)
case("expand_new_dims", lambda x: x.expand(2, -1, 4), g(U(3, 1)), **LIN)
case("index_slices", lambda x: x[1:, ::2], g(U(3, 5)), **LIN)
case("index_int_and_ellipsis", lambda x: x[..., 1] + x[0], g(U(3, 3)), **LIN)
case("index_negative_step", lambda x: x[::-1, 1:4], g(U(3, 5)), **LIN)
case("index_repeated_rows", lambda x: x[[0, 2, 0, 0]], g(U(3, 4)), **LIN)
case(
    "index_repeated_pairs", lambda x: x[np.array([0, 1, 1]), np.array([2, 2, 2])], g(U(3, 4)), **LIN
)
case("index_array_and_slice", lambda x: x[np.array([1, 1, 0]), 1:3], g(U(3, 4)), **LIN)
case("index_newaxis", lambda x: x[None, 1:], g(U(3, 4)), **LIN)
case("index_bool_mask", lambda x: x[np.array([True, False, True])], g(U(3, 4)), **LIN)
case("cat_dim0", lambda x, y: cat([x, y, x], 0), g(U(2, 3)), g(U(1, 3)), **LIN)
case("cat_dim1_public_part", lambda x, y: cat([y, x], dim=1), g(U(2, 3)), p(U(2, 2)), **LIN)
case("cat_private_const", lambda x, y: cat([x, y], dim=-1), g(U(2, 3)), c(U(2, 2)), **LIN)
case("stack_dim0", lambda x, y: stack([x, y]), g(U(2, 3)), g(U(2, 3)), **LIN)
case("stack_dim1", lambda x, y: stack([x, y, x], dim=1), g(U(2, 3)), g(U(2, 3)), **LIN)
case("stack_dim_neg", lambda x, y: stack([y, x], dim=-1), g(U(2, 3)), c(U(2, 3)), **LIN)
case("pad_last", lambda x: x.pad((1, 2)), g(U(2, 3, 4)), **LIN)
case("pad_two_dims_value", lambda x: x.pad((1, 0, 2, 1), value=0.75), g(U(2, 3, 4)), **LIN)

# convolution and pooling
CONV = {"atol": 5e-4}
case(
    "conv1d",
    lambda x, w, b: x.conv1d(w, b, padding=1),
    g(U(1, 2, 8)),
    g(U(3, 2, 3)),
    g(U(3)),
    **CONV,
)
case("conv1d_stride2", lambda x, w: x.conv1d(w, stride=2), g(U(2, 2, 7)), g(U(2, 2, 3)), **CONV)
case("conv2d", lambda x, w, b: x.conv2d(w, b), g(U(1, 2, 4, 4)), g(U(2, 2, 3, 3)), g(U(2)), **CONV)
case(
    "conv2d_stride2_pad1",
    lambda x, w: x.conv2d(w, stride=2, padding=1),
    g(U(1, 2, 5, 5)),
    g(U(2, 2, 3, 3)),
    **CONV,
)
case(
    "conv2d_stride2_uneven",
    lambda x, w: x.conv2d(w, stride=2, padding=1),
    g(U(1, 1, 6, 6)),
    g(U(2, 1, 3, 3)),
    **CONV,
)
case(
    "conv2d_dilation2",
    lambda x, w: x.conv2d(w, dilation=2),
    g(U(1, 1, 6, 6)),
    g(U(2, 1, 2, 2)),
    **CONV,
)
case(
    "conv2d_groups2",
    lambda x, w, b: x.conv2d(w, b, groups=2),
    g(U(1, 4, 3, 3)),
    g(U(4, 2, 2, 2)),
    g(U(4)),
    **CONV,
)
case(
    "conv2d_all",
    lambda x, w: x.conv2d(w, stride=2, padding=1, dilation=2, groups=2),
    g(U(1, 2, 6, 5)),
    g(U(4, 1, 2, 2)),
    **CONV,
)
case(
    "conv2d_public_weight",
    lambda x, w: x.conv2d(w, padding=1),
    g(U(1, 2, 4, 4)),
    p(U(2, 2, 3, 3)),
    **CONV,
)
case(
    "conv2d_public_input",
    lambda x, w: x.conv2d(w, stride=2),
    v(U(2, 2, 4, 4)),
    g(U(2, 2, 2, 2)),
    **CONV,
)
case("conv2d_const_weight", lambda x, w: x.conv2d(w), g(U(1, 2, 4, 4)), c(U(3, 2, 2, 2)), **CONV)
case(
    "conv_transpose2d",
    lambda x, w, b: x.conv_transpose2d(w, b, stride=2, output_padding=1),
    g(U(1, 2, 3, 3)),
    g(U(2, 3, 3, 3)),
    g(U(3)),
    **CONV,
)
case(
    "conv_transpose2d_pad_groups",
    lambda x, w: x.conv_transpose2d(w, stride=2, padding=1, output_padding=1, groups=2),
    g(U(1, 2, 3, 3)),
    g(U(2, 2, 3, 3)),
    **CONV,
)
case("avg_pool2d", lambda x: x.avg_pool2d(2), g(U(1, 2, 4, 4)), **POOL)
case("avg_pool2d_k3s2p1", lambda x: x.avg_pool2d(3, 2, 1), g(U(1, 2, 5, 5)), **POOL)
case("avg_pool2d_3d_uneven", lambda x: x.avg_pool2d(2), g(U(2, 5, 5)), **POOL)
case("adaptive_avg_pool2d", lambda x: x.adaptive_avg_pool2d((2, 3)), g(U(1, 2, 5, 5)), **POOL)
case("adaptive_avg_pool2d_1", lambda x: x.adaptive_avg_pool2d(1), g(U(2, 2, 3, 3)), **POOL)
case("max_pool2d_k2s2", lambda x: x.max_pool2d(2, 2), g(DISTINCT(1, 2, 4, 4)), **LIN)
case("max_pool2d_k3s2p1", lambda x: x.max_pool2d(3, 2, 1), g(DISTINCT(1, 2, 5, 5)), **LIN)
case("max_pool2d_dilation2", lambda x: x.max_pool2d(2, 1, 0, 2), g(DISTINCT(1, 2, 5, 5)), **LIN)
case("max_pool2d_3d_default_stride", lambda x: x.max_pool2d(2), g(DISTINCT(2, 4, 5)), **LIN)

# compositions (a value used twice, chains mixing rules)
case(
    "chain_mlp",
    lambda x, w, b: ((x @ w + b).relu() * x[:, :2]).mean(0),
    g(AWAY(3, 4, gap=0.1)),
    g(U(4, 2)),
    g(U(2)),
    atol=2e-4,
)
case(
    "chain_reuse",
    lambda x: x * x.sum(1, keepdim=True) - x.t().sum(0).unsqueeze(1),
    g(U(3, 4)),
    atol=2e-4,
)


def _params(cases: list[Case]) -> list[Any]:
    return [
        pytest.param(cs, id=cs.name, marks=[pytest.mark.xfail(strict=True, reason=cs.xfail)])
        if cs.xfail
        else pytest.param(cs, id=cs.name)
        for cs in cases
    ]


# -- runs -----------------------------------------------------------------------------------
def _wrap_public(kind: str, a: np.ndarray, *, grad: bool = True) -> Any:
    if kind == "g":
        return Variable(a.copy(), requires_grad=grad)
    if kind in ("c", "v"):
        return Variable(a.copy())
    return a.copy()  # "p", "m": plain numpy


#: Encrypted runs: ``R`` public or secret-shared (a private upstream gradient exercises the
#: rules' MPCTensor paths), and leaves that are public Variables requiring grad under a
#: private ``R`` (public forward values, private gradients).
MODES = ["private_leaves", "private_R", "public_leaves_private_R"]


def _wrap_encrypted(kind: str, a: np.ndarray, mode: str) -> Any:
    if kind == "g":
        if mode == "public_leaves_private_R":
            return Variable(a.copy(), requires_grad=True)
        return Parameter(cl.cryptensor(a, src=0))
    if kind == "c":
        return Variable(cl.cryptensor(a, src=0))
    if kind == "m":
        return cl.cryptensor(a, src=0)
    if kind == "v":
        return Variable(a.copy())
    return a.copy()


def _loss(out: Variable, weights: np.ndarray) -> Variable:
    return (out * weights).sum()


@functools.cache
def _public(name: str) -> tuple[np.ndarray, list[Any]]:
    """``R`` and the public run's grads (None for inputs that are not Variables)."""
    cs = next(x for x in CASES if x.name == name)
    wrapped = [_wrap_public(k, a) for k, a in cs.inputs]
    out = cs.fn(*wrapped)
    seed = [ord(ch) for ch in name]
    weights = np.random.default_rng(seed).normal(size=out.shape)
    _loss(out, weights).backward()
    grads = [w.grad if isinstance(w, Variable) else None for w in wrapped]
    return weights, grads


def _finite_difference(cs: Case, weights: np.ndarray) -> list[np.ndarray | None]:
    arrays = [a.copy() for _, a in cs.inputs]

    def f() -> float:
        with no_grad():
            wrapped = [_wrap_public(k, a, grad=False) for (k, _), a in zip(cs.inputs, arrays)]
            return float(np.asarray(_loss(cs.fn(*wrapped), weights).data))

    out: list[np.ndarray | None] = []
    for i, (kind, a) in enumerate(cs.inputs):
        if kind != "g":
            out.append(None)
            continue
        grad = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            base = arrays[i][idx]
            arrays[i][idx] = base + FD_STEP
            up = f()
            arrays[i][idx] = base - FD_STEP
            down = f()
            arrays[i][idx] = base
            grad[idx] = (up - down) / (2 * FD_STEP)
        out.append(grad)
    return out


def _reveal(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, MPCTensor):
        return np.asarray(value.get_plain_text())
    return np.asarray(value)


@functools.cache
def _encrypted(world_size: int) -> dict[tuple[str, str], Any]:
    """Every case on ``world_size`` parties in one job: revealed grads, or the error text."""
    weights = {cs.name: _public(cs.name)[0] for cs in CASES}

    def job(session: Any) -> dict[tuple[str, str], Any]:
        results: dict[tuple[str, str], Any] = {}
        for mode in MODES:
            for cs in CASES:
                try:
                    wrapped = [_wrap_encrypted(k, a, mode) for k, a in cs.inputs]
                    out = cs.fn(*wrapped)
                    r: Any = weights[cs.name]
                    if mode != "private_leaves":
                        r = Variable(cl.cryptensor(r, src=1))
                    _loss(out, r).backward()
                    results[mode, cs.name] = [
                        ("grad", _reveal(w.grad)) if isinstance(w, Variable) else ("none", None)
                        for w in wrapped
                    ]
                except Exception as err:  # reported by the case's own test
                    results[mode, cs.name] = f"{type(err).__name__}: {err}"
        return results

    return run_parties(job, world_size)[0]


# -- tests ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cs", _params(CASES))
def test_public_grad_matches_finite_difference(cs: Case) -> None:
    weights, grads = _public(cs.name)
    reference = _finite_difference(cs, weights)
    for i, ((kind, a), got, want) in enumerate(zip(cs.inputs, grads, reference, strict=True)):
        if kind == "g":
            assert isinstance(got, np.ndarray), f"input {i}: public grad is {type(got)}"
            assert got.shape == a.shape, f"input {i}"
            np.testing.assert_allclose(got, want, atol=FD_TOL, rtol=FD_TOL, err_msg=f"input {i}")
        elif kind in ("c", "v"):
            assert got is None, f"input {i} ({kind}) requires no grad but got one"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("world_size", WORLDS)
@pytest.mark.parametrize("cs", _params(CASES))
def test_encrypted_grad_matches_public(cs: Case, world_size: int, mode: str) -> None:
    got = _encrypted(world_size)[mode, cs.name]
    if isinstance(got, str):
        pytest.fail(f"encrypted run raised {got}")
    _, want = _public(cs.name)
    for i, ((kind, a), (tag, grad), ref) in enumerate(zip(cs.inputs, got, want, strict=True)):
        if kind == "g":
            assert grad is not None, f"input {i}: no grad"
            assert grad.shape == a.shape, f"input {i}"
            np.testing.assert_allclose(
                grad, ref, atol=cs.atol, rtol=cs.rtol, err_msg=f"input {i} ({cs.name})"
            )
        elif kind in ("c", "v"):
            assert tag == "grad" and grad is None, f"input {i} ({kind}) got a grad"
