/* nnc_f32_gemm_ukernel_4x16__generic: portable 4x16 float micro-kernel (BLIS reference sizes).
 *
 * Layout as every GEMM micro-kernel (gemm_internal.h): A unpacked through rs_a/cs_a, B one
 * 16-wide panel with row stride rs_b, C row-major.
 * Blocking: the 16 columns are done as two 4x8 halves, each a k loop over 8 vector accumulators
 * (GCC/Clang vector extensions: SSE2 on baseline x86-64, NEON on aarch64). A full 4x16 tile would
 * need all 16 SSE registers for accumulators and spill; re-reading the 4 A rows (L1) is cheaper.
 * Other compilers get the same loops in plain scalar C. No FMA contraction is assumed (-std=c11
 * turns it off), so results differ from the AVX2/AVX-512 kernels by rounding only. */
#include "../../gemm/gemm_internal.h"

static inline float ep_act1(float v, int act, float slope) {
    switch (act) {
    case NNC_ACT_RELU: return v < 0.f ? 0.f : v; /* NaN stays NaN */
    case NNC_ACT_LEAKY_RELU: return v > 0.f ? v : v * slope;
    case NNC_ACT_RELU6: return v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
    default: return v;
    }
}

/* Stores columns [j0, j0 + w) of one row from the 8 accumulated values in acc. */
static inline void store_row(float *ci, const float *acc, size_t w, const nnc_f32_gemm_params *p,
                             size_t j0) {
    for (size_t j = 0; j < w; j++) {
        float v = p->alpha * acc[j];
        if (p->beta != 0.f) v += p->beta * ci[j0 + j];
        if (p->bias) v += p->bias[j0 + j];
        ci[j0 + j] = ep_act1(v, p->act, p->slope);
    }
}

#if defined(__GNUC__)
typedef float v4f __attribute__((vector_size(16)));
typedef float v4f_u __attribute__((vector_size(16), aligned(4), may_alias));
#endif

void nnc_f32_gemm_ukernel_4x16__generic(size_t mr, size_t nr, size_t kc, const float *a /* in */,
                                        ptrdiff_t rs_a, ptrdiff_t cs_a, const float *b /* in */,
                                        ptrdiff_t rs_b, float *c /* out */, ptrdiff_t ldc,
                                        const nnc_f32_gemm_params *p) {
    const float *a0 = a;
    const float *a1 = mr > 1 ? a0 + rs_a : a0;
    const float *a2 = mr > 2 ? a1 + rs_a : a1;
    const float *a3 = mr > 3 ? a2 + rs_a : a2;
    for (size_t j0 = 0; j0 < nr; j0 += 8) {
        const size_t w = nr - j0 < 8 ? nr - j0 : 8;
        const float *bj = b + j0;
        float r0[8], r1[8], r2[8], r3[8];
#if defined(__GNUC__)
        v4f c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
        ptrdiff_t ka = 0;
        for (size_t k = 0; k < kc; k++, ka += cs_a, bj += rs_b) {
            const v4f b0 = *(const v4f_u *)bj, b1 = *(const v4f_u *)(bj + 4);
            const float x0 = a0[ka], x1 = a1[ka], x2 = a2[ka], x3 = a3[ka];
            c00 += x0 * b0;
            c01 += x0 * b1;
            c10 += x1 * b0;
            c11 += x1 * b1;
            c20 += x2 * b0;
            c21 += x2 * b1;
            c30 += x3 * b0;
            c31 += x3 * b1;
        }
        *(v4f_u *)r0 = c00;
        *(v4f_u *)(r0 + 4) = c01;
        *(v4f_u *)r1 = c10;
        *(v4f_u *)(r1 + 4) = c11;
        *(v4f_u *)r2 = c20;
        *(v4f_u *)(r2 + 4) = c21;
        *(v4f_u *)r3 = c30;
        *(v4f_u *)(r3 + 4) = c31;
#else
        for (int j = 0; j < 8; j++) r0[j] = r1[j] = r2[j] = r3[j] = 0.f;
        ptrdiff_t ka = 0;
        for (size_t k = 0; k < kc; k++, ka += cs_a, bj += rs_b) {
            const float x0 = a0[ka], x1 = a1[ka], x2 = a2[ka], x3 = a3[ka];
            for (int j = 0; j < 8; j++) {
                r0[j] += x0 * bj[j];
                r1[j] += x1 * bj[j];
                r2[j] += x2 * bj[j];
                r3[j] += x3 * bj[j];
            }
        }
#endif
        store_row(c, r0, w, p, j0);
        if (mr > 1) store_row(c + ldc, r1, w, p, j0);
        if (mr > 2) store_row(c + 2 * ldc, r2, w, p, j0);
        if (mr > 3) store_row(c + 3 * ldc, r3, w, p, j0);
    }
}
