"""``show_config()``: which ring backend, library versions and thread settings are in use."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import TextIO

from crypten_lite.ring.backend import (
    PURE_ENV_VAR,
    active_kernels,
    compiled_available,
    gemm_threads,
)

__all__ = ["config_report", "show_config"]

_PACKAGES = ("numpy", "cryptography", "grpcio", "protobuf", "Cython")
_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "CRYPTEN_LITE_GEMM_THREADS",
)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def config_report() -> dict[str, str]:
    """The facts :func:`show_config` prints, as a dict (stable keys, string values)."""
    report = {
        "crypten_lite": _version("crypten-lite"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "ring backend": active_kernels().name,
        "compiled backend built": "yes" if compiled_available() else "no",
        "native ring GEMM": (
            f"yes (AVX-512, {gemm_threads()} threads)"
            if active_kernels().native_gemm is not None
            else "no (float64 limb GEMMs)"
        ),
        PURE_ENV_VAR: os.environ.get(PURE_ENV_VAR, "(unset)"),
        "cpu count": str(os.cpu_count()),
    }
    report.update({name: _version(name) for name in _PACKAGES})
    report.update({name: os.environ.get(name, "(unset)") for name in _THREAD_VARS})
    return report


def show_config(file: TextIO | None = None) -> None:
    """Print the backend in use, library versions and thread settings."""
    out = file if file is not None else sys.stdout
    report = config_report()
    width = max(len(key) for key in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value}", file=out)
