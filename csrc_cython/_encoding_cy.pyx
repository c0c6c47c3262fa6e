# cython: language_level=3
"""Compiled twin of ``crypten_lite.encoding._encoding_np``: same functions, same results bit
for bit. Each kernel is one fused pass (range/NaN check + arithmetic + cast) over C-contiguous
data; per-channel kernels take the ``(pre, C, post)`` view described in ``_encoding_np``.

Bit-exactness needs plain IEEE double arithmetic in the order written: floating-point
contraction into fused multiply-adds is switched off for this translation unit below.
"""

import numpy as np
cimport numpy as cnp
from libc.math cimport copysign, fabs
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint64_t

cdef extern from *:
    """
    #if defined(__clang__)
    #pragma STDC FP_CONTRACT OFF
    #elif defined(__GNUC__)
    #pragma GCC optimize ("fp-contract=off")
    #endif
    """

cnp.import_array()

# 2^52: adding and subtracting it rounds |v| < 2^52 to an integer, ties to even.
cdef double _TWO52 = 4503599627370496.0


cdef inline double _rint(double v) noexcept nogil:
    """``rint(v)`` in the default rounding mode (nearest, ties to even), branch-free so loops
    vectorize on baseline SSE2 (libm's ``rint`` is a call there). Exact for every double:
    |v| >= 2^52 is already an integer (or inf/NaN) and is returned as is; the sign is copied
    back so -0.3 gives -0.0 like ``rint``."""
    cdef double t = fabs(v)
    cdef double r = copysign((t + _TWO52) - _TWO52, v)
    return r if t < _TWO52 else v


cdef inline double _clamp(double v, double lo, double hi) noexcept nogil:
    """Clamp to [lo, hi]; NaN becomes hi (callers reject NaN before using the result)."""
    v = v if v <= hi else hi
    return v if v >= lo else lo


ctypedef fused qint_t:
    int8_t
    uint8_t
    int32_t


cdef int _encode_float_loop(
    const double* src, uint64_t* dst, Py_ssize_t n, double up, double max_abs
) noexcept nogil:
    cdef Py_ssize_t i
    cdef double v
    cdef int bad = 0
    for i in range(n):
        v = src[i]
        bad |= not (fabs(v) <= max_abs)  # NaN compares false
        v = v if fabs(v) <= max_abs else 0.0  # keep the cast defined
        dst[i] = <uint64_t>(<int64_t>_rint(v * up))
    return bad


def fixed_encode_float(x, int precision, double max_abs):
    """``int64(rint(x * 2^precision))`` as uint64, or ``None`` on non-finite / out of range."""
    cdef cnp.ndarray flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    out = np.empty(np.shape(x), dtype=np.uint64)
    cdef const double* src = <const double*> cnp.PyArray_DATA(flat)
    cdef uint64_t* dst = <uint64_t*> cnp.PyArray_DATA(out)
    cdef Py_ssize_t n = flat.shape[0]
    cdef double up = <double>(<uint64_t>1 << precision)
    cdef int bad
    with nogil:
        bad = _encode_float_loop(src, dst, n, up, max_abs)
    return None if bad else out


def fixed_encode_int(x, int precision, int64_t max_int):
    """``x << precision`` as uint64 (exact), or ``None`` if ``|x| > max_int``."""
    cdef cnp.ndarray flat = np.ascontiguousarray(x, dtype=np.int64).reshape(-1)
    cdef Py_ssize_t n = flat.shape[0]
    out = np.empty(np.shape(x), dtype=np.uint64)
    cdef const int64_t* src = <const int64_t*> cnp.PyArray_DATA(flat)
    cdef uint64_t* dst = <uint64_t*> cnp.PyArray_DATA(out)
    cdef int64_t v
    cdef Py_ssize_t i
    cdef bint bad = False
    with nogil:
        for i in range(n):
            v = src[i]
            if v > max_int or v < -max_int:
                bad = True
                break
            dst[i] = (<uint64_t>v) << precision
    return None if bad else out


def fixed_decode(r, int precision):
    """Signed view of ``r`` times ``2^-precision`` as float64."""
    cdef cnp.ndarray flat = np.ascontiguousarray(r, dtype=np.uint64).reshape(-1)
    cdef Py_ssize_t n = flat.shape[0]
    out = np.empty(np.shape(r), dtype=np.float64)
    cdef const int64_t* src = <const int64_t*> cnp.PyArray_DATA(flat)
    cdef double* dst = <double*> cnp.PyArray_DATA(out)
    cdef double down = 1.0 / <double>(<uint64_t>1 << precision)
    cdef Py_ssize_t i
    with nogil:
        for i in range(n):
            dst[i] = <double>src[i] * down
    return out


# Per-channel loops over the (pre, C, post) view: when post == 1 the channel axis is the
# contiguous one and the loop runs over it (parameters gathered per element); otherwise the
# loop runs over post with the channel's parameters held in registers. Both orders compute
# the same per-element expression, so results do not depend on the layout.

cdef inline double _quant(double x, double s, double z, double lo, double hi) noexcept nogil:
    return _clamp(_rint(x / s) + z, lo, hi)


cdef int _quantize_into(
    const double[:, :, ::1] x, const double[::1] scale, const int64_t[::1] zp,
    double lo, double hi, qint_t[:, :, ::1] out,
) noexcept nogil:
    cdef Py_ssize_t a, c, b
    cdef double s, z, v
    cdef int bad = 0
    for a in range(x.shape[0]):
        if x.shape[2] == 1:
            for c in range(x.shape[1]):
                v = x[a, c, 0]
                bad |= v != v
                out[a, c, 0] = <qint_t>_quant(v, scale[c], <double>zp[c], lo, hi)
            continue
        for c in range(x.shape[1]):
            s = scale[c]
            z = <double>zp[c]
            for b in range(x.shape[2]):
                v = x[a, c, b]
                bad |= v != v
                out[a, c, b] = <qint_t>_quant(v, s, z, lo, hi)
    return bad


def quantize(x, scale, zero_point, long qmin, long qmax, dtype):
    """``clamp(rint(x / s) + z, qmin, qmax)`` as ``dtype``; ``None`` if ``x`` has a NaN."""
    cdef const double[:, :, ::1] xv = np.ascontiguousarray(x, dtype=np.float64)
    cdef const double[::1] sv = np.ascontiguousarray(scale, dtype=np.float64)
    cdef const int64_t[::1] zv = np.ascontiguousarray(zero_point, dtype=np.int64)
    out = np.empty(np.shape(x), dtype=dtype)
    cdef int8_t[:, :, ::1] o8
    cdef uint8_t[:, :, ::1] ou8
    cdef int32_t[:, :, ::1] o32
    cdef int bad
    cdef double lo = <double>qmin, hi = <double>qmax
    dt = out.dtype
    if dt == np.int8:
        o8 = out
        with nogil:
            bad = _quantize_into(xv, sv, zv, lo, hi, o8)
    elif dt == np.uint8:
        ou8 = out
        with nogil:
            bad = _quantize_into(xv, sv, zv, lo, hi, ou8)
    elif dt == np.int32:
        o32 = out
        with nogil:
            bad = _quantize_into(xv, sv, zv, lo, hi, o32)
    else:
        raise TypeError(f"unsupported quantized dtype {dt}")
    return None if bad else out


def quantize_centered(x, scale, zero_point, long qmin, long qmax):
    """Quantize then subtract the zero point, sign-extended to uint64 ring elements."""
    cdef const double[:, :, ::1] xv = np.ascontiguousarray(x, dtype=np.float64)
    cdef const double[::1] sv = np.ascontiguousarray(scale, dtype=np.float64)
    cdef const int64_t[::1] zv = np.ascontiguousarray(zero_point, dtype=np.int64)
    out = np.empty(np.shape(x), dtype=np.uint64)
    cdef uint64_t[:, :, ::1] ov = out
    cdef Py_ssize_t a, c, b
    cdef double s, z, v, lo = <double>qmin, hi = <double>qmax
    cdef int64_t zi
    cdef int bad = 0
    with nogil:
        for a in range(xv.shape[0]):
            if xv.shape[2] == 1:
                for c in range(xv.shape[1]):
                    v = xv[a, c, 0]
                    bad |= v != v
                    zi = zv[c]
                    ov[a, c, 0] = <uint64_t>(<int64_t>_quant(v, sv[c], <double>zi, lo, hi) - zi)
                continue
            for c in range(xv.shape[1]):
                s = sv[c]
                zi = zv[c]
                z = <double>zi
                for b in range(xv.shape[2]):
                    v = xv[a, c, b]
                    bad |= v != v
                    ov[a, c, b] = <uint64_t>(<int64_t>_quant(v, s, z, lo, hi) - zi)
    return None if bad else out


cdef void _dequantize_from(
    const qint_t[:, :, ::1] q, const double[::1] scale, const int64_t[::1] zp,
    double[:, :, ::1] out, bint scaled,
) noexcept nogil:
    cdef Py_ssize_t a, c, b
    cdef double s, z
    for a in range(q.shape[0]):
        if q.shape[2] == 1:
            for c in range(q.shape[1]):
                if scaled:
                    out[a, c, 0] = (<double>q[a, c, 0] - <double>zp[c]) * scale[c]
                else:
                    out[a, c, 0] = <double>q[a, c, 0] - <double>zp[c]
            continue
        for c in range(q.shape[1]):
            z = <double>zp[c]
            if scaled:
                s = scale[c]
                for b in range(q.shape[2]):
                    out[a, c, b] = (<double>q[a, c, b] - z) * s
            else:
                for b in range(q.shape[2]):
                    out[a, c, b] = <double>q[a, c, b] - z


def _dequantize_impl(q, scale, zero_point, bint scaled):
    q = np.ascontiguousarray(q)
    cdef const double[::1] sv = np.ascontiguousarray(scale, dtype=np.float64)
    cdef const int64_t[::1] zv = np.ascontiguousarray(zero_point, dtype=np.int64)
    out = np.empty(q.shape, dtype=np.float64)
    cdef double[:, :, ::1] ov = out
    cdef const int8_t[:, :, ::1] q8
    cdef const uint8_t[:, :, ::1] qu8
    cdef const int32_t[:, :, ::1] q32
    dt = q.dtype
    if dt == np.int8:
        q8 = q
        with nogil:
            _dequantize_from(q8, sv, zv, ov, scaled)
    elif dt == np.uint8:
        qu8 = q
        with nogil:
            _dequantize_from(qu8, sv, zv, ov, scaled)
    elif dt == np.int32:
        q32 = q
        with nogil:
            _dequantize_from(q32, sv, zv, ov, scaled)
    else:
        raise TypeError(f"unsupported quantized dtype {dt}")
    return out


def dequantize(q, scale, zero_point):
    """``(float64(q) - z) * s``."""
    return _dequantize_impl(q, scale, zero_point, True)


def center(q, zero_point):
    """``float64(q) - z`` (exact)."""
    return _dequantize_impl(q, np.ones(np.shape(zero_point)), zero_point, False)


cdef inline double _requant(
    double acc, double m, double bias, double out_scale, double zp, double lo, double hi
) noexcept nogil:
    cdef double v = acc * m  # separate statements: no fused multiply-add (see module doc)
    v = v + bias
    return _clamp(_rint(v / out_scale) + zp, lo, hi)


cdef void _requantize_into(
    const double[:, :, ::1] acc, const double[::1] mult, const double[::1] bias,
    double out_scale, double zp, double lo, double hi, qint_t[:, :, ::1] out,
) noexcept nogil:
    cdef Py_ssize_t a, c, b
    cdef double m, bc
    for a in range(acc.shape[0]):
        if acc.shape[2] == 1:
            for c in range(acc.shape[1]):
                out[a, c, 0] = <qint_t>_requant(
                    acc[a, c, 0], mult[c], bias[c], out_scale, zp, lo, hi
                )
            continue
        for c in range(acc.shape[1]):
            m = mult[c]
            bc = bias[c]
            for b in range(acc.shape[2]):
                out[a, c, b] = <qint_t>_requant(acc[a, c, b], m, bc, out_scale, zp, lo, hi)


def requantize(acc, multiplier, bias, double out_scale, long out_zero_point,
               long lo, long hi, dtype):
    """``clamp(rint((acc * m[c] + bias[c]) / s_y) + z_y, lo, hi)`` as ``dtype``."""
    cdef const double[:, :, ::1] av = np.ascontiguousarray(acc, dtype=np.float64)
    cdef const double[::1] mv = np.ascontiguousarray(multiplier, dtype=np.float64)
    cdef const double[::1] bv = np.ascontiguousarray(bias, dtype=np.float64)
    out = np.empty(np.shape(acc), dtype=dtype)
    cdef int8_t[:, :, ::1] o8
    cdef uint8_t[:, :, ::1] ou8
    cdef int32_t[:, :, ::1] o32
    cdef double z = <double>out_zero_point, dlo = <double>lo, dhi = <double>hi
    dt = out.dtype
    if dt == np.int8:
        o8 = out
        with nogil:
            _requantize_into(av, mv, bv, out_scale, z, dlo, dhi, o8)
    elif dt == np.uint8:
        ou8 = out
        with nogil:
            _requantize_into(av, mv, bv, out_scale, z, dlo, dhi, ou8)
    elif dt == np.int32:
        o32 = out
        with nogil:
            _requantize_into(av, mv, bv, out_scale, z, dlo, dhi, o32)
    else:
        raise TypeError(f"unsupported quantized dtype {dt}")
    return out
