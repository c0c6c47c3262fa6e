"""The kinds of correlated randomness a provider hands out, as data: which components are
free (uniform, the sum/XOR of every party's own pseudo-random draw) and which are derived by
the dealer from them (only one party receives a correction for those).

A request is ``(kind, params)`` with params a tuple of int tuples; it travels to the dealer as
a flat int64 array (:func:`encode_request` / :func:`decode_request`), never pickled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crypten_lite import ring
from crypten_lite.errors import ProtocolError
from crypten_lite.ring.prg import AesCtrPrg

__all__ = [
    "ARITHMETIC",
    "BINARY",
    "KINDS",
    "Component",
    "KindSpec",
    "Params",
    "decode_request",
    "encode_request",
]

U64 = npt.NDArray[np.uint64]
Params = tuple[tuple[int, ...], ...]
ARITHMETIC = "A"  # shares sum to the value mod 2^64
BINARY = "B"  # shares XOR to the value


@dataclass(frozen=True)
class Component:
    name: str
    form: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class KindSpec:
    """``layout(params) -> (free, derived)``; ``derive(free_values, params, private_prg)``."""

    layout: Callable[[Params], tuple[list[Component], list[Component]]]
    derive: Callable[[dict[str, U64], Params, AesCtrPrg], dict[str, U64]]


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


KINDS: dict[str, KindSpec] = {
    "mul": _bilinear(lambda a, b, _: ring.mul(a, b), lambda p: np.broadcast_shapes(p[0], p[1])),
    "matmul": _bilinear(
        lambda a, b, _: ring.matmul(a, b),
        lambda p: np.matmul(np.zeros(p[0], np.uint64), np.zeros(p[1], np.uint64)).shape,
    ),
    "conv": _bilinear(_conv, _conv_out),
    "trunc": KindSpec(_trunc_layout, _trunc_derive),
    "and": KindSpec(_and_layout, lambda v, p, _: {"c": v["a"] & v["b"]}),
    "bit": KindSpec(_bit_layout, _bit_derive),
    "mask": KindSpec(_mask_layout, lambda v, p, _: {"r_bin": v["r"]}),
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
