"""Shared machinery of the attribution methods: argument checks (all before any
communication), value helpers that work on numpy arrays and MPCTensors alike, the batched
forward + backward, the private Gaussian noise and the reveal.

Values are a secret-shared ``MPCTensor`` or a public float64 numpy array. Linear maps on
shares (sums, reshapes, repeats, adding a public array) are local; a product of two private
values is one Beaver round plus a truncation (0 rounds with 2 parties, 1 with more); a
product with a public real is one truncation.
"""

from __future__ import annotations

import contextlib
import secrets
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from crypten_lite import ring
from crypten_lite.autograd import Variable
from crypten_lite.autograd.values import like, to_private
from crypten_lite.encoding import FixedPointEncoder
from crypten_lite.errors import SessionError
from crypten_lite.nn import Module
from crypten_lite.ring.prg import AesCtrPrg
from crypten_lite.session import Session, current_session
from crypten_lite.tensor import MPCTensor
from crypten_lite.tensor import cat as mpc_cat

F64: TypeAlias = npt.NDArray[np.float64]
I64: TypeAlias = npt.NDArray[np.int64]
Value: TypeAlias = "MPCTensor | F64"

#: Errors of a model's forward or backward that the attribution re-raises with context.
MODEL_ERRORS = (TypeError, NotImplementedError, RuntimeError, AttributeError)


# -- argument checks (local, before any communication) --------------------------------------
def check_inputs(inputs: Any, where: str) -> Value:
    """An MPCTensor as it is, a real numpy array as float64, batch-first (at least 1-D)."""
    if isinstance(inputs, Variable):
        raise TypeError(f"{where}: pass the MPCTensor or numpy array itself, not a Variable")
    if isinstance(inputs, MPCTensor):
        value: Value = inputs
    else:
        arr = np.asarray(inputs)
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise TypeError(
                f"{where}: inputs must be an MPCTensor or a numeric numpy array, "
                f"got {type(inputs).__name__}"
            )
        value = np.asarray(arr, dtype=np.float64)
    if len(value.shape) < 1 or value.shape[0] < 1:
        raise ValueError(
            f"{where}: inputs must be batch-first with at least one example, got shape "
            f"{tuple(value.shape)}"
        )
    return value


def check_target(target: Any, n: int, where: str) -> I64 | None:
    """None, or one public class index per example (an int is applied to every example)."""
    if target is None:
        return None
    if isinstance(target, MPCTensor | Variable):
        raise TypeError(f"{where}: target must be public (an int or a sequence of ints)")
    if isinstance(target, bool):
        raise TypeError(f"{where}: target must be an int or a sequence of ints, got bool")
    arr = np.asarray(target)
    if arr.dtype.kind not in "iu" or arr.ndim > 1:
        raise TypeError(
            f"{where}: target must be an int or a 1-D sequence of ints, got {target!r}"
        )
    if arr.ndim == 0 or arr.size == 1:
        arr = np.full(n, int(arr.reshape(-1)[0]), dtype=np.int64)
    if arr.shape != (n,):
        raise ValueError(
            f"{where}: target has {arr.shape[0]} entries for {n} examples (one per example "
            "or a single int)"
        )
    if np.any(arr < 0):
        raise ValueError(f"{where}: target {arr.tolist()} is out of range (negative index)")
    return arr.astype(np.int64)


def check_dst(dst: Any, where: str) -> int | None:
    if dst is None:
        return None
    if isinstance(dst, bool) or not isinstance(dst, int | np.integer):
        raise TypeError(f"{where}: dst must be None or a party rank, got {dst!r}")
    world = _world_size()
    if not 0 <= int(dst) < world:
        raise ValueError(f"{where}: dst={dst} is not a party rank (world size {world})")
    return int(dst)


def check_baselines(baselines: Any, x: Value, where: str) -> Value:
    """Zeros, a scalar, or a tensor of ``x``'s shape or of one example's shape (with or
    without a leading 1), broadcast to ``x``'s shape (a view or a local operation)."""
    shape = tuple(x.shape)
    if baselines is None:
        return np.zeros(shape)
    if isinstance(baselines, Variable):
        raise TypeError(f"{where}: pass the baselines' MPCTensor or array, not a Variable")
    if isinstance(baselines, MPCTensor):
        b: Value = baselines
    else:
        arr = np.asarray(baselines)
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise TypeError(f"{where}: baselines must be a number, array or MPCTensor")
        b = np.asarray(arr, dtype=np.float64)
        if b.ndim == 0:
            return np.full(shape, float(b))
    bshape = tuple(b.shape)
    if bshape not in (shape, (1, *shape[1:]), shape[1:]):
        raise ValueError(
            f"{where}: baselines of shape {bshape} do not match inputs of shape {shape} "
            f"(expected {shape}, {(1, *shape[1:])} or {shape[1:]})"
        )
    if bshape == shape:
        return b
    if isinstance(b, MPCTensor):
        return like(b, np.broadcast_to(b.share.reshape((1, *shape[1:])), shape).copy())
    return np.broadcast_to(b.reshape((1, *shape[1:])), shape).copy()


def check_callable(forward_func: Any, where: str) -> None:
    if not callable(forward_func):
        kind = type(forward_func).__name__
        raise TypeError(f"{where}: forward_func must be callable, got {kind}")


# -- sessions ---------------------------------------------------------------------------------
def _session_or_none() -> Session | None:
    try:
        return current_session()
    except SessionError:
        return None


def _world_size() -> int:
    session = _session_or_none()
    return 1 if session is None else session.world_size


def _rank() -> int:
    session = _session_or_none()
    return 0 if session is None else session.rank


# -- value helpers (numpy and MPCTensor alike) ------------------------------------------------
def _template(*values: Any) -> MPCTensor | None:
    for v in values:
        if isinstance(v, MPCTensor):
            return v
    return None


def add(a: Value, b: Value) -> Value:
    if isinstance(a, MPCTensor):
        return a.add(b)
    if isinstance(b, MPCTensor):
        return b.add(a)
    return np.asarray(a + b, dtype=np.float64)


def sub(a: Value, b: Value) -> Value:
    if isinstance(a, MPCTensor):
        return a.sub(b)
    if isinstance(b, MPCTensor):
        return b.neg().add(a)
    return np.asarray(a - b, dtype=np.float64)


def mul(a: Value, b: Value) -> Value:
    """Elementwise product: private x private is 1 Beaver round + truncation."""
    if isinstance(a, MPCTensor):
        return a.mul(b)
    if isinstance(b, MPCTensor):
        return b.mul(a)
    return np.asarray(a * b, dtype=np.float64)


def scale(a: Value, factor: float | F64) -> Value:
    """Times a public real (one truncation on shares)."""
    if isinstance(a, MPCTensor):
        return a.mul(np.asarray(factor, dtype=np.float64))
    return np.asarray(a * factor, dtype=np.float64)


def reshape(a: Value, shape: tuple[int, ...]) -> Value:
    if isinstance(a, MPCTensor):
        return like(a, a.share.reshape(shape))
    return a.reshape(shape)


def repeat_rows(a: Value, times: int) -> Value:
    """Each example repeated ``times`` times in a row (torch's ``repeat_interleave``)."""
    if times == 1:
        return a
    if isinstance(a, MPCTensor):
        return like(a, np.repeat(a.share, times, axis=0))
    return np.repeat(a, times, axis=0)


def sum_rows(a: Value, groups: int) -> Value:
    """``a`` of shape ``(groups * k, ...)`` -> per-group sums over consecutive ``k`` rows of
    everything: shape ``(groups,)`` (local)."""
    flat = reshape(a, (groups, -1))
    if isinstance(flat, MPCTensor):
        return flat.sum(1)
    return np.asarray(flat.sum(axis=1), dtype=np.float64)


def concat(values: Sequence[Value]) -> Value:
    """Concatenate along the batch dim; public pieces become trivial sharings (local) when
    another piece is private."""
    template = _template(*values)
    if template is None:
        return np.concatenate([np.asarray(v) for v in values], axis=0)
    return mpc_cat([to_private(v, template) for v in values], 0)


def take_rows(a: Value, start: int, stop: int) -> Value:
    if isinstance(a, MPCTensor):
        return like(a, a.share[start:stop])
    return a[start:stop]


def square(a: Value) -> Value:
    return mul(a, a)


def abs_value(a: Value) -> Value:
    """|a|: on shares one comparison (see ``MPCTensor.abs``)."""
    if isinstance(a, MPCTensor):
        return a.abs()
    return np.abs(a)


def path_batch(x: Value, baseline: Value, alphas: F64) -> Value:
    """``baseline + alpha_k (x - baseline)`` for every ``k``, stacked along the batch dim:
    shape ``(len(alphas) * N, ...)`` (one truncation on shares, for all steps at once)."""
    n = len(alphas)
    diff = sub(x, baseline)
    shape = (n,) + (1,) * len(x.shape)
    if isinstance(diff, MPCTensor):
        expanded: Value = like(diff, diff.share[None])
    else:
        expanded = diff[None]
    scaled = add(scale(expanded, alphas.reshape(shape)), reshape(baseline, (1, *x.shape)))
    return reshape(scaled, (n * x.shape[0], *x.shape[1:]))


def step_sum(grads: Value, weights: F64, n: int) -> Value:
    """``sum_k weights[k] grads[k]`` over the leading step axis of ``grads`` (shape
    ``(n * N, ...)`` -> ``(N, ...)``): a public matrix product, local on shares, with a
    single truncation after the sum (each weight encoded with ``precision`` significant
    bits, like ``MPCTensor.mul`` by a small public real)."""
    out_shape = (grads.shape[0] // n, *grads.shape[1:])
    if not isinstance(grads, MPCTensor):
        total = np.tensordot(weights, grads.reshape(n, -1), axes=1)
        return np.asarray(total, dtype=np.float64).reshape(out_shape)
    largest = float(np.max(np.abs(weights)))
    f = grads.precision
    bits = max(f, min(f - int(np.ceil(np.log2(largest))), 61)) if largest > 0 else f
    multiplier = FixedPointEncoder(bits).encode(weights).reshape(1, n)
    z = ring.matmul(multiplier, np.ascontiguousarray(grads.share.reshape(n, -1)))
    return like(grads, z).truncate(bits).reshape(*out_shape)


def zeros_like(a: Value) -> Value:
    if isinstance(a, MPCTensor):
        return like(a, np.zeros(a.shape, np.uint64))
    return np.zeros(a.shape)


# -- noise ------------------------------------------------------------------------------------
def private_gaussian(prg: AesCtrPrg, shape: tuple[int, ...], std: float) -> F64:
    """Gaussian ``N(0, std^2)`` samples from a keyed AES-CTR stream: two uniform ring
    elements per sample, their top 53 bits as uniforms in (0, 1), Box-Muller in float64."""
    count = int(np.prod(shape))
    words = prg.ring_elements((2, count))
    u = ((words >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    z = np.sqrt(-2.0 * np.log(u[0])) * np.cos(2.0 * np.pi * u[1])
    return np.asarray(std * z, dtype=np.float64).reshape(shape)


def noisy_copies(
    inputs: Value, nt_samples: int, stdevs: float, seed: int | None = None
) -> Value:
    """``nt_samples`` noisy copies of every example (example ``i``'s copies are rows
    ``i * nt_samples ...``), noise ``N(0, stdevs^2)`` per element.

    Private input: each of the ``W`` parties draws ``N(0, stdevs^2 / W)`` from its own
    private AES-CTR stream (``session.private``) and adds its fixed-point encoding to its own
    share: no communication, the sum is ``N(0, stdevs^2)`` and no party knows it.
    Public input: ``np.random.default_rng(seed)``; inside a session of several parties with
    ``seed=None``, party 0 draws a seed and broadcasts it (1 round, 8 bytes), so that every
    party adds the same public noise.
    """
    copies = repeat_rows(inputs, nt_samples)
    if stdevs == 0.0:
        return copies
    if isinstance(copies, MPCTensor):
        own = copies.session
        std = stdevs / np.sqrt(own.world_size)
        noise = private_gaussian(own.private, tuple(copies.shape), std)
        return like(copies, copies.share + copies.encoder.encode(noise))
    if seed is None:
        session = _session_or_none()
        if session is not None and session.world_size > 1:
            mine = (
                np.array([secrets.randbits(63)], dtype=np.int64) if session.rank == 0 else None
            )
            seed = int(session.comm.broadcast(mine, 0)[0])
    rng = np.random.default_rng(seed)
    return np.asarray(copies + rng.normal(0.0, stdevs, copies.shape), dtype=np.float64)


# -- forward + backward ------------------------------------------------------------------------
@contextlib.contextmanager
def frozen_parameters(forward_func: Any) -> Iterator[None]:
    """Parameters of a Module that require a gradient stop requiring it for the call (no
    parameter gradient is computed or accumulated; ``.grad`` is left as it was)."""
    frozen: list[tuple[Variable, Any]] = []
    if isinstance(forward_func, Module):
        for p in forward_func.parameters():
            if isinstance(p, Variable) and p.requires_grad and p.is_leaf:
                frozen.append((p, p.grad))
                p.requires_grad = False
    try:
        yield
    finally:
        for p, grad in frozen:
            p.requires_grad = True
            p.grad = grad


def _failing_layer(forward_func: Any, err: BaseException) -> str:
    """The deepest sub-module of ``forward_func`` on the traceback of ``err``."""
    if not isinstance(forward_func, Module):
        return ""
    names = {id(m): name for name, m in forward_func.named_modules()}
    found = ""
    for frame, _ in traceback.walk_tb(err.__traceback__):
        owner = frame.f_locals.get("self")
        if isinstance(owner, Module) and id(owner) in names:
            label = names[id(owner)] or "<root>"
            found = f" in layer {label!r} ({owner.describe()})"
    return found


def model_error(
    where: str, stage: str, forward_func: Any, err: BaseException
) -> Exception:
    layer = _failing_layer(forward_func, err)
    message = f"{where}: the model's {stage}{layer} failed: {type(err).__name__}: {err}"
    if stage == "backward":
        message += " (the layer has no gradient rule for this input kind)"
    cls = TypeError if isinstance(err, TypeError | AttributeError) else ValueError
    return cls(message)


def forward_backward(
    forward_func: Callable[..., Any],
    batch: Value,
    targets: I64 | None,
    grad_rows: int,
    where: str,
) -> tuple[Value, Value | None]:
    """One forward of ``batch`` (shape ``(M, ...)``) and one backward of the selected outputs
    of its first ``grad_rows`` rows (the public one-hot gradient ``onehot[i, targets[i]]``,
    i.e. ``d sum(out * onehot) / d batch``). Returns the input gradient (zeros after row
    ``grad_rows``) and the selected outputs of rows ``grad_rows..M`` (None when there are
    none). ``targets`` has one entry per row of the batch (None: a scalar output per row).
    Parameter gradients are neither computed nor accumulated."""
    m = batch.shape[0]
    leaf = Variable(batch, requires_grad=True)
    with frozen_parameters(forward_func):
        try:
            out = forward_func(leaf)
        except MODEL_ERRORS as err:
            raise model_error(where, "forward", forward_func, err) from err
        if not isinstance(out, Variable):
            raise TypeError(
                f"{where}: forward_func returned {type(out).__name__}, not an autograd "
                "Variable: it does not differentiate with respect to its input (use "
                "crypten_lite.nn layers or Variable operations)"
            )
        shape = tuple(out.shape)
        selection = onehot(shape, targets, grad_rows, m, where)
        if out.requires_grad:
            try:
                out.backward(selection)
            except MODEL_ERRORS as err:
                raise model_error(where, "backward", forward_func, err) from err
    grad = leaf.grad
    if grad is None:
        grad = zeros_like(batch)
    selected = None
    if grad_rows < m:
        selected = select(out.data, targets, grad_rows, m)
    return grad, selected


def onehot(
    shape: tuple[int, ...], targets: I64 | None, grad_rows: int, m: int, where: str
) -> F64:
    if not shape or shape[0] != m:
        raise ValueError(
            f"{where}: forward_func returned shape {shape} for a batch of {m} examples "
            "(expected batch-first outputs (N, C))"
        )
    onehot = np.zeros(shape)
    if targets is None:
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise ValueError(
                f"{where}: target=None needs one output per example (shape (N,) or (N, 1)), "
                f"got output shape {shape[1:]} per batch: pass target="
            )
        onehot[:grad_rows] = 1.0
        return onehot
    if len(shape) != 2:
        raise ValueError(f"{where}: target= needs outputs of shape (N, C), got {shape}")
    classes = shape[1]
    bad = targets[targets >= classes]
    if bad.size:
        raise ValueError(
            f"{where}: target {int(bad[0])} is out of range for {classes} classes "
            f"(valid: 0..{classes - 1})"
        )
    rows = np.arange(grad_rows)
    onehot[rows, targets[:grad_rows]] = 1.0
    return onehot


def select(out: Value, targets: I64 | None, start: int, stop: int) -> Value:
    rows = np.arange(start, stop)
    if isinstance(out, MPCTensor):
        share = out.share.reshape(out.shape[0], -1)
        col = np.zeros(len(rows), np.int64) if targets is None else targets[start:stop]
        return like(out, share[rows, col])
    flat = np.asarray(out).reshape(out.shape[0], -1)
    col = np.zeros(len(rows), np.int64) if targets is None else targets[start:stop]
    return np.asarray(flat[rows, col], dtype=np.float64)


# -- output ------------------------------------------------------------------------------------
def reveal(values: Sequence[Value], dst: int | None) -> list[Any]:
    """``dst=None``: the values as they are. ``dst=k``: every value revealed to party ``k``
    in ONE round (private ones concatenated), numpy on party ``k``, None elsewhere."""
    if dst is None:
        return list(values)
    template = _template(*values)
    if template is None:
        mine = _rank() == dst
        return [np.array(v, copy=True) if mine else None for v in values]
    flat = [to_private(v, template).reshape(-1) for v in values]
    sizes = [int(np.prod(v.shape)) for v in values]
    plain = mpc_cat(flat, 0).get_plain_text(dst) if len(flat) > 1 else flat[0].get_plain_text(dst)
    if plain is None:
        return [None for _ in values]
    out: list[Any] = []
    offset = 0
    for v, size in zip(values, sizes, strict=True):
        out.append(np.asarray(plain[offset : offset + size]).reshape(v.shape))
        offset += size
    return out
