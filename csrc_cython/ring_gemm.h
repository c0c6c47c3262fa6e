/* Exact uint64 matrix product mod 2^64 with AVX-512 (vpmullq), for CPUs that have it.
 *
 * C = A @ B (mod 2^64) for row-major contiguous A (M x K), B (K x N), C (M x N). Classic
 * blocked GEMM (Goto and van de Geijn, "Anatomy of high-performance matrix multiplication",
 * ACM TOMS 2008): B is packed in KC x NC blocks of NR-wide column panels, A in MR x KC
 * row panels, and an MR x NR register tile accumulates with 64-bit vector multiply-adds
 * that wrap mod 2^64 exactly like the ring. Every entry is the exact ring product, so the
 * result equals the float64-limb path bit for bit. Up to ``threads`` POSIX threads, each on
 * its own block of C; the caller drops the GIL.
 *
 * rg_gemm_available(): 1 when this build has the kernel and the CPU (and OS) support
 * AVX-512F/DQ. rg_gemm(): 0 on success, -1 if a packing buffer cannot be allocated, -2 if
 * the kernel is unavailable; C is left undefined on failure. Off x86-64 GCC/Clang (or with
 * -DRG_PORTABLE_ONLY) neither intrinsics nor pthreads are used and both report "unavailable":
 * the limb GEMMs serve.
 */
#ifndef CRYPTEN_LITE_RING_GEMM_H
#define CRYPTEN_LITE_RING_GEMM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if !defined(RG_PORTABLE_ONLY) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RG_HAVE_KERNEL 1
#include <immintrin.h>
#include <pthread.h>
#else
#define RG_HAVE_KERNEL 0
#endif

#define RG_MR 8
#define RG_NR 16
#define RG_KC 256
#define RG_NC 512
#define RG_MAX_THREADS 64

static int rg_gemm_available(void) {
#if RG_HAVE_KERNEL
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#else
    return 0;
#endif
}

#if RG_HAVE_KERNEL
/* One MR x NR tile: c[r, 0:w] (+)= sum_k a[r, k] * bp[k, 0:NR] for r < mr. */
__attribute__((target("avx512f,avx512dq")))
static void rg_tile(int64_t kc, const uint64_t *a, const uint64_t *bp, uint64_t *c,
                    int64_t ldc, int64_t mr, int64_t w, int accumulate) {
    __m512i acc[RG_MR][2];
    for (int r = 0; r < RG_MR; r++) {
        acc[r][0] = _mm512_setzero_si512();
        acc[r][1] = _mm512_setzero_si512();
    }
    for (int64_t k = 0; k < kc; k++) {
        const __m512i b0 = _mm512_loadu_si512((const void *)(bp + k * RG_NR));
        const __m512i b1 = _mm512_loadu_si512((const void *)(bp + k * RG_NR + 8));
        for (int r = 0; r < RG_MR; r++) {
            const __m512i av = _mm512_set1_epi64((long long)a[r * RG_KC + k]);
            acc[r][0] = _mm512_add_epi64(acc[r][0], _mm512_mullo_epi64(av, b0));
            acc[r][1] = _mm512_add_epi64(acc[r][1], _mm512_mullo_epi64(av, b1));
        }
    }
    const __mmask8 m0 = (__mmask8)(w >= 8 ? 0xFF : (1u << w) - 1u);
    const __mmask8 m1 = (__mmask8)(w >= 16 ? 0xFF : w <= 8 ? 0u : (1u << (w - 8)) - 1u);
    for (int64_t r = 0; r < mr; r++) {
        uint64_t *cr = c + r * ldc;
        __m512i v0 = acc[r][0], v1 = acc[r][1];
        if (accumulate) {
            v0 = _mm512_add_epi64(v0, _mm512_maskz_loadu_epi64(m0, cr));
            v1 = _mm512_add_epi64(v1, _mm512_maskz_loadu_epi64(m1, cr + 8));
        }
        _mm512_mask_storeu_epi64(cr, m0, v0);
        _mm512_mask_storeu_epi64(cr + 8, m1, v1);
    }
}
#endif

/* C[m x n] = A[m x k] @ B[k x n] on this thread; rows of A, B, C are lda, ldb, ldc apart. */
static int rg_gemm_serial(int64_t m, int64_t n, int64_t k, const uint64_t *a, int64_t lda,
                          const uint64_t *b, int64_t ldb, uint64_t *c, int64_t ldc) {
#if RG_HAVE_KERNEL
    if (m == 0 || n == 0) return 0;
    if (k == 0) {
        for (int64_t i = 0; i < m; i++) memset(c + (size_t)i * (size_t)ldc, 0, (size_t)n * 8);
        return 0;
    }
    /* packing buffers sized to the problem (a small product does not touch a MiB) */
    const int64_t kc_max = k < RG_KC ? k : RG_KC;
    const int64_t nc_max = n < RG_NC ? (n + RG_NR - 1) / RG_NR * RG_NR : RG_NC;
    uint64_t *bp = (uint64_t *)malloc((size_t)kc_max * (size_t)nc_max * sizeof(uint64_t));
    uint64_t *ap = (uint64_t *)malloc((size_t)RG_MR * RG_KC * sizeof(uint64_t));
    if (bp == NULL || ap == NULL) {
        free(bp);
        free(ap);
        return -1;
    }
    for (int64_t j0 = 0; j0 < n; j0 += RG_NC) {
        const int64_t nc = n - j0 < RG_NC ? n - j0 : RG_NC;
        for (int64_t k0 = 0; k0 < k; k0 += RG_KC) {
            const int64_t kc = k - k0 < RG_KC ? k - k0 : RG_KC;
            /* B[k0:k0+kc, j0:j0+nc] as NR-wide panels, zero-padded on the right. */
            for (int64_t p = 0; p < nc; p += RG_NR) {
                const int64_t w = nc - p < RG_NR ? nc - p : RG_NR;
                uint64_t *panel = bp + p * kc;
                for (int64_t kk = 0; kk < kc; kk++) {
                    const uint64_t *src = b + (size_t)(k0 + kk) * (size_t)ldb + (size_t)(j0 + p);
                    memcpy(panel + kk * RG_NR, src, (size_t)w * sizeof(uint64_t));
                    if (w < RG_NR) memset(panel + kk * RG_NR + w, 0, (size_t)(RG_NR - w) * 8);
                }
            }
            for (int64_t i0 = 0; i0 < m; i0 += RG_MR) {
                const int64_t mr = m - i0 < RG_MR ? m - i0 : RG_MR;
                for (int r = 0; r < RG_MR; r++) {
                    if (r < mr)
                        memcpy(ap + r * RG_KC, a + (size_t)(i0 + r) * (size_t)lda + (size_t)k0,
                               (size_t)kc * sizeof(uint64_t));
                    else
                        memset(ap + r * RG_KC, 0, (size_t)kc * sizeof(uint64_t));
                }
                for (int64_t p = 0; p < nc; p += RG_NR) {
                    const int64_t w = nc - p < RG_NR ? nc - p : RG_NR;
                    rg_tile(kc, ap, bp + p * kc, c + (size_t)i0 * (size_t)ldc + (size_t)(j0 + p),
                            ldc, mr, w, k0 > 0);
                }
            }
        }
    }
    free(bp);
    free(ap);
    return 0;
#else
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)c; (void)ldc;
    return -2;
#endif
}

#if RG_HAVE_KERNEL
/* One thread's share: a block of rows (or of columns) of C. */
typedef struct {
    int64_t m, n, k, lda, ldb, ldc;
    const uint64_t *a, *b;
    uint64_t *c;
    int status;
} rg_job;

static void *rg_run(void *arg) {
    rg_job *job = (rg_job *)arg;
    job->status = rg_gemm_serial(job->m, job->n, job->k, job->a, job->lda, job->b, job->ldb,
                                 job->c, job->ldc);
    return NULL;
}

/* C = A @ B for contiguous row-major operands on up to ``threads`` threads: C is cut into
 * blocks of rows (or, when C is wide and short, of columns) of whole register tiles, at
 * least 64 rows or 256 columns each; each thread packs its own operands. */
static int rg_gemm(int64_t m, int64_t n, int64_t k, const uint64_t *a, const uint64_t *b,
                   uint64_t *c, int threads) {
    if (!rg_gemm_available()) return -2;
    if (threads > RG_MAX_THREADS) threads = RG_MAX_THREADS;
    const int by_rows = m >= n;
    const int64_t extent = by_rows ? m : n, unit = by_rows ? RG_MR : RG_NR;
    const int64_t least = by_rows ? 64 : 256;
    int64_t parts = extent / least;
    if (parts > threads) parts = threads;
    if (parts <= 1) return rg_gemm_serial(m, n, k, a, k, b, n, c, n);
    rg_job jobs[RG_MAX_THREADS];
    pthread_t ids[RG_MAX_THREADS];
    int started[RG_MAX_THREADS] = {0};
    const int64_t per = ((extent + parts - 1) / parts + unit - 1) / unit * unit;
    int64_t count = 0;
    for (int64_t start = 0; start < extent; start += per, count++) {
        const int64_t len = extent - start < per ? extent - start : per;
        rg_job job = {by_rows ? len : m, by_rows ? n : len, k, k, n, n,
                      by_rows ? a + (size_t)start * (size_t)k : a,
                      by_rows ? b : b + start,
                      by_rows ? c + (size_t)start * (size_t)n : c + start, 0};
        jobs[count] = job;
    }
    for (int64_t t = 1; t < count; t++)
        started[t] = pthread_create(&ids[t], NULL, rg_run, &jobs[t]) == 0;
    rg_run(&jobs[0]);
    int status = jobs[0].status;
    for (int64_t t = 1; t < count; t++) {
        if (started[t]) {
            pthread_join(ids[t], NULL);
        } else {
            rg_run(&jobs[t]);  /* no thread to be had: do its share here */
        }
        if (jobs[t].status != 0) status = jobs[t].status;
    }
    return status;
}

#else
static int rg_gemm(int64_t m, int64_t n, int64_t k, const uint64_t *a, const uint64_t *b,
                   uint64_t *c, int threads) {
    (void)m; (void)n; (void)k; (void)a; (void)b; (void)c; (void)threads;
    return -2;
}
#endif

#endif
