/* nnc_f32_gemm_ukernel_4x16__generic: portable 4x16 float micro-kernel (BLIS reference sizes).
 *
 * Layout as every GEMM micro-kernel (gemm_internal.h): A unpacked through rs_a/cs_a, B one
 * 16-wide panel with row stride rs_b, C row-major. Plain C with fixed-size inner loops over the
 * 16 columns, which GCC/Clang vectorise for SSE2 or NEON; no FMA contraction is assumed, so
 * results differ from the AVX2/AVX-512 kernels by rounding only. */
#include "../../gemm/gemm_internal.h"

static inline float ep_act1(float v, int act, float slope) {
    switch (act) {
    case NNC_ACT_RELU: return v > 0.f ? v : 0.f;
    case NNC_ACT_LEAKY_RELU: return v > 0.f ? v : v * slope;
    case NNC_ACT_RELU6: return v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
    default: return v;
    }
}

void nnc_f32_gemm_ukernel_4x16__generic(size_t mr, size_t nr, size_t kc, const float *a /* in */,
                                        ptrdiff_t rs_a, ptrdiff_t cs_a, const float *b /* in */,
                                        ptrdiff_t rs_b, float *c /* out */, ptrdiff_t ldc,
                                        const nnc_f32_gemm_params *p) {
    const float *a0 = a;
    const float *a1 = mr > 1 ? a0 + rs_a : a0;
    const float *a2 = mr > 2 ? a1 + rs_a : a1;
    const float *a3 = mr > 3 ? a2 + rs_a : a2;
    float c0[16] = {0}, c1[16] = {0}, c2[16] = {0}, c3[16] = {0};
    for (size_t k = 0; k < kc; k++) {
        const float x0 = *a0, x1 = *a1, x2 = *a2, x3 = *a3;
        a0 += cs_a;
        a1 += cs_a;
        a2 += cs_a;
        a3 += cs_a;
        for (int j = 0; j < 16; j++) {
            const float bj = b[j];
            c0[j] += x0 * bj;
            c1[j] += x1 * bj;
            c2[j] += x2 * bj;
            c3[j] += x3 * bj;
        }
        b += rs_b;
    }
    float *rows[4] = {c0, c1, c2, c3};
    for (size_t i = 0; i < mr; i++) {
        float *ci = c + (ptrdiff_t)i * ldc;
        const float *acc = rows[i];
        for (size_t j = 0; j < nr; j++) {
            float v = p->alpha * acc[j];
            if (p->beta != 0.f) v += p->beta * ci[j];
            if (p->bias) v += p->bias[j];
            ci[j] = ep_act1(v, p->act, p->slope);
        }
    }
}
