/* Recurrent gate kernels for avx512: the shared template rnn/rnn_gates_tmpl.h compiled with this
 * ISA's target attribute, so its unit loops (including the polynomial exp) vectorise for it,
 * plus hand-vectorised one-pass forward kernels for the Keras default activations (tanh,
 * sigmoid) of LSTM and GRU (reset_after): each 16-unit slice of a row loads its gate
 * pre-activations once, applies every nonlinearity in registers (vmath_avx512.h) and stores the
 * workspace once, instead of one pass per activation over the row. Tails use masked loads. */
#include "common/internal.h"
#if NNC_X86
#include "kernels/avx512/vmath_avx512.h"

static NNC_TARGET_AVX512 void lstm_fwd_ts__avx512(int64_t rows, int64_t H, float *restrict g,
                                                  const float *restrict cp, float *restrict c,
                                                  float *restrict tc, float *restrict h) {
    for (int64_t r = 0; r < rows; r++) {
        float *gi = g + r * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        const float *cpr = cp + r * H;
        float *cr = c + r * H, *tcr = tc + r * H, *hr = h + r * H;
        for (int64_t j = 0; j < H; j += 16) {
            __mmask16 m = H - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (H - j)) - 1);
            __m512 i = nnc_sigmoid_avx512(_mm512_maskz_loadu_ps(m, gi + j));
            __m512 f = nnc_sigmoid_avx512(_mm512_maskz_loadu_ps(m, gf + j));
            __m512 u = nnc_tanh_avx512(_mm512_maskz_loadu_ps(m, gg + j));
            __m512 o = nnc_sigmoid_avx512(_mm512_maskz_loadu_ps(m, go + j));
            __m512 cv = _mm512_fmadd_ps(f, _mm512_maskz_loadu_ps(m, cpr + j), _mm512_mul_ps(i, u));
            __m512 t = nnc_tanh_avx512(cv);
            _mm512_mask_storeu_ps(gi + j, m, i);
            _mm512_mask_storeu_ps(gf + j, m, f);
            _mm512_mask_storeu_ps(gg + j, m, u);
            _mm512_mask_storeu_ps(go + j, m, o);
            _mm512_mask_storeu_ps(cr + j, m, cv);
            _mm512_mask_storeu_ps(tcr + j, m, t);
            _mm512_mask_storeu_ps(hr + j, m, _mm512_mul_ps(o, t));
        }
    }
}

/* Backward of the step above (tanh / sigmoid): the derivatives come from the stored activations,
 * so there is no transcendental; one pass over 16 units at a time, masked tails. dy may be NULL. */
static NNC_TARGET_AVX512 void lstm_bwd_ts__avx512(int64_t rows, int64_t H, const float *restrict g,
                                                  const float *restrict cp,
                                                  const float *restrict tc,
                                                  const float *restrict dh,
                                                  const float *restrict dy, int64_t ldy,
                                                  float *restrict dc, float *restrict dg) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t r = 0; r < rows; r++) {
        const float *gi = g + r * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        const float *cpr = cp + r * H, *tcr = tc + r * H, *dhr = dh + r * H;
        const float *dyr = dy ? dy + r * ldy : NULL;
        float *dcr = dc + r * H;
        float *di = dg + r * 4 * H, *df = di + H, *dgg = di + 2 * H, *dout = di + 3 * H;
        for (int64_t j = 0; j < H; j += 16) {
            __mmask16 m = H - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (H - j)) - 1);
            __m512 dhv = _mm512_maskz_loadu_ps(m, dhr + j);
            if (dyr) dhv = _mm512_add_ps(dhv, _mm512_maskz_loadu_ps(m, dyr + j));
            __m512 i = _mm512_maskz_loadu_ps(m, gi + j), f = _mm512_maskz_loadu_ps(m, gf + j);
            __m512 u = _mm512_maskz_loadu_ps(m, gg + j), o = _mm512_maskz_loadu_ps(m, go + j);
            __m512 t = _mm512_maskz_loadu_ps(m, tcr + j);
            __m512 ho = _mm512_mul_ps(dhv, o);
            /* dc_t = dc + dh o (1 - t^2) */
            __m512 dcv = _mm512_fmadd_ps(ho, _mm512_fnmadd_ps(t, t, one), _mm512_maskz_loadu_ps(m, dcr + j));
            /* sigmoid' = s (1 - s), tanh' = 1 - u^2 */
            _mm512_mask_storeu_ps(dout + j, m,
                                  _mm512_mul_ps(_mm512_mul_ps(dhv, t), _mm512_fnmadd_ps(o, o, o)));
            _mm512_mask_storeu_ps(di + j, m,
                                  _mm512_mul_ps(_mm512_mul_ps(dcv, u), _mm512_fnmadd_ps(i, i, i)));
            _mm512_mask_storeu_ps(dgg + j, m,
                                  _mm512_mul_ps(_mm512_mul_ps(dcv, i), _mm512_fnmadd_ps(u, u, one)));
            _mm512_mask_storeu_ps(df + j, m,
                                  _mm512_mul_ps(_mm512_mul_ps(dcv, _mm512_maskz_loadu_ps(m, cpr + j)),
                                                _mm512_fnmadd_ps(f, f, f)));
            _mm512_mask_storeu_ps(dcr + j, m, _mm512_mul_ps(dcv, f));
        }
    }
}

static NNC_TARGET_AVX512 void gru_fwd_ts__avx512(int64_t rows, int64_t H, float *restrict g,
                                                 const float *restrict gh,
                                                 const float *restrict hp, float *restrict ghh,
                                                 float *restrict h) {
    for (int64_t r = 0; r < rows; r++) {
        float *gz = g + r * 3 * H, *gr = gz + H, *gc = gz + 2 * H;
        const float *hz = gh + r * 3 * H, *hrr = hz + H, *hc = hz + 2 * H;
        const float *hpr = hp + r * H;
        float *ghr = ghh + r * H, *hr = h + r * H;
        for (int64_t j = 0; j < H; j += 16) {
            __mmask16 m = H - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (H - j)) - 1);
            __m512 z = nnc_sigmoid_avx512(
                _mm512_add_ps(_mm512_maskz_loadu_ps(m, gz + j), _mm512_maskz_loadu_ps(m, hz + j)));
            __m512 rr = nnc_sigmoid_avx512(
                _mm512_add_ps(_mm512_maskz_loadu_ps(m, gr + j), _mm512_maskz_loadu_ps(m, hrr + j)));
            __m512 hcv = _mm512_maskz_loadu_ps(m, hc + j);
            __m512 u = nnc_tanh_avx512(_mm512_fmadd_ps(rr, hcv, _mm512_maskz_loadu_ps(m, gc + j)));
            __m512 hpv = _mm512_maskz_loadu_ps(m, hpr + j);
            __m512 hv = _mm512_fmadd_ps(z, _mm512_sub_ps(hpv, u), u); /* z hp + (1 - z) u */
            _mm512_mask_storeu_ps(gz + j, m, z);
            _mm512_mask_storeu_ps(gr + j, m, rr);
            _mm512_mask_storeu_ps(gc + j, m, u);
            _mm512_mask_storeu_ps(ghr + j, m, hcv);
            _mm512_mask_storeu_ps(hr + j, m, hv);
        }
    }
}

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
