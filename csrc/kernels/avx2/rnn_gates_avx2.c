/* Recurrent gate kernels for avx2: the shared template rnn/rnn_gates_tmpl.h compiled with this
 * ISA's target attribute, so its unit loops (including the polynomial exp) vectorise for it,
 * plus hand-vectorised one-pass forward kernels for the Keras default activations (tanh,
 * sigmoid) of LSTM and GRU (reset_after): each 8-unit slice of a row loads its gate
 * pre-activations once, applies every nonlinearity in registers (vmath_avx2.h) and stores the
 * workspace once. Tails use maskload / maskstore. */
#include "common/internal.h"
#if NNC_X86
#include "kernels/avx2/vmath_avx2.h"

static inline NNC_TARGET_AVX2 __m256i tail_mask_avx2(int64_t n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 8 ? n : 8)), idx);
}
#define LD(p, m) _mm256_maskload_ps((p), (m))
#define ST(p, m, v) _mm256_maskstore_ps((p), (m), (v))

static NNC_TARGET_AVX2 void lstm_fwd_ts__avx2(int64_t rows, int64_t H, float *restrict g,
                                              const float *restrict cp, float *restrict c,
                                              float *restrict tc, float *restrict h) {
    for (int64_t r = 0; r < rows; r++) {
        float *gi = g + r * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        const float *cpr = cp + r * H;
        float *cr = c + r * H, *tcr = tc + r * H, *hr = h + r * H;
        for (int64_t j = 0; j < H; j += 8) {
            __m256i m = tail_mask_avx2(H - j);
            __m256 i = nnc_sigmoid_avx2(LD(gi + j, m));
            __m256 f = nnc_sigmoid_avx2(LD(gf + j, m));
            __m256 u = nnc_tanh_avx2(LD(gg + j, m));
            __m256 o = nnc_sigmoid_avx2(LD(go + j, m));
            __m256 cv = _mm256_fmadd_ps(f, LD(cpr + j, m), _mm256_mul_ps(i, u));
            __m256 t = nnc_tanh_avx2(cv);
            ST(gi + j, m, i);
            ST(gf + j, m, f);
            ST(gg + j, m, u);
            ST(go + j, m, o);
            ST(cr + j, m, cv);
            ST(tcr + j, m, t);
            ST(hr + j, m, _mm256_mul_ps(o, t));
        }
    }
}

static NNC_TARGET_AVX2 void gru_fwd_ts__avx2(int64_t rows, int64_t H, float *restrict g,
                                             const float *restrict gh, const float *restrict hp,
                                             float *restrict ghh, float *restrict h) {
    for (int64_t r = 0; r < rows; r++) {
        float *gz = g + r * 3 * H, *gr = gz + H, *gc = gz + 2 * H;
        const float *hz = gh + r * 3 * H, *hrr = hz + H, *hc = hz + 2 * H;
        const float *hpr = hp + r * H;
        float *ghr = ghh + r * H, *hr = h + r * H;
        for (int64_t j = 0; j < H; j += 8) {
            __m256i m = tail_mask_avx2(H - j);
            __m256 z = nnc_sigmoid_avx2(_mm256_add_ps(LD(gz + j, m), LD(hz + j, m)));
            __m256 rr = nnc_sigmoid_avx2(_mm256_add_ps(LD(gr + j, m), LD(hrr + j, m)));
            __m256 hcv = LD(hc + j, m);
            __m256 u = nnc_tanh_avx2(_mm256_fmadd_ps(rr, hcv, LD(gc + j, m)));
            __m256 hv = _mm256_fmadd_ps(z, _mm256_sub_ps(LD(hpr + j, m), u), u); /* z hp + (1-z) u */
            ST(gz + j, m, z);
            ST(gr + j, m, rr);
            ST(gc + j, m, u);
            ST(ghr + j, m, hcv);
            ST(hr + j, m, hv);
        }
    }
}
#undef LD
#undef ST

#define NNC_RNN_LSTM_FWD_TS lstm_fwd_ts__avx2
#define NNC_RNN_GRU_FWD_TS gru_fwd_ts__avx2
#define NNC_RNN_ATTR NNC_TARGET_AVX2
#define NNC_RNN_FN(name) name##__avx2
#include "rnn/rnn_gates_tmpl.h"
#else
#include "rnn/rnn_internal.h"
const nnc_rnn_kernels nnc_rnn_kernels__avx2 = {0};
#endif
