/* AVX2+FMA elementwise kernels: activations forward/backward, softmax rows, vector exp/sigmoid/
 * tanh arrays. 8 lanes, unaligned loads, tails through a stack buffer (see elem/vmath_impl.h,
 * which holds the width-independent loops; the math is in vmath_avx2.h). One pass per array:
 * these are memory- or exp-bound, so no blocking beyond the vector. */
#include "../../elem/vmath.h"

#if NNC_X86
#include "vmath_avx2.h"

#define VF __m256
#define VL 8
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
#define VSET1 _mm256_set1_ps
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VMUL _mm256_mul_ps
#define VDIV _mm256_div_ps
#define VSQRT _mm256_sqrt_ps
#define VFMA _mm256_fmadd_ps
#define VMAX _mm256_max_ps
#define VMIN _mm256_min_ps
#define VZERO _mm256_setzero_ps()
#define VABS(v) NNC_ABS8(v)
#define VSEL(op, a, b, t, f) _mm256_blendv_ps((f), (t), _mm256_cmp_ps((a), (b), op))
#define VEXP nnc_exp_avx2
#define VEXPM1 nnc_expm1_avx2
#define VSIGMOID nnc_sigmoid_avx2
#define VTANH nnc_tanh_avx2
#define VLOG1P01 nnc_log1p01_avx2
#define VNCDF_HALF nnc_ncdf_half_avx2
#define VNPDF nnc_npdf_avx2
#define VDZERO _mm256_setzero_pd()
#define VDACC(a0, a1, v)                                                                          \
    do {                                                                                          \
        VF v_ = (v);                                                                              \
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v_)));                     \
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v_, 1)));                    \
    } while (0)
#define TARGET NNC_TARGET_AVX2
static inline NNC_TARGET_AVX2 __m256i tailmask__avx2(int r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#define VLOAD_TAIL(p, r) _mm256_maskload_ps((p), tailmask__avx2(r))
#define VSTORE_TAIL(p, v, r) _mm256_maskstore_ps((p), tailmask__avx2(r), (v))
#define VMASKZ(v, r) _mm256_and_ps((v), _mm256_castsi256_ps(tailmask__avx2(r)))
#define VBLEND_TAIL(f, t, r) _mm256_blendv_ps((f), (t), _mm256_castsi256_ps(tailmask__avx2(r)))
#define FN(name) name##__avx2

static inline TARGET double vdsum__avx2(__m256d a0, __m256d a1) {
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(a0, a1));
    return (t[0] + t[1]) + (t[2] + t[3]);
}
#define VDSUM vdsum__avx2

static inline TARGET float vhmax__avx2(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
#define VHMAX vhmax__avx2

#include "../../elem/vmath_impl.h"

void nnc_elem_fill__avx2(nnc_elem_kernels *k) { fill__avx2(k); }
#else
void nnc_elem_fill__avx2(nnc_elem_kernels *k) { (void)k; }
#endif
