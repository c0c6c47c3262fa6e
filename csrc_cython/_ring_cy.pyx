# cython: language_level=3
"""Compiled twin of ``crypten_lite.ring._ring_np``: same functions, same results bit for bit.

Only kernels where a fused loop measurably beats numpy live here: limb splitting and
recombination around the float64 GEMMs (8x and 3x faster at 1024x1024), bit decomposition,
and, on CPUs with AVX-512, an exact uint64 GEMM (``ring_gemm.h``) that replaces the limb GEMMs.
The arithmetic shift and bit packing stay numpy in both backends (one pass already, as fast).
"""

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, uint64_t, uint8_t

cnp.import_array()

cdef int[3] _OFFSETS = [0, 22, 43]


def split_limbs(a):
    """Balanced 22/21/21-bit limbs of ``a`` as float64 ``(3, *a.shape)``."""
    cdef cnp.ndarray[uint64_t, ndim=1, mode="c"] flat = np.ascontiguousarray(a, dtype=np.uint64).reshape(-1)
    cdef Py_ssize_t n = flat.shape[0]
    out = np.empty((3, n), dtype=np.float64)
    cdef double[:, ::1] o = out
    cdef const uint64_t* src = <const uint64_t*> cnp.PyArray_DATA(flat)
    cdef Py_ssize_t i
    cdef uint64_t rest
    cdef int64_t digit
    with nogil:
        for i in range(n):
            rest = src[i]
            digit = <int64_t>((rest + (<uint64_t>1 << 21)) & ((<uint64_t>1 << 22) - 1)) - (<int64_t>1 << 21)
            o[0, i] = <double>digit
            rest = (rest - <uint64_t>digit) >> 22
            digit = <int64_t>((rest + (<uint64_t>1 << 20)) & ((<uint64_t>1 << 21) - 1)) - (<int64_t>1 << 20)
            o[1, i] = <double>digit
            rest = (rest - <uint64_t>digit) >> 21
            digit = <int64_t>((rest + (<uint64_t>1 << 20)) & ((<uint64_t>1 << 21) - 1)) - (<int64_t>1 << 20)
            o[2, i] = <double>digit
    return out.reshape((3,) + tuple(np.shape(a)))


def combine_limbs(p00, p11, p_sum, p02, p20):
    """``P00 + (Ps - P00 - P11) 2^22 + (P02 + P20) 2^43 + P11 2^44 mod 2^64`` from the five
    exact limb GEMMs, in one pass."""
    shape = np.shape(p00)
    for p in (p11, p_sum, p02, p20):
        if np.shape(p) != shape:
            raise ValueError("combine_limbs: products differ in shape")
    cdef cnp.ndarray[double, ndim=1, mode="c"] q00 = np.ascontiguousarray(p00, dtype=np.float64).reshape(-1)
    cdef cnp.ndarray[double, ndim=1, mode="c"] q11 = np.ascontiguousarray(p11, dtype=np.float64).reshape(-1)
    cdef cnp.ndarray[double, ndim=1, mode="c"] qs = np.ascontiguousarray(p_sum, dtype=np.float64).reshape(-1)
    cdef cnp.ndarray[double, ndim=1, mode="c"] q02 = np.ascontiguousarray(p02, dtype=np.float64).reshape(-1)
    cdef cnp.ndarray[double, ndim=1, mode="c"] q20 = np.ascontiguousarray(p20, dtype=np.float64).reshape(-1)
    out = np.empty(shape, dtype=np.uint64)
    cdef uint64_t* acc = <uint64_t*> cnp.PyArray_DATA(out)
    cdef const double* d00 = <const double*> cnp.PyArray_DATA(q00)
    cdef const double* d11 = <const double*> cnp.PyArray_DATA(q11)
    cdef const double* ds = <const double*> cnp.PyArray_DATA(qs)
    cdef const double* d02 = <const double*> cnp.PyArray_DATA(q02)
    cdef const double* d20 = <const double*> cnp.PyArray_DATA(q20)
    cdef Py_ssize_t i, n = out.size
    cdef uint64_t t0, t11, t1, t2
    with nogil:
        for i in range(n):
            t0 = <uint64_t><int64_t>d00[i]
            t11 = <uint64_t><int64_t>d11[i]
            t1 = <uint64_t><int64_t>ds[i] - t0 - t11
            t2 = <uint64_t><int64_t>d02[i] + <uint64_t><int64_t>d20[i]
            acc[i] = t0 + (t1 << _OFFSETS[1]) + (t2 << _OFFSETS[2]) + (t11 << (2 * _OFFSETS[1]))
    return out


cdef extern from "ring_gemm.h":
    int rg_gemm_available() noexcept nogil
    int rg_gemm(int64_t m, int64_t n, int64_t k, const uint64_t* a, const uint64_t* b,
                uint64_t* c, int threads) noexcept nogil


def native_gemm_available():
    """Whether the AVX-512 uint64 GEMM can run here (this build and this CPU)."""
    return bool(rg_gemm_available())


def native_gemm(a, b, int threads=1):
    """``a @ b mod 2^64`` for 2-D uint64 ``a`` (m, k) and ``b`` (k, n), exact, without the GIL,
    on up to ``threads`` threads (large products only; see ``ring_gemm.h``)."""
    if threads < 1:
        raise ValueError(f"native_gemm: threads must be positive, got {threads}")
    cdef cnp.ndarray[uint64_t, ndim=2, mode="c"] left = np.ascontiguousarray(a, dtype=np.uint64)
    cdef cnp.ndarray[uint64_t, ndim=2, mode="c"] right = np.ascontiguousarray(b, dtype=np.uint64)
    if left.shape[1] != right.shape[0]:
        raise ValueError(f"native_gemm: inner dimensions differ ({left.shape[1]} vs {right.shape[0]})")
    cdef int64_t m = left.shape[0], k = left.shape[1], n = right.shape[1]
    out = np.empty((m, n), dtype=np.uint64)
    cdef uint64_t* c = <uint64_t*> cnp.PyArray_DATA(out)
    cdef const uint64_t* pa = <const uint64_t*> cnp.PyArray_DATA(left)
    cdef const uint64_t* pb = <const uint64_t*> cnp.PyArray_DATA(right)
    cdef int status
    with nogil:
        status = rg_gemm(m, n, k, pa, pb, c, threads)
    if status == -1:
        raise MemoryError("native_gemm: cannot allocate its packing buffers")
    if status != 0:
        raise RuntimeError("native_gemm: the AVX-512 kernel is not available on this CPU")
    return out


def bits_unpack(a):
    """``out[..., k]`` = bit k of ``a`` (LSB first), uint8 0/1."""
    cdef cnp.ndarray[uint64_t, ndim=1, mode="c"] flat = np.ascontiguousarray(a, dtype=np.uint64).reshape(-1)
    cdef Py_ssize_t n = flat.shape[0]
    out = np.empty((n, 64), dtype=np.uint8)
    cdef uint8_t* dst = <uint8_t*> cnp.PyArray_DATA(out)
    cdef const uint64_t* src = <const uint64_t*> cnp.PyArray_DATA(flat)
    cdef Py_ssize_t i
    cdef int k
    cdef uint64_t v
    with nogil:
        for i in range(n):
            v = src[i]
            for k in range(64):
                dst[i * 64 + k] = <uint8_t>((v >> k) & 1)
    return out.reshape(tuple(np.shape(a)) + (64,))


cdef extern from "bit_stream.h":
    void bs_gather(const uint64_t* words, Py_ssize_t n, const int64_t* pos, Py_ssize_t k,
                   uint8_t* dst) noexcept nogil
    void bs_scatter(const uint8_t* src, Py_ssize_t nbytes, Py_ssize_t n, const int64_t* pos,
                    Py_ssize_t k, uint64_t* out) noexcept nogil


def gather_bits(words, positions):
    """Bits ``positions`` of every word as a little-endian bit stream (see ``_ring_np``)."""
    cdef cnp.ndarray[uint64_t, ndim=1, mode="c"] flat = np.ascontiguousarray(words, dtype=np.uint64).reshape(-1)
    cdef cnp.ndarray[int64_t, ndim=1, mode="c"] pos = np.ascontiguousarray(positions, dtype=np.int64)
    cdef Py_ssize_t n = flat.shape[0], k = pos.shape[0]
    out = np.empty((n * k + 7) // 8, dtype=np.uint8)
    cdef uint8_t* dst = <uint8_t*> cnp.PyArray_DATA(out)
    cdef const uint64_t* src = <const uint64_t*> cnp.PyArray_DATA(flat)
    cdef const int64_t* p = <const int64_t*> cnp.PyArray_DATA(pos)
    with nogil:
        bs_gather(src, n, p, k, dst)
    return out


def scatter_bits(stream, Py_ssize_t count, positions):
    """Inverse of :func:`gather_bits`."""
    cdef cnp.ndarray[uint8_t, ndim=1, mode="c"] packed = np.ascontiguousarray(stream, dtype=np.uint8)
    cdef cnp.ndarray[int64_t, ndim=1, mode="c"] pos = np.ascontiguousarray(positions, dtype=np.int64)
    cdef Py_ssize_t k = pos.shape[0]
    if packed.shape[0] * 8 < count * k:
        raise ValueError("bit stream too short")
    out = np.empty(count, dtype=np.uint64)
    cdef uint64_t* dst = <uint64_t*> cnp.PyArray_DATA(out)
    cdef const uint8_t* src = <const uint8_t*> cnp.PyArray_DATA(packed)
    cdef const int64_t* p = <const int64_t*> cnp.PyArray_DATA(pos)
    cdef Py_ssize_t nbytes = packed.shape[0]
    with nogil:
        bs_scatter(src, nbytes, count, p, k, dst)
    return out

cdef extern from "word_program.h":
    enum: WP_BLOCK
    void wp_run(const int64_t* code, Py_ssize_t n_code, Py_ssize_t n_slots, uint64_t* regs,
                const uint64_t** slot_ptr, const uint64_t* const* inputs, const int64_t* sizes,
                Py_ssize_t n_in, const int64_t* outs, Py_ssize_t n_out, uint64_t* dst,
                Py_ssize_t n) noexcept nogil


def run_program(code, Py_ssize_t n_slots, list inputs, outputs, Py_ssize_t n):
    """Word program over element blocks (``word_program.h``), without the GIL: every live
    slot's block stays in cache; inputs are read in place. Same words as
    ``_ring_np.run_program``."""
    cdef cnp.ndarray[int64_t, ndim=2, mode="c"] prog = np.ascontiguousarray(code, dtype=np.int64)
    cdef cnp.ndarray[int64_t, ndim=1, mode="c"] outs = np.ascontiguousarray(outputs, dtype=np.int64)
    cdef Py_ssize_t n_in = len(inputs), n_out = outs.shape[0], k
    rows = [np.ascontiguousarray(r, dtype=np.uint64).reshape(-1) for r in inputs]
    ptr_buf = np.zeros(max(n_in, 1), dtype=np.uintp)
    size_buf = np.zeros(max(n_in, 1), dtype=np.int64)
    for k in range(n_in):
        ptr_buf[k] = <size_t> cnp.PyArray_DATA(rows[k])
        size_buf[k] = rows[k].shape[0]
    cdef Py_ssize_t slots = max(n_slots, 1)
    out = np.empty((n_out, n), dtype=np.uint64)
    scratch = np.empty((slots, WP_BLOCK), dtype=np.uint64)
    slot_buf = np.zeros(slots, dtype=np.uintp)
    cdef const int64_t* code_p = <const int64_t*> cnp.PyArray_DATA(prog)
    cdef Py_ssize_t n_code = prog.shape[0]
    cdef uint64_t* regs = <uint64_t*> cnp.PyArray_DATA(scratch)
    cdef const uint64_t** slot_p = <const uint64_t**> cnp.PyArray_DATA(slot_buf)
    cdef const uint64_t* const* in_p = <const uint64_t* const*> cnp.PyArray_DATA(ptr_buf)
    cdef const int64_t* size_p = <const int64_t*> cnp.PyArray_DATA(size_buf)
    cdef const int64_t* out_slots = <const int64_t*> cnp.PyArray_DATA(outs)
    cdef uint64_t* dst = <uint64_t*> cnp.PyArray_DATA(out)
    with nogil:
        wp_run(code_p, n_code, slots, regs, slot_p, in_p, size_p, n_in, out_slots, n_out, dst, n)
    return out
