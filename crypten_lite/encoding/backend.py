"""Choice of the encoding kernel backend, mirroring :mod:`crypten_lite.ring.backend`: the
compiled twin unless ``CRYPTEN_LITE_PURE=1`` or the extension is missing. The environment is
read on each call; the two kernel tables are built once (cached). No module-level state.

The compiled table keeps numpy's kernel where numpy is already as fast. Best of 15-21 runs
on the 2-core dev VM (AVX-512 CPU; numpy dispatches SIMD at run time while the extension is
built for baseline x86-64, so divide/rint-bound loops do not win), 10^6 elements unless noted:

=========================  ========  =========  ==========
kernel                     numpy ms  Cython ms  table uses
=========================  ========  =========  ==========
fixed_encode_float         4.2-5.0   2.0-2.7    Cython
fixed_decode               1.0-1.2   0.70-0.85  Cython
quantize_centered          7.7-8.5   3.3-3.5    Cython
dequantize (int8)          1.0-1.25  0.40-0.45  Cython
center (int8, 256x256)     0.04      0.03       Cython
fixed_encode_int           1.3-1.4   1.1-1.4    numpy
quantize (int8)            2.7-3.2   3.4-3.9    numpy
requantize (256x256)       0.21      0.26-0.28  numpy
=========================  ========  =========  ==========

The Cython ``quantize``/``requantize``/``fixed_encode_int`` stay in the extension (and in the
differential tests) for builds with wider SIMD.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crypten_lite.encoding import _encoding_np
from crypten_lite.ring.backend import (
    PURE_ENV_VAR,
    active,
    load_compiled,
    select_kernels,
)

__all__ = [
    "PURE_ENV_VAR",
    "EncodingKernels",
    "active_kernels",
    "compiled_available",
    "kernels_for",
]

_MODULE = "crypten_lite.encoding._encoding_cy"


@dataclass(frozen=True)
class EncodingKernels:
    """The per-backend kernels the encoding API dispatches to (see ``_encoding_np``)."""

    name: str
    fixed_encode_float: Callable[..., Any]
    fixed_encode_int: Callable[..., Any]
    fixed_decode: Callable[..., Any]
    quantize: Callable[..., Any]
    quantize_centered: Callable[..., Any]
    dequantize: Callable[..., Any]
    center: Callable[..., Any]
    requantize: Callable[..., Any]


def compiled_available() -> bool:
    """Whether the Cython extension is importable."""
    return _compiled_kernels() is not None


@functools.cache
def _reference_kernels() -> EncodingKernels:
    return EncodingKernels(
        name="numpy",
        fixed_encode_float=_encoding_np.fixed_encode_float,
        fixed_encode_int=_encoding_np.fixed_encode_int,
        fixed_decode=_encoding_np.fixed_decode,
        quantize=_encoding_np.quantize,
        quantize_centered=_encoding_np.quantize_centered,
        dequantize=_encoding_np.dequantize,
        center=_encoding_np.center,
        requantize=_encoding_np.requantize,
    )


@functools.cache
def _compiled_kernels() -> EncodingKernels | None:
    module = load_compiled(_MODULE)
    if module is None or not hasattr(module, "fixed_encode_float"):
        return None
    return EncodingKernels(
        name="cython",
        fixed_encode_float=module.fixed_encode_float,
        fixed_encode_int=_encoding_np.fixed_encode_int,  # numpy as fast
        fixed_decode=module.fixed_decode,
        quantize=_encoding_np.quantize,  # numpy (SIMD divide/rint) as fast
        quantize_centered=module.quantize_centered,
        dequantize=module.dequantize,
        center=module.center,
        requantize=_encoding_np.requantize,  # numpy as fast
    )


def kernels_for(name: str) -> EncodingKernels:
    """The kernel table named ``"numpy"`` or ``"cython"``; raises if unavailable."""
    return select_kernels(name, _reference_kernels(), _compiled_kernels(), _MODULE)


def active_kernels() -> EncodingKernels:
    """The backend in force now: the reference if ``CRYPTEN_LITE_PURE=1``, else the compiled
    twin when it is built, else the reference."""
    return active(_reference_kernels(), _compiled_kernels())
