/* Template body of the AVX-512 MRx32 float micro-kernels (included by gemm_*x32.c with
 * NNC_UK_NAME and NNC_UK_ROWS(X) = X(0) X(1) ... X(MR-1) defined).
 *
 * Layout: A unpacked, element (i,k) at a[i*rs_a + k*cs_a] (broadcast, any strides); B one
 * 32-wide panel, row k at b + k*rs_b (unaligned loads: rs_b may be ldb of B used in place);
 * C row-major with ldc. Edge rows (mr < MR) point at the last valid row so the k loop has no
 * branches; edge columns (nr < 32) use AVX-512 masks on the C and bias loads and the stores.
 * Accumulators are separately named zmm variables (2 per row): an array would live in memory. */
#include "../../gemm/gemm_internal.h"

#if NNC_X86
#include <immintrin.h>

#ifndef NNC_AVX512_EP_ACT
#define NNC_AVX512_EP_ACT
NNC_TARGET_AVX512 static inline __m512 ep_act512(__m512 v, int act, __m512 slope) {
    const __m512 zero = _mm512_setzero_ps();
    switch (act) {
    /* max/min return their second operand when one is NaN: v second, so NaN propagates */
    case NNC_ACT_RELU: return _mm512_max_ps(zero, v);
    case NNC_ACT_LEAKY_RELU:
        return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LE_OQ), v, slope);
    case NNC_ACT_RELU6: return _mm512_min_ps(_mm512_set1_ps(6.f), _mm512_max_ps(zero, v));
    default: return v;
    }
}
#endif

#define NNC_UK_DECL(i)                                                                    \
    const float *a##i = a + (ptrdiff_t)((size_t)(i) < mr ? (i) : mr - 1) * rs_a;          \
    __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
#define NNC_UK_STEP(i)                                                                    \
    {                                                                                     \
        const __m512 va = _mm512_set1_ps(*a##i);                                          \
        a##i += cs_a;                                                                     \
        c##i##0 = _mm512_fmadd_ps(va, b0, c##i##0);                                       \
        c##i##1 = _mm512_fmadd_ps(va, b1, c##i##1);                                       \
    }
#define NNC_UK_STORE(i)                                                                   \
    if ((size_t)(i) < mr) {                                                               \
        float *ci = c + (ptrdiff_t)(i) * ldc;                                             \
        __m512 v0 = _mm512_mul_ps(c##i##0, valpha), v1 = _mm512_mul_ps(c##i##1, valpha);  \
        if (beta) {                                                                       \
            v0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, ci), vbeta, v0);               \
            v1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, ci + 16), vbeta, v1);          \
        }                                                                                 \
        v0 = ep_act512(_mm512_add_ps(v0, bias0), act, vslope);                            \
        v1 = ep_act512(_mm512_add_ps(v1, bias1), act, vslope);                            \
        _mm512_mask_storeu_ps(ci, m0, v0);                                                \
        _mm512_mask_storeu_ps(ci + 16, m1, v1);                                           \
    }

NNC_TARGET_AVX512 void NNC_UK_NAME(size_t mr, size_t nr, size_t kc, const float *a /* in */,
                                   ptrdiff_t rs_a, ptrdiff_t cs_a, const float *b /* in */,
                                   ptrdiff_t rs_b, float *c /* out */, ptrdiff_t ldc,
                                   const nnc_f32_gemm_params *p) {
    NNC_UK_ROWS(NNC_UK_DECL)
    for (size_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        b += rs_b;
        NNC_UK_ROWS(NNC_UK_STEP)
    }
    const __m512 valpha = _mm512_set1_ps(p->alpha), vbeta = _mm512_set1_ps(p->beta);
    const __m512 vslope = _mm512_set1_ps(p->slope);
    const int beta = p->beta != 0.f, act = p->act;
    const __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1u);
    const __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF
                                  : (nr <= 16 ? (__mmask16)0 : (__mmask16)((1u << (nr - 16)) - 1u));
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
    if (p->bias) {
        bias0 = _mm512_maskz_loadu_ps(m0, p->bias);
        bias1 = _mm512_maskz_loadu_ps(m1, p->bias + 16);
    }
    NNC_UK_ROWS(NNC_UK_STORE)
}

#undef NNC_UK_DECL
#undef NNC_UK_STEP
#undef NNC_UK_STORE
#endif
