/* nnc_f32_gemm_ukernel_6x16__avx2: 6x16 float micro-kernel, AVX2+FMA.
 *
 * Layout: A unpacked, element (i,k) at a[i*rs_a + k*cs_a] (broadcast, so any strides work);
 * B one 16-wide panel, row k at b + k*rs_b (unaligned loads: rs_b may be ldb of B in place);
 * C row-major with ldc. Edge rows (mr < 6) point at the last valid row so the k loop has no
 * branches (XNNPACK); edge columns (nr < 16) use maskload/maskstore on C and the bias.
 * Blocking: 12 ymm accumulators (2 FMA pipes x 4-cycle latency needs >= 8), 2 B loads and
 * 6 broadcasts per k step, as BLIS's haswell 6x16 and XNNPACK's 6x16 fma3 kernels. The
 * accumulators are separately named variables: GCC keeps an array of __m256 in memory. */
#include "../../gemm/gemm_internal.h"

#if NNC_X86
#include <immintrin.h>

NNC_TARGET_AVX2 static inline __m256 ep_act(__m256 v, int act, __m256 slope) {
    const __m256 zero = _mm256_setzero_ps();
    switch (act) {
    /* max/min return their second operand when one is NaN: v second, so NaN propagates */
    case NNC_ACT_RELU: return _mm256_max_ps(zero, v);
    case NNC_ACT_LEAKY_RELU:
        return _mm256_blendv_ps(_mm256_mul_ps(v, slope), v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ));
    case NNC_ACT_RELU6: return _mm256_min_ps(_mm256_set1_ps(6.f), _mm256_max_ps(zero, v));
    default: return v;
    }
}

#define NNC_ROW_STORE(ci, x0, x1)                                                         \
    do {                                                                                  \
        __m256 v0 = _mm256_mul_ps(x0, valpha), v1 = _mm256_mul_ps(x1, valpha);            \
        if (full) {                                                                       \
            if (beta) {                                                                   \
                v0 = _mm256_fmadd_ps(_mm256_loadu_ps(ci), vbeta, v0);                     \
                v1 = _mm256_fmadd_ps(_mm256_loadu_ps(ci + 8), vbeta, v1);                 \
            }                                                                             \
            v0 = ep_act(_mm256_add_ps(v0, bias0), act, vslope);                           \
            v1 = ep_act(_mm256_add_ps(v1, bias1), act, vslope);                           \
            _mm256_storeu_ps(ci, v0);                                                     \
            _mm256_storeu_ps(ci + 8, v1);                                                 \
        } else {                                                                          \
            if (beta) {                                                                   \
                v0 = _mm256_fmadd_ps(_mm256_maskload_ps(ci, m0), vbeta, v0);              \
                v1 = _mm256_fmadd_ps(_mm256_maskload_ps(ci + 8, m1), vbeta, v1);          \
            }                                                                             \
            v0 = ep_act(_mm256_add_ps(v0, bias0), act, vslope);                           \
            v1 = ep_act(_mm256_add_ps(v1, bias1), act, vslope);                           \
            _mm256_maskstore_ps(ci, m0, v0);                                              \
            _mm256_maskstore_ps(ci + 8, m1, v1);                                          \
        }                                                                                 \
    } while (0)

NNC_TARGET_AVX2 void nnc_f32_gemm_ukernel_6x16__avx2(size_t mr, size_t nr, size_t kc,
                                                     const float *a /* in */, ptrdiff_t rs_a,
                                                     ptrdiff_t cs_a, const float *b /* in */,
                                                     ptrdiff_t rs_b, float *c /* out */,
                                                     ptrdiff_t ldc, const nnc_f32_gemm_params *p) {
    const float *a0 = a;
    const float *a1 = mr > 1 ? a0 + rs_a : a0;
    const float *a2 = mr > 2 ? a1 + rs_a : a1;
    const float *a3 = mr > 3 ? a2 + rs_a : a2;
    const float *a4 = mr > 4 ? a3 + rs_a : a3;
    const float *a5 = mr > 5 ? a4 + rs_a : a4;

    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

    for (size_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        b += rs_b;
        __m256 va;
        va = _mm256_broadcast_ss(a0); a0 += cs_a;
        c00 = _mm256_fmadd_ps(va, b0, c00); c01 = _mm256_fmadd_ps(va, b1, c01);
        va = _mm256_broadcast_ss(a1); a1 += cs_a;
        c10 = _mm256_fmadd_ps(va, b0, c10); c11 = _mm256_fmadd_ps(va, b1, c11);
        va = _mm256_broadcast_ss(a2); a2 += cs_a;
        c20 = _mm256_fmadd_ps(va, b0, c20); c21 = _mm256_fmadd_ps(va, b1, c21);
        va = _mm256_broadcast_ss(a3); a3 += cs_a;
        c30 = _mm256_fmadd_ps(va, b0, c30); c31 = _mm256_fmadd_ps(va, b1, c31);
        va = _mm256_broadcast_ss(a4); a4 += cs_a;
        c40 = _mm256_fmadd_ps(va, b0, c40); c41 = _mm256_fmadd_ps(va, b1, c41);
        va = _mm256_broadcast_ss(a5); a5 += cs_a;
        c50 = _mm256_fmadd_ps(va, b0, c50); c51 = _mm256_fmadd_ps(va, b1, c51);
    }

    const __m256 valpha = _mm256_set1_ps(p->alpha), vbeta = _mm256_set1_ps(p->beta);
    const __m256 vslope = _mm256_set1_ps(p->slope);
    const int beta = p->beta != 0.f, act = p->act, full = nr == 16;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr - 8), lane);
    __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
    if (p->bias) {
        bias0 = full ? _mm256_loadu_ps(p->bias) : _mm256_maskload_ps(p->bias, m0);
        bias1 = full ? _mm256_loadu_ps(p->bias + 8) : _mm256_maskload_ps(p->bias + 8, m1);
    }
    float *ci = c;
    NNC_ROW_STORE(ci, c00, c01);
    if (mr > 1) { ci += ldc; NNC_ROW_STORE(ci, c10, c11); }
    if (mr > 2) { ci += ldc; NNC_ROW_STORE(ci, c20, c21); }
    if (mr > 3) { ci += ldc; NNC_ROW_STORE(ci, c30, c31); }
    if (mr > 4) { ci += ldc; NNC_ROW_STORE(ci, c40, c41); }
    if (mr > 5) { ci += ldc; NNC_ROW_STORE(ci, c50, c51); }
}
#endif
