"""L0: arithmetic in the ring Z_2^64 on ``np.uint64`` arrays (see :mod:`.api`)."""

from __future__ import annotations

from crypten_lite.ring.api import (
    add,
    arshift,
    bit_extract,
    bits_pack,
    bits_unpack,
    conv1d,
    conv2d,
    from_signed,
    gather_bits,
    lshift,
    matmul,
    mul,
    neg,
    rshift,
    scatter_bits,
    sub,
    sum,
    to_signed,
)
from crypten_lite.ring.backend import active_kernels, compiled_available

__all__ = [
    "active_kernels",
    "add",
    "arshift",
    "bit_extract",
    "bits_pack",
    "bits_unpack",
    "compiled_available",
    "conv1d",
    "conv2d",
    "from_signed",
    "gather_bits",
    "lshift",
    "matmul",
    "mul",
    "neg",
    "rshift",
    "scatter_bits",
    "sub",
    "sum",
    "to_signed",
]
