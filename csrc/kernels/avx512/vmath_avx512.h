/* AVX-512 single-vector math helpers (16 floats), static inline so fused kernels in other areas
 * (RNN gates, GEMM epilogues) can call them from their own NNC_TARGET_AVX512 functions.
 *
 * exp: x = n*ln2 + r (two-constant Cody-Waite), e^r by a degree-5 polynomial on
 * |r| <= ln2/2 and 2^n through the exponent bits (XNNPACK's rr2-p5 scheme); about 2 ulp.
 * Inputs are clamped so nothing overflows: e^x is 0 below -87.34 (no denormals) and saturates
 * at e^88.37 ~ 2.4e38. NaN propagates (clamps are written min(c, x), which returns x for NaN).
 * sigmoid and tanh use a one-constant reduction (see there); tanh and expm1 use
 * e^r - 1 = r*p(r) directly so small |x| does not cancel; gelu's normal CDF uses an erfc form accurate in relative terms in the negative tail. */
#ifndef NNCORE_VMATH_AVX512_H
#define NNCORE_VMATH_AVX512_H
#include "../../common/internal.h"

#if NNC_X86
#include <immintrin.h>

#define NNC_V16(c) _mm512_set1_ps(c)

/* shared reduction: returns s = 2^n and t = r (x already clamped to [-87.34, 88.37]) */
static inline NNC_TARGET_AVX512 __m512 nnc_exp_reduce_avx512(__m512 x, __m512 *s) {
    __m512 n = _mm512_fmadd_ps(x, NNC_V16(1.44269504f), NNC_V16(12583039.0f)); /* 1.5*2^23 + 127 */
    *s = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(n), 23));
    n = _mm512_sub_ps(n, NNC_V16(12583039.0f));
    __m512 t = _mm512_fmadd_ps(n, NNC_V16(-0x1.62E43p-1f), x);
    return _mm512_fmadd_ps(n, NNC_V16(0x1.05C61p-29f), t);
}

/* e^r = 1 + r*p(r) */
static inline NNC_TARGET_AVX512 __m512 nnc_exp_poly_avx512(__m512 t) {
    __m512 p = _mm512_fmadd_ps(NNC_V16(0x1.0F9F9Cp-7f), t, NNC_V16(0x1.573A1Ap-5f));
    p = _mm512_fmadd_ps(p, t, NNC_V16(0x1.555A80p-3f));
    p = _mm512_fmadd_ps(p, t, NNC_V16(0x1.FFFDC6p-2f));
    return _mm512_fmadd_ps(p, t, NNC_V16(0x1.FFFFF6p-1f));
}

static inline NNC_TARGET_AVX512 __m512 nnc_exp_avx512(__m512 x) {
    __m512 xc = _mm512_min_ps(NNC_V16(88.37f), x);
    xc = _mm512_max_ps(NNC_V16(-87.33654f), xc);
    __m512 s, t = nnc_exp_reduce_avx512(xc, &s);
    __m512 p = nnc_exp_poly_avx512(t);
    __m512 f = _mm512_fmadd_ps(_mm512_mul_ps(t, s), p, s);
    return _mm512_maskz_mov_ps(~_mm512_cmp_ps_mask(x, NNC_V16(-87.33654f), _CMP_LT_OQ), f);
}

/* e^x - 1, accurate near 0: (s - 1) + s*r*p(r); s - 1 is exact. */
static inline NNC_TARGET_AVX512 __m512 nnc_expm1_avx512(__m512 x) {
    __m512 xc = _mm512_min_ps(NNC_V16(88.37f), x);
    xc = _mm512_max_ps(NNC_V16(-17.5f), xc); /* e^-17.5 < 2^-25: the result rounds to -1 */
    __m512 s, t = nnc_exp_reduce_avx512(xc, &s);
    __m512 p = nnc_exp_poly_avx512(t);
    return _mm512_fmadd_ps(_mm512_mul_ps(t, s), p, _mm512_sub_ps(s, NNC_V16(1.0f)));
}

#define NNC_ABS16(x) _mm512_andnot_ps(NNC_V16(-0.0f), (x))

/* 1 / (1 + e^-x), e^-x = 2^n e^r with 2^n applied by scalef: for x in [-88, 88] e^-x is a normal
 * float, so the quotient keeps e^-x's relative accuracy on both tails (no e^-|x| fold needed).
 * The sigmoid and tanh below are the RNN gates' inner loop, so they are trimmed to the fewest
 * operations: one-constant reduction r = -x - n*ln2 (ln2's rounding error times |n| <= 127 stays
 * under 2.5e-7 relative; about 3 ulp at |x| > 40, 1-2 ulp where gates live) with the negation
 * folded into it. */
static inline NNC_TARGET_AVX512 __m512 nnc_sigmoid_avx512(__m512 x) {
    __m512 v = _mm512_max_ps(NNC_V16(-88.0f), _mm512_min_ps(NNC_V16(88.0f), x)); /* NaN kept */
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, NNC_V16(-1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 t = _mm512_fnmsub_ps(n, NNC_V16(0.693147180559945f), v); /* -x - n ln2 */
    __m512 e = _mm512_scalef_ps(_mm512_fmadd_ps(t, nnc_exp_poly_avx512(t), NNC_V16(1.0f)), n);
    return _mm512_div_ps(NNC_V16(1.0f), _mm512_add_ps(NNC_V16(1.0f), e));
}

/* sign(x) (e^{2|x|} - 1) / (e^{2|x|} + 1), e^{2a} - 1 formed as in expm1 (exact s - 1) so small |x|
 * keeps its relative accuracy; |x| clamped at 44 (e^88 is finite; tanh is 1 in float from 9.1). */
static inline NNC_TARGET_AVX512 __m512 nnc_tanh_avx512(__m512 x) {
    __m512 a = _mm512_min_ps(NNC_V16(44.0f), NNC_ABS16(x)); /* NaN kept */
    __m512 n = _mm512_fmadd_ps(a, NNC_V16(2.88539008f), NNC_V16(12583039.0f)); /* 1.5*2^23 + 127 */
    __m512 s = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(n), 23)); /* 2^n */
    n = _mm512_sub_ps(n, NNC_V16(12583039.0f));
    __m512 t = _mm512_fnmadd_ps(n, NNC_V16(0.693147180559945f), _mm512_add_ps(a, a));
    __m512 e = _mm512_fmadd_ps(_mm512_mul_ps(t, s), nnc_exp_poly_avx512(t),
                               _mm512_sub_ps(s, NNC_V16(1.0f)));
    __m512 y = _mm512_div_ps(e, _mm512_add_ps(e, NNC_V16(2.0f)));
    /* y | (x & sign): x's sign back on |tanh| */
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(
        _mm512_castps_si512(y), _mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u), 0xF8));
}

/* log1p(u) for u in [0, 1]: w = 1 + u = 2^k * m, log(m) by Cephes's logf polynomial,
 * plus the rounding correction (u - (w - 1)) / w. */
static inline NNC_TARGET_AVX512 __m512 nnc_log1p01_avx512(__m512 u) {
    __m512 w = _mm512_add_ps(NNC_V16(1.0f), u);
    __m512 c = _mm512_div_ps(_mm512_sub_ps(u, _mm512_sub_ps(w, NNC_V16(1.0f))), w);
    __mmask16 big = _mm512_cmp_ps_mask(w, NNC_V16(1.41421356f), _CMP_GT_OQ);
    __m512 m = _mm512_mask_blend_ps(big, w, _mm512_mul_ps(w, NNC_V16(0.5f)));
    __m512 k = _mm512_maskz_mov_ps(big, NNC_V16(1.0f));
    __m512 f = _mm512_sub_ps(m, NNC_V16(1.0f));
    __m512 z = _mm512_mul_ps(f, f);
    __m512 p = _mm512_fmadd_ps(NNC_V16(7.0376836292E-2f), f, NNC_V16(-1.1514610310E-1f));
    p = _mm512_fmadd_ps(p, f, NNC_V16(1.1676998740E-1f));
    p = _mm512_fmadd_ps(p, f, NNC_V16(-1.2420140846E-1f));
    p = _mm512_fmadd_ps(p, f, NNC_V16(1.4249322787E-1f));
    p = _mm512_fmadd_ps(p, f, NNC_V16(-1.6668057665E-1f));
    p = _mm512_fmadd_ps(p, f, NNC_V16(2.0000714765E-1f));
    p = _mm512_fmadd_ps(p, f, NNC_V16(-2.4999993993E-1f));
    p = _mm512_fmadd_ps(p, f, NNC_V16(3.3333331174E-1f));
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, f), z);
    y = _mm512_fmadd_ps(NNC_V16(-0.5f), z, y);
    y = _mm512_add_ps(f, y);
    y = _mm512_fmadd_ps(k, NNC_V16(0.693147180559945f), y);
    return _mm512_add_ps(y, c);
}

/* Normal CDF for gelu: returns h = 0.5*erfc(|x|/sqrt2), so Phi(x) = x<0 ? h : 1-h. erfc by
 * Numerical Recipes' erfcc (relative error < 1.2e-7): t*exp(-z^2 + P(t)), t = 1/(1+z/2), with
 * z^2 = x^2/2 split exactly (hi + lo by FMA) so only the final sum -hi/2 + (P - lo/2) rounds:
 * about 5e-7 relative at |x| = 5, 2e-6 at |x| = 10 (where Phi ~ 1e-23). */
static inline NNC_TARGET_AVX512 __m512 nnc_ncdf_half_avx512(__m512 x) {
    __m512 a = _mm512_min_ps(NNC_V16(14.0f), NNC_ABS16(x));
    __m512 hi = _mm512_mul_ps(a, a);
    __m512 lo = _mm512_fmsub_ps(a, a, hi);
    __m512 z = _mm512_mul_ps(a, NNC_V16(0.707106781186548f));
    __m512 t = _mm512_div_ps(NNC_V16(1.0f), _mm512_fmadd_ps(NNC_V16(0.5f), z, NNC_V16(1.0f)));
    __m512 p = _mm512_fmadd_ps(NNC_V16(0.17087277f), t, NNC_V16(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, NNC_V16(1.48851587f));
    p = _mm512_fmadd_ps(p, t, NNC_V16(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, NNC_V16(0.27886807f));
    p = _mm512_fmadd_ps(p, t, NNC_V16(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, NNC_V16(0.09678418f));
    p = _mm512_fmadd_ps(p, t, NNC_V16(0.37409196f));
    p = _mm512_fmadd_ps(p, t, NNC_V16(1.00002368f));
    p = _mm512_fmadd_ps(p, t, NNC_V16(-1.26551223f));
    p = _mm512_fnmadd_ps(lo, NNC_V16(0.5f), p);
    __m512 e = nnc_exp_avx512(_mm512_fnmadd_ps(hi, NNC_V16(0.5f), p));
    return _mm512_mul_ps(_mm512_mul_ps(NNC_V16(0.5f), t), e);
}

/* Standard normal density e^(-x^2/2)/sqrt(2pi), x^2 split exactly (relative error ~2e-7). */
static inline NNC_TARGET_AVX512 __m512 nnc_npdf_avx512(__m512 x) {
    __m512 a = _mm512_min_ps(NNC_V16(14.0f), NNC_ABS16(x));
    __m512 hi = _mm512_mul_ps(a, a);
    __m512 lo = _mm512_fmsub_ps(a, a, hi);
    __m512 e = nnc_exp_avx512(_mm512_mul_ps(hi, NNC_V16(-0.5f)));
    return _mm512_mul_ps(_mm512_mul_ps(e, NNC_V16(0.398942280401433f)),
                        _mm512_fnmadd_ps(lo, NNC_V16(0.5f), NNC_V16(1.0f)));
}

#endif /* NNC_X86 */
#endif
