"""Build configuration for the compiled kernels only; metadata lives in pyproject.toml.

The extensions are optional: without a C compiler the build skips them and the package runs
on its numpy reference kernels (bit-identical, slower), which is all an edge client needs.
``make build`` checks that they were built, so development and CI never fall back silently.
"""

from __future__ import annotations

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

_COMPILE_ARGS = ["-O3"]

_EXTENSIONS = [
    Extension(
        "crypten_lite.ring._ring_cy",
        ["csrc_cython/_ring_cy.pyx"],
        depends=[
            "csrc_cython/word_program.h", "csrc_cython/bit_stream.h", "csrc_cython/ring_gemm.h"
        ],
        include_dirs=[np.get_include(), "csrc_cython"],
        extra_compile_args=_COMPILE_ARGS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        optional=True,
    ),
    Extension(
        "crypten_lite.encoding._encoding_cy",
        ["csrc_cython/_encoding_cy.pyx"],
        include_dirs=[np.get_include(), "csrc_cython"],
        extra_compile_args=_COMPILE_ARGS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        optional=True,
    ),
]

_CYTHONIZED = cythonize(
    _EXTENSIONS,
    compiler_directives={
        "language_level": "3",
        "boundscheck": False,
        "wraparound": False,
        "cdivision": True,
        "initializedcheck": False,
    },
)
for _ext in _CYTHONIZED:  # cythonize rebuilds the Extension objects: keep them optional
    _ext.optional = True

setup(ext_modules=_CYTHONIZED)
