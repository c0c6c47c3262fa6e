"""The kinds of correlated randomness a provider hands out, as data: which components are
free (uniform, the sum/XOR of every party's own pseudo-random draw) and which are derived by
the dealer from them (only one party receives a correction for those).

A request is ``(kind, params)`` with params a tuple of int tuples; it travels to the dealer as
a flat int64 array (:func:`encode_request` / :func:`decode_request`), never pickled.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crypten_lite import ring
from crypten_lite.errors import ProtocolError
from crypten_lite.ring.prg import AesCtrPrg
from crypten_lite.ring.program import Compiled, ProgramBuilder, Reg
from crypten_lite.sharing import ARITHMETIC, BINARY

__all__ = [
    "KINDS",
    "MONO_ARITH",
    "MONO_BINARY",
    "REF_A",
    "REF_BIT",
    "REF_SIGN",
    "Component",
    "KindSpec",
    "Params",
    "decode_request",
    "encode_ref",
    "encode_request",
]

U64 = npt.NDArray[np.uint64]
Params = tuple[tuple[int, ...], ...]
# component forms are the sharing layer's share types: ARITHMETIC shares sum to the value
# mod 2^64, BINARY shares XOR to it


@dataclass(frozen=True)
class Component:
    name: str
    form: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class KindSpec:
    """``layout(params) -> (free, derived)``; ``derive(free_values, params, private_prg)``.
    ``corrections(free_values, params, private_prg, other_draws, names)``, where given,
    computes the last party's reply for the derived components ``names`` directly (their
    values minus, or XOR, the other parties' draws, flat, in layout order), or returns None
    to fall back to ``derive``."""

    layout: Callable[[Params], tuple[list[Component], list[Component]]]
    derive: Callable[[dict[str, U64], Params, AesCtrPrg], dict[str, U64]]
    corrections: (
        Callable[
            [dict[str, U64], Params, AesCtrPrg, list[dict[str, U64]], tuple[str, ...]],
            U64 | None,
        ]
        | None
    ) = None


def _bilinear(
    op: Callable[[U64, U64, Params], U64], out_shape: Callable[[Params], tuple[int, ...]]
) -> KindSpec:
    def layout(p: Params) -> tuple[list[Component], list[Component]]:
        return (
            [Component("a", ARITHMETIC, p[0]), Component("b", ARITHMETIC, p[1])],
            [Component("c", ARITHMETIC, out_shape(p))],
        )

    def derive(v: dict[str, U64], p: Params, _: AesCtrPrg) -> dict[str, U64]:
        return {"c": op(v["a"], v["b"], p)}

    return KindSpec(layout, derive)


def _matmul_out(p: Params) -> tuple[int, ...]:
    """numpy matmul's result shape, without computing anything."""
    a, b = p[0], p[1]
    if not a or not b:
        raise ValueError("matmul operands need at least one dimension")
    inner_b = b[0] if len(b) == 1 else b[-2]
    if a[-1] != inner_b:
        raise ValueError("matmul inner dimensions differ")
    batch = np.broadcast_shapes(a[:-2], b[:-2])
    rows = a[-2:-1]
    cols = b[-1:] if len(b) > 1 else ()
    return (*batch, *rows, *cols)


def _conv_params(p: Params) -> dict[str, object]:
    return {"stride": p[2], "padding": p[3], "dilation": p[4], "groups": p[5][0]}


def _conv_out(p: Params) -> tuple[int, ...]:
    x_shape, w_shape, stride, padding, dilation = p[0], p[1], p[2], p[3], p[4]
    spatial = tuple(
        (x_shape[2 + i] + 2 * padding[i] - dilation[i] * (w_shape[2 + i] - 1) - 1) // stride[i] + 1
        for i in range(len(x_shape) - 2)
    )
    return (x_shape[0], w_shape[0], *spatial)


def _conv(a: U64, b: U64, p: Params) -> U64:
    conv = ring.conv1d if len(p[0]) == 3 else ring.conv2d
    return conv(a, b, **_conv_params(p))  # type: ignore[arg-type]


def _bit_layout(p: Params) -> tuple[list[Component], list[Component]]:
    shape = p[0]
    return [], [Component("s_arith", ARITHMETIC, shape), Component("s_bin", BINARY, shape)]


def _trunc_layout(p: Params) -> tuple[list[Component], list[Component]]:
    shape = p[0]
    return (
        [Component("r", ARITHMETIC, shape)],
        [Component("r_shifted", ARITHMETIC, shape), Component("r_msb", ARITHMETIC, shape)],
    )


def _trunc_derive(v: dict[str, U64], p: Params, _: AesCtrPrg) -> dict[str, U64]:
    bits = p[1][0]
    return {"r_shifted": ring.rshift(v["r"], bits), "r_msb": ring.rshift(v["r"], 63)}


def _and_layout(p: Params) -> tuple[list[Component], list[Component]]:
    shape = p[0]
    return (
        [Component("a", BINARY, shape), Component("b", BINARY, shape)],
        [Component("c", BINARY, shape)],
    )


def _bit_derive(_: dict[str, U64], p: Params, private: AesCtrPrg) -> dict[str, U64]:
    bits = private.random_bits(p[0])
    return {"s_arith": bits, "s_bin": bits}


def _mask_layout(p: Params) -> tuple[list[Component], list[Component]]:
    shape = p[0]
    return [Component("r", ARITHMETIC, shape)], [Component("r_bin", BINARY, shape)]


# -- "monomials": AND-products of the bits of dealer masks (multi-input gates in one round) --
#
# params: ((n,), (with_r, n_masks, with_a), (n_groups,), then per group a header
# (form, stride, count) followed by `count` monomials, each a tuple of encoded references.
# Free: "r" (arithmetic, if with_r), "s1".."s<n_masks>" (binary), "a" (arithmetic, if with_a).
# Derived: "r_bin" (= r, binary, if with_r) and "m<g>" per group g. Lanes sit at bits
# stride*k (k < 64 // stride); a reference (kind, src, pos) reads bit stride*k + pos of source
# src (0 = r, i = s_i; bits outside 0..63 read as 0). A BIT reference contributes the bit, a
# SIGN reference 1 - 2*bit, REF_A the arithmetic value a. A binary group (bit references only)
# packs monomial q of lane k into bit stride*k + q % stride of word q // stride, shape
# (ceil(count / stride), n); an arithmetic group gives shape (count, n, lanes) of ring values.
MONO_BINARY = 0
MONO_ARITH = 1
REF_BIT = 0
REF_SIGN = 1
REF_A = 2
_STRIDES = (1, 2, 4, 8, 16, 32, 64)
_MAX_MASKS = 8


def encode_ref(kind: int, src: int, pos: int) -> int:
    """One monomial factor as a request parameter (non-negative int)."""
    return (kind << 16) | (src << 8) | (pos + 64)


def _decode_ref(ref: int, with_r: bool, n_masks: int, with_a: bool) -> tuple[int, int, int]:
    kind, src, pos = ref >> 16, (ref >> 8) & 0xFF, (ref & 0xFF) - 64
    if kind not in (REF_BIT, REF_SIGN, REF_A) or not -64 < pos < 64:
        raise ValueError("bad monomial reference")
    if kind == REF_A and not with_a:
        raise ValueError("monomial uses a but the request has none")
    if kind != REF_A and not ((src == 0 and with_r) or 1 <= src <= n_masks):
        raise ValueError("monomial references a missing source")
    return kind, src, pos


Ref = tuple[int, int, int]


def _mono_groups(p: Params) -> list[tuple[int, int, list[list[Ref]]]]:
    with_r, n_masks, with_a = (bool(p[1][0]), p[1][1], bool(p[1][2]))
    groups = []
    i = 3
    for _ in range(p[2][0]):
        form, stride, count = p[i]
        if form not in (MONO_BINARY, MONO_ARITH) or stride not in _STRIDES or count < 1:
            raise ValueError("bad monomial group header")
        chunk = p[i + 1 : i + 1 + count]
        monos = [[_decode_ref(r, with_r, n_masks, with_a) for r in m] for m in chunk]
        if len(monos) != count or any(not m for m in monos):
            raise ValueError("monomial group is short or has an empty monomial")
        if form == MONO_BINARY and any(kind != REF_BIT for m in monos for kind, _, _ in m):
            raise ValueError("binary monomials take bit references only")
        groups.append((form, stride, monos))
        i += 1 + count
    if i != len(p):
        raise ValueError("trailing monomial parameters")
    return groups


def _mono_layout(p: Params) -> tuple[list[Component], list[Component]]:
    (n,) = p[0]
    with_r, n_masks, with_a = p[1]  # unpacking errors become ProtocolError in layout_of
    if not 0 <= n_masks <= _MAX_MASKS or with_r not in (0, 1) or with_a not in (0, 1):
        raise ValueError("bad monomial sources")
    free = [Component("r", ARITHMETIC, (n,))] if with_r else []
    free += [Component(f"s{i}", BINARY, (n,)) for i in range(1, n_masks + 1)]
    free += [Component("a", ARITHMETIC, (n,))] if with_a else []
    derived = [Component("r_bin", BINARY, (n,))] if with_r else []
    for g, (form, stride, monos) in enumerate(_mono_groups(p)):
        if form == MONO_BINARY:
            derived.append(Component(f"m{g}", BINARY, (-(-len(monos) // stride), n)))
        else:
            derived.append(Component(f"m{g}", ARITHMETIC, (len(monos), n, 64 // stride)))
    return free, derived


def _shifted(word: U64, pos: int) -> U64:
    return word >> np.uint64(pos) if pos >= 0 else word << np.uint64(-pos)


def _source(builder: ProgramBuilder, src: int, pos: int) -> Reg:
    """Bit ``pos`` of mask source ``src`` (0 = r) moved to the lane bases."""
    return builder.shift(builder.placeholder(("v", "r" if src == 0 else f"s{src}")), pos)


def _group_rows(
    builder: ProgramBuilder, form: int, stride: int, monos: list[list[Ref]]
) -> list[Reg]:
    if form == MONO_BINARY:
        return _binary_program(builder, stride, monos)
    return _arith_program(builder, monos)


@functools.lru_cache(maxsize=256)
def _mono_program(
    tail: Params, n_others: int, complete: bool, names: tuple[str, ...] | None = None
) -> Compiled | None:
    """The word program of a ``"monomials"`` request (the parameters after ``(n,)``):
    the rows of every single-lane group (``complete=False``, for :func:`_mono_derive`), or
    the reply for the components ``names`` (``r_bin``, ``m<g>``), each row completed
    against the other parties' draws (``complete=True``; None if some arithmetic group
    packs lanes)."""
    groups = _mono_groups(((0,), *tail))
    packed = [form == MONO_ARITH and stride != 64 for form, stride, _ in groups]
    if complete and any(packed):
        return None

    def wanted(name: str) -> bool:
        return names is None or name in names

    builder = ProgramBuilder()
    rows: list[Reg] = []
    if complete and tail[0][0] and wanted("r_bin"):
        r = builder.placeholder(("v", "r"))
        rows.append(_completed(builder, r, "r_bin", -1, n_others, True))
    for g, (form, stride, monos) in enumerate(groups):
        if packed[g] or not wanted(f"m{g}"):
            continue
        for i, reg in enumerate(_group_rows(builder, form, stride, monos)):
            if complete:
                reg = _completed(builder, reg, f"m{g}", i, n_others, form == MONO_BINARY)
            rows.append(reg)
    return Compiled.of(builder, rows)


def _completed(
    builder: ProgramBuilder, value: Reg, name: str, row: int, n_others: int, binary: bool
) -> Reg:
    """``value`` minus (or XOR) every other party's draw of ``name[row]``."""
    for k in range(n_others):
        other = builder.placeholder(("o", k, name, row))
        value = builder.xor(value, other) if binary else builder.sub(value, other)
    return value


def _resolver(v: dict[str, U64], others: list[dict[str, U64]]) -> Callable[[object], U64]:
    def resolve(key: object) -> U64:
        if not isinstance(key, tuple):
            raise ProtocolError(f"unknown dealer program input {key!r}")
        if key[0] == "v":
            return v[key[1]]
        _, k, name, row = key
        draw = others[k][name]
        return draw if row < 0 else draw[row].reshape(-1)

    return resolve


def _mono_derive(v: dict[str, U64], p: Params, _private: AesCtrPrg) -> dict[str, U64]:
    """Every single-lane group's monomials from one cached word program
    (``ring.program``); arithmetic groups with several lanes per word take numpy."""
    sources = {i: v[f"s{i}"] for i in range(1, p[1][1] + 1)}
    out: dict[str, U64] = {}
    if p[1][0]:
        sources[0] = out["r_bin"] = v["r"]
    n = p[0][0]
    program = _mono_program(p[1:], 0, False)
    values = None if program is None else program.run(_resolver(v, []), n)
    start = 0
    for g, (form, stride, monos) in enumerate(_mono_groups(p)):
        if form == MONO_ARITH and stride != 64:
            out[f"m{g}"] = _arith_lanes(v, sources, n, stride, monos)
            continue
        rows = -(-len(monos) // stride) if form == MONO_BINARY else len(monos)
        if values is None:
            raise ProtocolError("monomial program missing")  # pragma: no cover - invariant
        block = values[start : start + rows]
        out[f"m{g}"] = block if form == MONO_BINARY else block.reshape(rows, n, 1)
        start += rows
    return out


def _mono_corrections(
    v: dict[str, U64],
    p: Params,
    _private: AesCtrPrg,
    others: list[dict[str, U64]],
    names: tuple[str, ...],
) -> U64 | None:
    """The reply for components ``names`` of a ``"monomials"`` request from one cached
    word program: each derived row is computed and completed against the other parties'
    draws in the same pass, straight into the reply buffer. None when an arithmetic group
    packs several lanes."""
    program = _mono_program(p[1:], len(others), True, names)
    if program is None:
        return None
    return program.run(_resolver(v, others), p[0][0]).reshape(-1)


def _binary_program(builder: ProgramBuilder, stride: int, monos: list[list[Ref]]) -> list[Reg]:
    lanes = np.uint64(sum(1 << (stride * k) for k in range(64 // stride)))
    words: list[Reg | None] = [None] * (-(-len(monos) // stride))
    lane_reg = builder.input(np.array(lanes, dtype=np.uint64))
    for q, mono in enumerate(monos):
        acc = lane_reg
        for _, src, pos in mono:
            acc = builder.and_(acc, _source(builder, src, pos))
        placed = builder.shift(acc, -(q % stride))
        word = words[q // stride]
        words[q // stride] = placed if word is None else builder.xor(word, placed)
    return [w for w in words if w is not None]


_ONE = np.array(1, dtype=np.uint64)
_TWO = np.array(2, dtype=np.uint64)


def _arith_program(builder: ProgramBuilder, monos: list[list[Ref]]) -> list[Reg]:
    one, two = builder.input(_ONE), builder.input(_TWO)
    out = []
    for mono in monos:
        acc: Reg | None = None
        for kind, src, pos in mono:
            if kind == REF_A:
                factor = builder.placeholder(("v", "a"))
            else:
                factor = builder.and_(_source(builder, src, pos), one)
                if kind == REF_SIGN:
                    factor = builder.sub(one, builder.mul(two, factor))
            acc = factor if acc is None else builder.mul(acc, factor)
        out.append(one if acc is None else acc)
    return out


def _arith_lanes(
    v: dict[str, U64], sources: dict[int, U64], n: int, stride: int, monos: list[list[Ref]]
) -> U64:
    lanes = 64 // stride
    offsets = np.arange(lanes, dtype=np.uint64) * np.uint64(stride)
    values = np.ones((len(monos), n, lanes), dtype=np.uint64)
    for q, mono in enumerate(monos):
        for kind, src, pos in mono:
            if kind == REF_A:
                factor = v["a"][:, None]
            else:
                factor = (_shifted(sources[src], pos)[:, None] >> offsets) & np.uint64(1)
                if kind == REF_SIGN:
                    factor = np.uint64(1) - np.uint64(2) * factor
            values[q] *= factor
    return values


KINDS: dict[str, KindSpec] = {
    "mul": _bilinear(lambda a, b, _: ring.mul(a, b), lambda p: np.broadcast_shapes(p[0], p[1])),
    "matmul": _bilinear(lambda a, b, _: ring.matmul(a, b), _matmul_out),
    "conv": _bilinear(_conv, _conv_out),
    "trunc": KindSpec(_trunc_layout, _trunc_derive),
    "and": KindSpec(_and_layout, lambda v, p, _: {"c": v["a"] & v["b"]}),
    "bit": KindSpec(_bit_layout, _bit_derive),
    "mask": KindSpec(_mask_layout, lambda v, p, _: {"r_bin": v["r"]}),
    "monomials": KindSpec(_mono_layout, _mono_derive, _mono_corrections),
}
_KIND_CODES = {name: code for code, name in enumerate(sorted(KINDS), start=1)}
_CODE_KINDS = {code: name for name, code in _KIND_CODES.items()}
CLOSE_CODE = 0
_MAX_PARAM = 1 << 31


def encode_request(kind: str, params: Params) -> npt.NDArray[np.int64]:
    """``[code, len(p0), *p0, len(p1), *p1, ...]`` as int64."""
    flat: list[int] = [_KIND_CODES[kind]]
    for p in params:
        flat.append(len(p))
        flat.extend(int(v) for v in p)
    return np.array(flat, dtype=np.int64)


def decode_request(message: npt.NDArray[np.generic]) -> tuple[str, Params] | None:
    """Inverse of :func:`encode_request`; ``None`` for the close message. Malformed input
    raises :class:`ProtocolError`."""
    if message.dtype != np.int64 or message.ndim != 1 or message.size == 0:
        raise ProtocolError("malformed dealer request: expected a non-empty 1-D int64 array")
    code = int(message[0])
    if code == CLOSE_CODE:
        return None
    if code not in _CODE_KINDS:
        raise ProtocolError(f"malformed dealer request: unknown kind code {code}")
    params: list[tuple[int, ...]] = []
    i = 1
    while i < message.size:
        n = int(message[i])
        if n < 0 or i + 1 + n > message.size:
            raise ProtocolError("malformed dealer request: parameter length out of range")
        values = tuple(int(v) for v in message[i + 1 : i + 1 + n])
        if any(v < 0 or v > _MAX_PARAM for v in values):
            raise ProtocolError("malformed dealer request: parameter value out of range")
        params.append(values)
        i += 1 + n
    return _CODE_KINDS[code], tuple(params)
