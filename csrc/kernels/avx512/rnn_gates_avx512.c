/* Recurrent gate kernels for avx512: the shared template rnn/rnn_gates_tmpl.h compiled with this
 * ISA's target attribute, so its unit loops (including the polynomial exp) vectorise for it,
 * plus hand-vectorised one-pass forward kernels for the Keras default activations (tanh,
 * sigmoid) of LSTM and GRU (reset_after): each 16-unit slice of a row loads its gate
 * pre-activations once, applies every nonlinearity in registers (vmath_avx512.h) and stores the
 * workspace once, instead of one pass per activation over the row. */
#include "common/internal.h"
#if NNC_X86
#include "kernels/avx512/vmath_avx512.h"

/* Each kernel is a per-vector body (16 units of one row, masked by m) called with a constant
 * full mask over a row's whole vectors, which the compiler turns into plain loads and stores
 * (masked ones cost ~10% here), and once with the tail's mask. */
#define VEC static inline __attribute__((always_inline)) NNC_TARGET_AVX512 void
#define FOR_VECS(H, body)                                                                         \
    do {                                                                                          \
        int64_t j = 0;                                                                            \
        for (; j + 16 <= (H); j += 16) body((__mmask16)0xFFFF, j);                                \
        if (j < (H)) body((__mmask16)((1u << ((H) - j)) - 1), j);                                 \
    } while (0)

VEC lstm_fwd_vec(__mmask16 m, int64_t H, float *restrict gi, const float *restrict cpr,
                 float *restrict cr, float *restrict tcr, float *restrict hr) {
    float *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
    __m512 i = nnc_sigmoid_avx512(_mm512_maskz_loadu_ps(m, gi));
    __m512 f = nnc_sigmoid_avx512(_mm512_maskz_loadu_ps(m, gf));
    __m512 u = nnc_tanh_avx512(_mm512_maskz_loadu_ps(m, gg));
    __m512 o = nnc_sigmoid_avx512(_mm512_maskz_loadu_ps(m, go));
    __m512 cv = _mm512_fmadd_ps(f, _mm512_maskz_loadu_ps(m, cpr), _mm512_mul_ps(i, u));
    __m512 t = nnc_tanh_avx512(cv);
    _mm512_mask_storeu_ps(gi, m, i);
    _mm512_mask_storeu_ps(gf, m, f);
    _mm512_mask_storeu_ps(gg, m, u);
    _mm512_mask_storeu_ps(go, m, o);
    _mm512_mask_storeu_ps(cr, m, cv);
    _mm512_mask_storeu_ps(tcr, m, t);
    _mm512_mask_storeu_ps(hr, m, _mm512_mul_ps(o, t));
}

static NNC_TARGET_AVX512 void lstm_fwd_ts__avx512(int64_t rows, int64_t H, float *restrict g,
                                                  const float *restrict cp, float *restrict c,
                                                  float *restrict tc, float *restrict h) {
    for (int64_t r = 0; r < rows; r++) {
        float *gi = g + r * 4 * H;
        const float *cpr = cp + r * H;
        float *cr = c + r * H, *tcr = tc + r * H, *hr = h + r * H;
#define BODY_(m, j) lstm_fwd_vec(m, H, gi + j, cpr + j, cr + j, tcr + j, hr + j)
        FOR_VECS(H, BODY_);
#undef BODY_
    }
}

/* Backward of the step above (tanh / sigmoid): the derivatives come from the stored activations,
 * so there is no transcendental. dyr may be NULL. */
VEC lstm_bwd_vec(__mmask16 m, int64_t H, const float *restrict gi, const float *restrict cpr,
                 const float *restrict tcr, const float *restrict dhr, const float *restrict dyr,
                 float *restrict dcr, float *restrict di) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const float *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
    float *df = di + H, *dgg = di + 2 * H, *dout = di + 3 * H;
    __m512 dhv = _mm512_maskz_loadu_ps(m, dhr);
    if (dyr) dhv = _mm512_add_ps(dhv, _mm512_maskz_loadu_ps(m, dyr));
    __m512 i = _mm512_maskz_loadu_ps(m, gi), f = _mm512_maskz_loadu_ps(m, gf);
    __m512 u = _mm512_maskz_loadu_ps(m, gg), o = _mm512_maskz_loadu_ps(m, go);
    __m512 t = _mm512_maskz_loadu_ps(m, tcr);
    __m512 ho = _mm512_mul_ps(dhv, o);
    /* dc_t = dc + dh o (1 - t^2) */
    __m512 dcv = _mm512_fmadd_ps(ho, _mm512_fnmadd_ps(t, t, one), _mm512_maskz_loadu_ps(m, dcr));
    /* sigmoid' = s (1 - s), tanh' = 1 - u^2 */
    _mm512_mask_storeu_ps(dout, m, _mm512_mul_ps(_mm512_mul_ps(dhv, t), _mm512_fnmadd_ps(o, o, o)));
    _mm512_mask_storeu_ps(di, m, _mm512_mul_ps(_mm512_mul_ps(dcv, u), _mm512_fnmadd_ps(i, i, i)));
    _mm512_mask_storeu_ps(dgg, m,
                          _mm512_mul_ps(_mm512_mul_ps(dcv, i), _mm512_fnmadd_ps(u, u, one)));
    _mm512_mask_storeu_ps(df, m, _mm512_mul_ps(_mm512_mul_ps(dcv, _mm512_maskz_loadu_ps(m, cpr)),
                                               _mm512_fnmadd_ps(f, f, f)));
    _mm512_mask_storeu_ps(dcr, m, _mm512_mul_ps(dcv, f));
}

static NNC_TARGET_AVX512 void lstm_bwd_ts__avx512(int64_t rows, int64_t H, const float *restrict g,
                                                  const float *restrict cp,
                                                  const float *restrict tc,
                                                  const float *restrict dh,
                                                  const float *restrict dy, int64_t ldy,
                                                  float *restrict dc, float *restrict dg) {
    for (int64_t r = 0; r < rows; r++) {
        const float *gi = g + r * 4 * H, *cpr = cp + r * H, *tcr = tc + r * H, *dhr = dh + r * H;
        const float *dyr = dy ? dy + r * ldy : NULL;
        float *dcr = dc + r * H, *di = dg + r * 4 * H;
#define BODY_(m, j)                                                                               \
    lstm_bwd_vec(m, H, gi + j, cpr + j, tcr + j, dhr + j, dyr ? dyr + j : NULL, dcr + j, di + j)
        FOR_VECS(H, BODY_);
#undef BODY_
    }
}

VEC gru_fwd_vec(__mmask16 m, int64_t H, float *restrict gz, const float *restrict hz,
                const float *restrict hpr, float *restrict ghr, float *restrict hr) {
    float *gr = gz + H, *gc = gz + 2 * H;
    const float *hrr = hz + H, *hc = hz + 2 * H;
    __m512 z = nnc_sigmoid_avx512(
        _mm512_add_ps(_mm512_maskz_loadu_ps(m, gz), _mm512_maskz_loadu_ps(m, hz)));
    __m512 rr = nnc_sigmoid_avx512(
        _mm512_add_ps(_mm512_maskz_loadu_ps(m, gr), _mm512_maskz_loadu_ps(m, hrr)));
    __m512 hcv = _mm512_maskz_loadu_ps(m, hc);
    __m512 u = nnc_tanh_avx512(_mm512_fmadd_ps(rr, hcv, _mm512_maskz_loadu_ps(m, gc)));
    __m512 hpv = _mm512_maskz_loadu_ps(m, hpr);
    __m512 hv = _mm512_fmadd_ps(z, _mm512_sub_ps(hpv, u), u); /* z hp + (1 - z) u */
    _mm512_mask_storeu_ps(gz, m, z);
    _mm512_mask_storeu_ps(gr, m, rr);
    _mm512_mask_storeu_ps(gc, m, u);
    _mm512_mask_storeu_ps(ghr, m, hcv);
    _mm512_mask_storeu_ps(hr, m, hv);
}

static NNC_TARGET_AVX512 void gru_fwd_ts__avx512(int64_t rows, int64_t H, float *restrict g,
                                                 const float *restrict gh,
                                                 const float *restrict hp, float *restrict ghh,
                                                 float *restrict h) {
    for (int64_t r = 0; r < rows; r++) {
        float *gz = g + r * 3 * H;
        const float *hz = gh + r * 3 * H, *hpr = hp + r * H;
        float *ghr = ghh + r * H, *hr = h + r * H;
#define BODY_(m, j) gru_fwd_vec(m, H, gz + j, hz + j, hpr + j, ghr + j, hr + j)
        FOR_VECS(H, BODY_);
#undef BODY_
    }
}
#undef VEC
#undef FOR_VECS

#define NNC_RNN_LSTM_FWD_TS lstm_fwd_ts__avx512
#define NNC_RNN_LSTM_BWD_TS lstm_bwd_ts__avx512
#define NNC_RNN_GRU_FWD_TS gru_fwd_ts__avx512
#define NNC_RNN_ATTR NNC_TARGET_AVX512
#define NNC_RNN_FN(name) name##__avx512
#include "rnn/rnn_gates_tmpl.h"
#else
#include "rnn/rnn_internal.h"
const nnc_rnn_kernels nnc_rnn_kernels__avx512 = {0};
#endif
