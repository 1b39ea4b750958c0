/* AVX-512 elementwise kernels: the AVX2 set at 16 lanes (see elem/vmath_impl.h for the loops and
 * vmath_avx512.h for the math). Masked tails, as in the AVX2 version, so results do not depend
 * on array position. */
#include "../../elem/vmath.h"

#if NNC_X86
#include "vmath_avx512.h"

#define VF __m512
#define VL 16
#define VLOAD _mm512_loadu_ps
#define VSTORE _mm512_storeu_ps
#define VSET1 _mm512_set1_ps
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VMUL _mm512_mul_ps
#define VDIV _mm512_div_ps
#define VSQRT _mm512_sqrt_ps
#define VFMA _mm512_fmadd_ps
#define VMAX _mm512_max_ps
#define VMIN _mm512_min_ps
#define VZERO _mm512_setzero_ps()
#define VABS(v) NNC_ABS16(v)
#define VSEL(op, a, b, t, f) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), op), (f), (t))
#define VEXP nnc_exp_avx512
#define VEXPM1 nnc_expm1_avx512
#define VSIGMOID nnc_sigmoid_avx512
#define VTANH nnc_tanh_avx512
#define VLOG1P01 nnc_log1p01_avx512
#define VNCDF_HALF nnc_ncdf_half_avx512
#define VNPDF nnc_npdf_avx512
#define VDZERO _mm512_setzero_pd()
#define VDACC(a0, a1, v)                                                                          \
    do {                                                                                          \
        VF v_ = (v);                                                                              \
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(v_)));                      \
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v_, 1)));                   \
    } while (0)
#define TARGET NNC_TARGET_AVX512
#define TAILMASK(r) ((__mmask16)((1u << (r)) - 1u))
#define VLOAD_TAIL(p, r) _mm512_maskz_loadu_ps(TAILMASK(r), (p))
#define VSTORE_TAIL(p, v, r) _mm512_mask_storeu_ps((p), TAILMASK(r), (v))
#define VMASKZ(v, r) _mm512_maskz_mov_ps(TAILMASK(r), (v))
#define VBLEND_TAIL(f, t, r) _mm512_mask_blend_ps(TAILMASK(r), (f), (t))
#define FN(name) name##__avx512

static inline TARGET double vdsum__avx512(__m512d a0, __m512d a1) {
    double t[8];
    _mm512_storeu_pd(t, _mm512_add_pd(a0, a1));
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}
#define VDSUM vdsum__avx512

static inline TARGET float vhmax__avx512(__m512 v) { return _mm512_reduce_max_ps(v); }
#define VHMAX vhmax__avx512

#include "../../elem/vmath_impl.h"

void nnc_elem_fill__avx512(nnc_elem_kernels *k) { fill__avx512(k); }
#else
void nnc_elem_fill__avx512(nnc_elem_kernels *k) { (void)k; }
#endif
