"""Choice of the ring kernel backend: compiled (Cython) unless ``CRYPTEN_LITE_PURE=1`` or the
extension is missing. No module-level state: the choice is read from the environment on each
call and the two possible kernel tables are built once (cached)."""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType

from crypten_lite.errors import BackendError
from crypten_lite.ring import _ring_np
from crypten_lite.ring._gemm import RingKernels

__all__ = ["PURE_ENV_VAR", "active_kernels", "compiled_available", "kernels_for"]

PURE_ENV_VAR = "CRYPTEN_LITE_PURE"


def _load_compiled() -> ModuleType | None:
    try:
        return importlib.import_module("crypten_lite.ring._ring_cy")
    except ImportError:
        return None


def compiled_available() -> bool:
    """Whether the Cython extension is importable."""
    return _compiled_kernels() is not None


@functools.cache
def _reference_kernels() -> RingKernels:
    return RingKernels(
        name="numpy",
        split_limbs=_ring_np.split_limbs,
        combine_limbs=_ring_np.combine_limbs,
        bits_unpack=_ring_np.bits_unpack,
        gather_bits=_ring_np.gather_bits,
        scatter_bits=_ring_np.scatter_bits,
    )


@functools.cache
def _compiled_kernels() -> RingKernels | None:
    module = _load_compiled()
    if module is None:
        return None
    return RingKernels(
        name="cython",
        split_limbs=module.split_limbs,
        combine_limbs=module.combine_limbs,
        bits_unpack=module.bits_unpack,
        gather_bits=module.gather_bits,
        scatter_bits=module.scatter_bits,
    )


def kernels_for(name: str) -> RingKernels:
    """The kernel table named ``"numpy"`` or ``"cython"``; raises if unavailable."""
    if name == "numpy":
        return _reference_kernels()
    if name == "cython":
        compiled = _compiled_kernels()
        if compiled is None:
            raise BackendError(
                "backend 'cython' requested but crypten_lite.ring._ring_cy is not built; "
                "run `make build` or unset CRYPTEN_LITE_PURE"
            )
        return compiled
    raise ValueError(f"unknown ring backend {name!r}; expected 'numpy' or 'cython'")


def active_kernels() -> RingKernels:
    """The backend in force now: the reference if ``CRYPTEN_LITE_PURE=1``, else the compiled
    twin when it is built, else the reference."""
    if os.environ.get(PURE_ENV_VAR, "0") == "1":
        return _reference_kernels()
    return _compiled_kernels() or _reference_kernels()
