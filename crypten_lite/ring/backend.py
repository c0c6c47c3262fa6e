"""Choice of the ring kernel backend: compiled (Cython) unless ``CRYPTEN_LITE_PURE=1`` or the
extension is missing. No module-level state: the choice is read from the environment on each
call and the two possible kernel tables are built once (cached)."""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from crypten_lite.errors import BackendError
from crypten_lite.ring import _ring_np
from crypten_lite.ring._gemm import RingKernels

__all__ = [
    "GEMM_THREADS_ENV",
    "PURE_ENV_VAR",
    "active",
    "active_kernels",
    "compiled_available",
    "gemm_threads",
    "kernels_for",
    "load_compiled",
    "pure_requested",
    "select_kernels",
]

PURE_ENV_VAR = "CRYPTEN_LITE_PURE"
#: Threads of one native GEMM (see :func:`gemm_threads`).
GEMM_THREADS_ENV = "CRYPTEN_LITE_GEMM_THREADS"
_MODULE = "crypten_lite.ring._ring_cy"
K = TypeVar("K")
U64 = npt.NDArray[np.uint64]


def load_compiled(module: str) -> ModuleType | None:
    """Import a compiled extension module, or ``None`` when it is not built."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def pure_requested() -> bool:
    """Whether ``CRYPTEN_LITE_PURE=1`` asks for the numpy reference backends."""
    return os.environ.get(PURE_ENV_VAR, "0") == "1"


def select_kernels(name: str, reference: K, compiled: K | None, module: str) -> K:
    """The kernel table named ``"numpy"`` or ``"cython"`` of one layer; raises if the
    compiled one is requested but ``module`` is not built."""
    if name == "numpy":
        return reference
    if name == "cython":
        if compiled is None:
            raise BackendError(
                f"backend 'cython' requested but {module} is not built; "
                "run `make build` or unset CRYPTEN_LITE_PURE"
            )
        return compiled
    raise ValueError(f"unknown backend {name!r}; expected 'numpy' or 'cython'")


def active(reference: K, compiled: K | None) -> K:
    """The reference if ``CRYPTEN_LITE_PURE=1``, else the compiled table when built."""
    if pure_requested() or compiled is None:
        return reference
    return compiled


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
        run_program=_ring_np.run_program,
    )


@functools.cache
def _compiled_kernels() -> RingKernels | None:
    module = load_compiled(_MODULE)
    if module is None:
        return None
    return RingKernels(
        name="cython",
        split_limbs=module.split_limbs,
        combine_limbs=module.combine_limbs,
        bits_unpack=module.bits_unpack,
        gather_bits=module.gather_bits,
        scatter_bits=module.scatter_bits,
        run_program=module.run_program,
        native_gemm=_threaded(module.native_gemm) if module.native_gemm_available() else None,
    )


def gemm_threads() -> int:
    """Threads for one native GEMM, read per call like BLAS reads its own: the first set of
    ``CRYPTEN_LITE_GEMM_THREADS``, ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` (the launcher
    sets the last two so that the ranks of a local job share the cores), else every core."""
    for name in (GEMM_THREADS_ENV, "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value:
            try:
                threads = int(value.split(",")[0])
            except ValueError:
                raise BackendError(f"{name}={value!r} is not a thread count") from None
            if threads < 1:
                raise BackendError(f"{name}={value!r} is not a positive thread count")
            return threads
    return os.cpu_count() or 1


def _threaded(gemm: Callable[[U64, U64, int], U64]) -> Callable[[U64, U64], U64]:
    def native_gemm(a: U64, b: U64) -> U64:
        return gemm(a, b, gemm_threads())

    return native_gemm


def kernels_for(name: str) -> RingKernels:
    """The kernel table named ``"numpy"`` or ``"cython"``; raises if unavailable."""
    return select_kernels(name, _reference_kernels(), _compiled_kernels(), _MODULE)


def active_kernels() -> RingKernels:
    """The backend in force now: the reference if ``CRYPTEN_LITE_PURE=1``, else the compiled
    twin when it is built, else the reference."""
    return active(_reference_kernels(), _compiled_kernels())
