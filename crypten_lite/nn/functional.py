"""Functional ops that run on plaintext numpy arrays and on secret-shared MPCTensors alike.

Each function dispatches on the kind of its operands: plaintext numpy arrays are computed
exactly in float64 (torch semantics, used as the reference); an MPCTensor operand anywhere
makes the result an MPCTensor. Mixed cases:

* private input, public weights: the MPCTensor ops take numpy operands directly
  (``x @ w``, ``x.conv2d(w_numpy)``), with no communication beyond truncation;
* public input, private weights: for matrix products the public operand goes on the left
  (``MPCTensor.rmatmul``); for convolutions the public input is first turned into a
  *trivial sharing* without communication (:func:`trivial_share`: party 0 holds its
  fixed-point encoding, every other party zeros), then convolved with the private kernel.
"""

from __future__ import annotations

import math
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from crypten_lite.autograd import Variable, ops_arith, ops_conv, ops_shape, ops_unary
from crypten_lite.ring.prg import AesCtrPrg
from crypten_lite.tensor import MPCTensor, plain
from crypten_lite.tensor.shape import int_tuple

__all__ = [
    "Tensor",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "as_input",
    "avg_pool2d",
    "batch_norm",
    "constant_pad",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "dropout",
    "dropout2d",
    "flatten",
    "gelu",
    "group_norm",
    "hardtanh",
    "is_encrypted",
    "layer_norm",
    "linear",
    "log_softmax",
    "max_pool2d",
    "relu",
    "relu6",
    "sigmoid",
    "softmax",
    "tanh",
    "trivial_share",
]

F64: TypeAlias = npt.NDArray[np.float64]
Tensor: TypeAlias = "F64 | MPCTensor | Variable"


def is_encrypted(x: object) -> bool:
    """True for a secret-shared tensor (also inside an autograd Variable)."""
    return isinstance(x, MPCTensor) or (isinstance(x, Variable) and x.is_encrypted)


def as_input(x: Any, where: str) -> Tensor:
    """Accept an MPCTensor or a real numeric numpy array (as float64); ``where`` names the
    layer in the error raised for anything else."""
    if isinstance(x, MPCTensor | Variable):
        return x
    if isinstance(x, np.ndarray) and (
        np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    ):
        return np.asarray(x, dtype=np.float64)
    kind = type(x).__name__ if not isinstance(x, np.ndarray) else f"ndarray of dtype {x.dtype}"
    raise TypeError(f"{where}: expected a numpy float array or an MPCTensor, got {kind}")


def trivial_share(x: F64, like: MPCTensor) -> MPCTensor:
    """A public array as a sharing in ``like``'s session without communication: party 0
    holds the fixed-point encoding of ``x``, every other party zeros."""
    encoded = like.encoder.encode(np.asarray(x, dtype=np.float64))
    share = encoded if like.session.rank == 0 else np.zeros_like(encoded)
    return MPCTensor(like.session, share, like.precision)


def _two(value: int | tuple[int, ...]) -> tuple[int, int]:
    a, b = int_tuple(value, 2, "size")
    return a, b


# -- linear algebra ------------------------------------------------------------------------
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` with torch's ``(out, in)`` weight layout."""
    out: Tensor
    if isinstance(x, Variable) or isinstance(weight, Variable) or isinstance(bias, Variable):
        out = ops_arith.matmul(x, ops_shape.transpose(weight, 0, 1))
        return out if bias is None else ops_arith.add(out, bias)
    if isinstance(weight, MPCTensor):
        wt = weight.t()
        out = x.matmul(wt) if isinstance(x, MPCTensor) else wt.rmatmul(x)
    elif isinstance(x, MPCTensor):
        out = x.matmul(weight.T)
    else:
        out = x @ weight.T
    if bias is not None:
        out = out + bias
    return out


def _conv(
    dims: int,
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: int | tuple[int, ...],
    padding: int | tuple[int, ...],
    dilation: int | tuple[int, ...],
    groups: int,
) -> Tensor:
    if isinstance(x, Variable) or isinstance(weight, Variable) or isinstance(bias, Variable):
        inp = x if isinstance(x, Variable) else Variable(x)
        if dims == 1:
            return inp.conv1d(weight, bias, stride, padding, dilation, groups)
        return inp.conv2d(weight, bias, stride, padding, dilation, groups)
    if isinstance(weight, MPCTensor) and not isinstance(x, MPCTensor):
        x = trivial_share(x, weight)
    if isinstance(x, MPCTensor):
        if dims == 1:
            return x.conv1d(weight, bias, stride, padding, dilation, groups)  # type: ignore[arg-type]
        return x.conv2d(weight, bias, stride, padding, dilation, groups)  # type: ignore[arg-type]
    if isinstance(weight, MPCTensor):  # unreachable: a private weight made x private above
        raise TypeError("conv: a private weight needs a shared input")
    st, pd, dl = (
        int_tuple(v, dims, n)
        for v, n in ((stride, "stride"), (padding, "padding"), (dilation, "dilation"))
    )
    if dims == 1:
        out = plain.conv2d(
            x[:, :, None, :],
            weight[:, :, None, :],
            (1, st[0]),
            (0, pd[0]),
            (1, dl[0]),
            groups,
        )[:, :, 0, :]
    else:
        out = plain.conv2d(x, weight, (st[0], st[1]), (pd[0], pd[1]), (dl[0], dl[1]), groups)
    result: Tensor = out
    if bias is not None:
        result = result + bias.reshape((1, -1) + (1,) * dims)
    return result


def conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, ...] = 1,
    padding: int | tuple[int, ...] = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
) -> Tensor:
    """torch.nn.functional.conv1d on ``(N, C, L)`` input, weight ``(out, in/groups, k)``."""
    return _conv(1, x, weight, bias, stride, padding, dilation, groups)


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, ...] = 1,
    padding: int | tuple[int, ...] = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
) -> Tensor:
    """torch.nn.functional.conv2d on ``(N, C, H, W)``, weight ``(out, in/groups, kH, kW)``."""
    return _conv(2, x, weight, bias, stride, padding, dilation, groups)


# -- activations ---------------------------------------------------------------------------
def relu(x: Tensor) -> Tensor:
    if isinstance(x, Variable):
        return ops_unary.relu(x)
    if isinstance(x, MPCTensor):
        return x.relu()
    return np.maximum(x, 0.0)


def sigmoid(x: Tensor) -> Tensor:
    if isinstance(x, Variable):
        return ops_unary.sigmoid(x)
    if isinstance(x, MPCTensor):
        return x.sigmoid()
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def tanh(x: Tensor) -> Tensor:
    if isinstance(x, Variable):
        return ops_unary.tanh(x)
    if isinstance(x, MPCTensor):
        return x.tanh()
    return np.tanh(x)


_ERF = np.frompyfunc(math.erf, 1, 1)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU; on MPCTensors always the library's approximation of the exact (erf) form."""
    if isinstance(x, Variable):  # differentiable: the exact (erf) form, as on MPCTensors
        return ops_unary.gelu(x)
    if isinstance(x, MPCTensor):
        return x.gelu()
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
        return 0.5 * x * (1.0 + np.tanh(inner))
    erf = np.asarray(_ERF(x / math.sqrt(2.0)), dtype=np.float64)
    return 0.5 * x * (1.0 + erf)


def softmax(x: Tensor, dim: int) -> Tensor:
    if isinstance(x, Variable):
        return ops_unary.softmax(x, dim)
    if isinstance(x, MPCTensor):
        return x.softmax(dim)
    e = np.exp(x - np.max(x, axis=dim, keepdims=True))
    return np.asarray(e / np.sum(e, axis=dim, keepdims=True), dtype=np.float64)


def log_softmax(x: Tensor, dim: int) -> Tensor:
    if isinstance(x, Variable):
        return ops_unary.log_softmax(x, dim)
    if isinstance(x, MPCTensor):
        return x.log_softmax(dim)
    shifted = x - np.max(x, axis=dim, keepdims=True)
    out = shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))
    return np.asarray(out, dtype=np.float64)


def dropout(
    x: Tensor,
    p: float,
    training: bool,
    rng: np.random.Generator,
    mask_prg: AesCtrPrg | None = None,
) -> Tensor:
    """Inverted dropout in training, identity in eval. Plaintext arrays: a mask from ``rng``.
    Encrypted input (MPCTensor or private Variable): a PUBLIC keep-mask, independent of the
    data, drawn from ``mask_prg`` (an AES-CTR stream every party holds with the same seed,
    see ``nn.Dropout``), then ``x * mask / (1 - p)``: a public multiply (local plus one
    truncation: 0 rounds with 2 parties, 1 with 3); on a Variable the backward is
    ``g * mask / (1 - p)`` (same cost)."""
    if not training or p == 0.0:
        return x
    if is_encrypted(x):
        if mask_prg is None:
            raise ValueError("dropout on an encrypted tensor in training needs mask_prg")
        words = mask_prg.ring_elements(tuple(x.shape))
        uniform = (words >> np.uint64(11)).astype(np.float64) * 2.0**-53
        factor = np.where(uniform >= p, 1.0 / (1.0 - p), 0.0) if p < 1.0 else np.zeros(x.shape)
        if isinstance(x, Variable):
            return ops_arith.mul(x, factor)
        return x * factor
    if isinstance(x, Variable):
        return ops_arith.mul(x, _plain_dropout(np.ones(x.shape), p, rng))
    if isinstance(x, MPCTensor):  # unreachable: is_encrypted above
        return x
    return _plain_dropout(x, p, rng)


def _plain_dropout(x: F64, p: float, rng: np.random.Generator) -> F64:
    if p == 1.0:
        return np.zeros_like(x)
    keep = rng.random(x.shape) >= p
    return np.where(keep, x / (1.0 - p), 0.0)


# -- pooling and shape ---------------------------------------------------------------------
def max_pool2d(
    x: Tensor,
    kernel_size: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: int | tuple[int, ...] = 0,
    dilation: int | tuple[int, ...] = 1,
) -> Tensor:
    if isinstance(x, Variable):
        return ops_conv.max_pool2d(x, kernel_size, stride, padding, dilation)
    if isinstance(x, MPCTensor):
        pooled: MPCTensor = x.max_pool2d(
            _two(kernel_size),
            stride=None if stride is None else _two(stride),
            padding=_two(padding),
            dilation=_two(dilation),
        )
        return pooled
    ks = int_tuple(kernel_size, 2, "kernel_size")
    st = ks if stride is None else int_tuple(stride, 2, "stride")
    win = plain.windows(
        x, ks, st, int_tuple(padding, 2, "padding"), int_tuple(dilation, 2, "dilation"), -np.inf
    )
    return np.asarray(win.max(axis=(-2, -1)), dtype=np.float64)


def avg_pool2d(
    x: Tensor,
    kernel_size: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: int | tuple[int, ...] = 0,
) -> Tensor:
    """torch avg_pool2d with ``count_include_pad=True``."""
    if isinstance(x, Variable):
        return ops_conv.avg_pool2d(x, kernel_size, stride, padding)
    if isinstance(x, MPCTensor):
        return x.avg_pool2d(
            _two(kernel_size),
            stride=None if stride is None else _two(stride),
            padding=_two(padding),
        )
    ks = int_tuple(kernel_size, 2, "kernel_size")
    st = ks if stride is None else int_tuple(stride, 2, "stride")
    win = plain.windows(x, ks, st, int_tuple(padding, 2, "padding"), (1, 1), 0.0)
    return np.asarray(win.mean(axis=(-2, -1)), dtype=np.float64)


def adaptive_avg_pool2d(x: Tensor, output_size: int | tuple[int, ...]) -> Tensor:
    if isinstance(x, Variable):
        return ops_conv.adaptive_avg_pool2d(x, output_size)
    if isinstance(x, MPCTensor):
        return x.adaptive_avg_pool2d(_two(output_size))
    out_h, out_w = int_tuple(output_size, 2, "output_size")
    h, w = x.shape[-2:]
    out = np.empty((*x.shape[:-2], out_h, out_w), dtype=np.float64)
    for i in range(out_h):
        r0, r1 = i * h // out_h, -(-(i + 1) * h // out_h)
        for j in range(out_w):
            c0, c1 = j * w // out_w, -(-(j + 1) * w // out_w)
            out[..., i, j] = x[..., r0:r1, c0:c1].mean(axis=(-2, -1))
    return out


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if isinstance(x, Variable):
        return ops_shape.flatten(x, start_dim, end_dim)
    if isinstance(x, MPCTensor):
        return x.flatten(start_dim, end_dim)
    nd = x.ndim
    start, end = start_dim % nd, end_dim % nd
    return x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])


# -- normalization -------------------------------------------------------------------------
def batch_norm(
    x: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
) -> Tensor:
    """Eval-mode batch norm with running statistics over dim 1. Public statistics: the
    per-channel scale and shift are computed in numpy (one public multiply on the input);
    encrypted statistics: ``inv_sqrt`` of the shared ``running_var + eps``."""
    inv: Tensor
    if isinstance(running_var, MPCTensor | Variable):
        inv = (running_var + eps).inv_sqrt()
    else:
        inv = 1.0 / np.sqrt(running_var + eps)
    scale: Tensor = inv if weight is None else weight * inv
    shift: Tensor = -(running_mean * scale)
    if bias is not None:
        shift = shift + bias
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return x * scale.reshape(shape) + shift.reshape(shape)


def layer_norm(
    x: Tensor,
    n_dims: int,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
) -> Tensor:
    """Normalize over the last ``n_dims`` dims (biased variance), then the affine map."""
    dims = tuple(range(x.ndim - n_dims, x.ndim))
    out: Tensor
    if isinstance(x, MPCTensor | Variable):
        centered = x - x.mean(dims, keepdim=True)
        var = (centered * centered).mean(dims, keepdim=True)
        out = centered * (var + eps).inv_sqrt()
    else:
        centered_np = x - x.mean(axis=dims, keepdims=True)
        var_np = (centered_np * centered_np).mean(axis=dims, keepdims=True)
        out = centered_np / np.sqrt(var_np + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


# -- additions: clamping activations, group norm, adaptive max pooling, padding ------------
def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """``clamp(x, min_val, max_val)``. MPCTensor: ``MPCTensor.clamp`` (public bounds);
    autograd Variable: ``x - relu(x - max_val) + relu(min_val - x)`` so the gradient is
    ``g`` inside the bounds and 0 outside (torch's rule)."""
    if isinstance(x, Variable):
        above = ops_unary.relu(ops_arith.sub(x, max_val))
        below = ops_unary.relu(ops_arith.sub(min_val, x))
        return ops_arith.add(ops_arith.sub(x, above), below)
    if isinstance(x, MPCTensor):
        return x.clamp(min_val, max_val)
    return np.clip(x, min_val, max_val)


def relu6(x: Tensor) -> Tensor:
    """``min(max(x, 0), 6)``."""
    return hardtanh(x, 0.0, 6.0)


def group_norm(
    x: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """torch.nn.functional.group_norm on ``(N, C, *)``: each sample's channels split into
    ``num_groups`` groups normalized over the group's channels and spatial positions
    (biased variance), then the per-channel affine map. Encrypted: ``inv_sqrt`` of the
    shared ``var + eps`` (accurate in ``SessionConfig.approx.scale_range``)."""
    shape = tuple(int(n) for n in x.shape)
    grouped_shape = (shape[0], num_groups, -1)
    out: Tensor
    if isinstance(x, MPCTensor | Variable):
        g = x.reshape(*grouped_shape)
        centered = g - g.mean(2, keepdim=True)
        var = (centered * centered).mean(2, keepdim=True)
        out = (centered * (var + eps).inv_sqrt()).reshape(*shape)
    else:
        g_np = x.reshape(grouped_shape)
        centered_np = g_np - g_np.mean(axis=2, keepdims=True)
        var_np = (centered_np * centered_np).mean(axis=2, keepdims=True)
        out = (centered_np / np.sqrt(var_np + eps)).reshape(shape)
    channel = (1, -1) + (1,) * (len(shape) - 2)
    if weight is not None:
        out = out * weight.reshape(*channel)
    if bias is not None:
        out = out + bias.reshape(*channel)
    return out


def _window_index(
    h: int, w: int, out_h: int, out_w: int
) -> npt.NDArray[np.int64]:
    """``(out_h * out_w, K)`` flat indices of each adaptive window's elements; windows
    smaller than the largest ``K`` repeat their first element (max is unchanged)."""
    rows, cols = plain.adaptive_windows(h, out_h), plain.adaptive_windows(w, out_w)
    cells = [
        [r * w + c for r in range(r0, r1) for c in range(c0, c1)]
        for r0, r1 in rows
        for c0, c1 in cols
    ]
    size = max(len(cell) for cell in cells)
    return np.array([cell + [cell[0]] * (size - len(cell)) for cell in cells], dtype=np.int64)


def _tournament_max(x: Any) -> Any:
    """Max over the last dim of an MPCTensor or Variable by pairwise halving:
    ``max(a, b) = b + relu(a - b)``; ``ceil(log2 K)`` relu levels, each one call."""
    join = ops_shape.cat if isinstance(x, Variable) else _mpc_cat
    while x.shape[-1] > 1:
        if x.shape[-1] % 2:
            x = join([x, x[..., -1:]], x.ndim - 1)
        half = x.shape[-1] // 2
        a, b = x[..., :half], x[..., half:]
        x = b + relu(a - b)
    return x[..., 0]


def _mpc_cat(parts: list[Any], dim: int) -> MPCTensor:
    from crypten_lite.tensor import cat

    return cat(parts, dim=dim)


def adaptive_max_pool2d(x: Tensor, output_size: int | tuple[int, ...]) -> Tensor:
    """torch adaptive_max_pool2d on ``(N, C, H, W)`` or ``(C, H, W)`` (values only). Numpy:
    exact. MPCTensor / Variable: each window's elements are gathered (local) and reduced by
    a tournament of ``ceil(log2 K)`` relu levels for the largest window size ``K``; on a
    Variable gradients flow to the maximum (ties split as the relu rule gives)."""
    out_h, out_w = int_tuple(output_size, 2, "output_size")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    lead = tuple(int(n) for n in x.shape[:-2])
    index = _window_index(h, w, out_h, out_w)
    if isinstance(x, MPCTensor | Variable):
        flat = x.reshape(*lead, h * w)
        windows = flat[(Ellipsis, index)]
        return _tournament_max(windows).reshape(*lead, out_h, out_w)  # type: ignore[no-any-return]
    windows_np = x.reshape(*lead, h * w)[..., index]
    return np.asarray(windows_np.max(axis=-1).reshape(*lead, out_h, out_w), dtype=np.float64)


def _keep_factor(
    shape: tuple[int, ...], p: float, mask_prg: AesCtrPrg
) -> npt.NDArray[np.float64]:
    words = mask_prg.ring_elements(shape)
    uniform = (words >> np.uint64(11)).astype(np.float64) * 2.0**-53
    if p >= 1.0:
        return np.zeros(shape)
    return np.where(uniform >= p, 1.0 / (1.0 - p), 0.0)


def dropout2d(
    x: Tensor,
    p: float,
    training: bool,
    rng: np.random.Generator,
    mask_prg: AesCtrPrg | None = None,
) -> Tensor:
    """Channel-wise dropout on ``(N, C, H, W)`` or ``(C, H, W)``: whole channels are zeroed
    with probability ``p``, the rest scaled by ``1/(1-p)``; identity in eval. As
    :func:`dropout`, an encrypted input gets a PUBLIC mask from ``mask_prg`` (one value per
    channel), so the cost is one public multiply."""
    if not training or p == 0.0:
        return x
    mask_shape = (*tuple(int(n) for n in x.shape[:-2]), 1, 1)
    factor: npt.NDArray[np.float64]
    if is_encrypted(x):
        if mask_prg is None:
            raise ValueError("dropout2d on an encrypted tensor in training needs mask_prg")
        factor = _keep_factor(mask_shape, p, mask_prg)
    elif p >= 1.0:
        factor = np.zeros(mask_shape)
    else:
        factor = np.where(rng.random(mask_shape) >= p, 1.0 / (1.0 - p), 0.0)
    if isinstance(x, Variable):
        return ops_arith.mul(x, factor)
    return x * factor


def constant_pad(x: Tensor, padding: tuple[int, ...], value: float = 0.0) -> Tensor:
    """torch.nn.functional.pad in constant mode: ``padding`` lists (left, right) pairs from
    the last dim; non-negative widths only."""
    if isinstance(x, Variable):
        return ops_shape.pad(x, padding, value)
    if isinstance(x, MPCTensor):
        return x.pad(list(padding), value=value)
    pairs = [(0, 0)] * x.ndim
    for i in range(len(padding) // 2):
        pairs[x.ndim - 1 - i] = (padding[2 * i], padding[2 * i + 1])
    return np.pad(x, pairs, constant_values=value)


def conv_transpose2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, ...] = 1,
    padding: int | tuple[int, ...] = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
) -> Tensor:
    """torch.nn.functional.conv_transpose2d on ``(N, C_in, H, W)``, weight
    ``(C_in, C_out/groups, kH, kW)``."""
    if isinstance(x, Variable) or isinstance(weight, Variable) or isinstance(bias, Variable):
        inp = x if isinstance(x, Variable) else Variable(x)
        return inp.conv_transpose2d(weight, bias, stride, padding, output_padding, groups, dilation)
    if isinstance(weight, MPCTensor) and not isinstance(x, MPCTensor):
        x = trivial_share(x, weight)
    if isinstance(x, MPCTensor):
        return x.conv_transpose2d(
            weight,
            bias,
            _two(stride),
            _two(padding),
            _two(output_padding),
            groups,
            _two(dilation),
        )
    if isinstance(weight, MPCTensor):  # unreachable: a private weight made x private above
        raise TypeError("conv_transpose2d: a private weight needs a shared input")
    out = plain.conv_transpose2d(
        x, weight, _two(stride), _two(padding), _two(output_padding), _two(dilation), groups
    )
    result: Tensor = out
    if bias is not None:
        result = result + bias.reshape(1, -1, 1, 1)
    return result
