/* Fused recurrent gate kernels, written once and compiled per ISA. (A template, not a normal header:
 * it defines functions; it is a .h only so that setup.py rebuilds its includers when it changes.)
 *
 * Included by csrc/kernels/{generic,avx2,avx512}/rnn_gates_*.c with NNC_RNN_ATTR (a target
 * attribute) and NNC_RNN_FN(name) (adds the ISA suffix) defined. The code is plain C whose inner
 * loops run over contiguous units of one batch row (a few hundred floats, in L1), so GCC
 * vectorises them for the target ISA: the exp below uses only arithmetic and bit casts
 * (no libm call), which is what lets sigmoid/tanh vectorise too.
 *
 * Layout: one call handles `rows` consecutive batch rows of one time step. Gate blocks are
 * [rows x G*H] row-major with Keras gate order (LSTM i,f,c,o; GRU z,r,h); state blocks are
 * [rows x H]. dy may be strided (ldy) because the upstream gradient stays batch-major. */
#include <stdint.h>
/* FP exceptions are never inspected; without trapping math GCC if-converts the clamps below,
 * which AVX2/SSE (no mask registers) need to vectorise the exp loops. Local to this unit. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include <math.h>
#include <string.h>

#include "nncore/nnc_core.h"
#include "rnn/rnn_internal.h"

#define A NNC_RNN_ATTR
#define FN NNC_RNN_FN
/* The backward bodies take the activations as arguments and are inlined into a copy with the
 * Keras defaults as constants (tanh, sigmoid): r_dact's switch then folds away and the unit loops
 * vectorise; other activations take the generic copy. */
#define BODY static inline __attribute__((always_inline)) A void
#define T_ NNC_ACT_TANH
#define S_ NNC_ACT_SIGMOID

/* exp(x) with a degree-6 polynomial after range reduction (Cephes expf constants), rel. error
 * about 2 ulp; x clamped so that 2^n stays a normal float. */
static inline A float FN(r_exp)(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float t = x * 1.44269504088896341f + 12582912.0f; /* round to nearest via the magic number */
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}

static inline A float FN(r_sigmoid)(float x) { return 1.0f / (1.0f + FN(r_exp)(-x)); }

static inline A float FN(r_tanh)(float x) {
    float e = FN(r_exp)(-2.0f * fabsf(x));
    return copysignf((1.0f - e) / (1.0f + e), x); /* branch-free so every ISA vectorises */
}

/* x = f(x) in place over n contiguous floats. */
static inline A void FN(r_act)(int act, float *restrict x, int64_t n) {
    switch (act) {
    case NNC_ACT_TANH:
        for (int64_t j = 0; j < n; j++) x[j] = FN(r_tanh)(x[j]);
        break;
    case NNC_ACT_SIGMOID:
        for (int64_t j = 0; j < n; j++) x[j] = FN(r_sigmoid)(x[j]);
        break;
    case NNC_ACT_RELU:
        for (int64_t j = 0; j < n; j++) x[j] = x[j] < 0.f ? 0.f : x[j]; /* NaN stays NaN */
        break;
    case NNC_ACT_HARD_SIGMOID: /* Keras 3: clip(x / 6 + 0.5, 0, 1) */
        for (int64_t j = 0; j < n; j++) {
            float v = x[j] * (1.0f / 6.0f) + 0.5f;
            v = v < 0.f ? 0.f : v;
            x[j] = v > 1.f ? 1.f : v;
        }
        break;
    default: /* linear */
        break;
    }
}

/* f'(.) expressed through the output y = f(.) (true for every supported activation). */
static inline A float FN(r_dact)(int act, float y) {
    switch (act) {
    case NNC_ACT_TANH: return 1.0f - y * y;
    case NNC_ACT_SIGMOID: return y * (1.0f - y);
    case NNC_ACT_RELU: return y > 0.f ? 1.0f : 0.0f;
    case NNC_ACT_HARD_SIGMOID: return (y > 0.f && y < 1.f) ? (1.0f / 6.0f) : 0.0f;
    default: return 1.0f;
    }
}

/* ---------------- LSTM ---------------- */

/* g: pre-activations x W + b + h U on entry, activated i,f,c~,o on exit. */
A void FN(nnc_rnn_lstm_fwd)(int64_t rows, int64_t H, int act, int ract, float *restrict g,
                            const float *restrict cp, float *restrict c, float *restrict tc,
                            float *restrict h) {
#ifdef NNC_RNN_LSTM_FWD_TS /* the ISA's hand-vectorised one-pass kernel for tanh / sigmoid */
    if (act == T_ && ract == S_) {
        NNC_RNN_LSTM_FWD_TS(rows, H, g, cp, c, tc, h);
        return;
    }
#endif
    for (int64_t r = 0; r < rows; r++) {
        float *gi = g + r * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        const float *cpr = cp + r * H;
        float *cr = c + r * H, *tcr = tc + r * H, *hr = h + r * H;
        FN(r_act)(ract, gi, 2 * H);
        FN(r_act)(act, gg, H);
        FN(r_act)(ract, go, H);
        for (int64_t j = 0; j < H; j++) {
            float cv = gf[j] * cpr[j] + gi[j] * gg[j];
            cr[j] = cv;
            tcr[j] = cv;
        }
        FN(r_act)(act, tcr, H);
        for (int64_t j = 0; j < H; j++) hr[j] = go[j] * tcr[j];
    }
}

/* dh: gradient w.r.t. h_t from the step above (ld H); dy (ld ldy, may be NULL) is added.
 * dc: in dc_{t+1} contribution, out the one for c_{t-1}. dg: pre-activation gradients. */
BODY FN(lstm_bwd_body)(int64_t rows, int64_t H, int act, int ract, const float *restrict g,
                      const float *restrict cp, const float *restrict tc,
                      const float *restrict dh, const float *restrict dy, int64_t ldy,
                      float *restrict dc, float *restrict dg) {
    for (int64_t r = 0; r < rows; r++) {
        const float *gi = g + r * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        const float *cpr = cp + r * H, *tcr = tc + r * H, *dhr = dh + r * H;
        const float *dyr = dy ? dy + r * ldy : NULL;
        float *dcr = dc + r * H;
        float *di = dg + r * 4 * H, *df = di + H, *dgg = di + 2 * H, *dout = di + 3 * H;
        if (dyr) {
            for (int64_t j = 0; j < H; j++) {
                float dhv = dhr[j] + dyr[j];
                dout[j] = dhv * tcr[j] * FN(r_dact)(ract, go[j]);
                float dcv = dcr[j] + dhv * go[j] * FN(r_dact)(act, tcr[j]);
                di[j] = dcv * gg[j] * FN(r_dact)(ract, gi[j]);
                dgg[j] = dcv * gi[j] * FN(r_dact)(act, gg[j]);
                df[j] = dcv * cpr[j] * FN(r_dact)(ract, gf[j]);
                dcr[j] = dcv * gf[j];
            }
        } else {
            for (int64_t j = 0; j < H; j++) {
                float dhv = dhr[j];
                dout[j] = dhv * tcr[j] * FN(r_dact)(ract, go[j]);
                float dcv = dcr[j] + dhv * go[j] * FN(r_dact)(act, tcr[j]);
                di[j] = dcv * gg[j] * FN(r_dact)(ract, gi[j]);
                dgg[j] = dcv * gi[j] * FN(r_dact)(act, gg[j]);
                df[j] = dcv * cpr[j] * FN(r_dact)(ract, gf[j]);
                dcr[j] = dcv * gf[j];
            }
        }
    }
}

/* ---------------- GRU, reset_after=True ---------------- */

/* g: x W + b_x on entry (z,r,h), activated z,r,h~ on exit; gh: h U + b_h; ghh (out): gh's
 * candidate block, kept for backward. */
A void FN(nnc_rnn_gru_fwd)(int64_t rows, int64_t H, int act, int ract, float *restrict g,
                           const float *restrict gh, const float *restrict hp,
                           float *restrict ghh, float *restrict h) {
#ifdef NNC_RNN_GRU_FWD_TS
    if (act == T_ && ract == S_) {
        NNC_RNN_GRU_FWD_TS(rows, H, g, gh, hp, ghh, h);
        return;
    }
#endif
    for (int64_t r = 0; r < rows; r++) {
        float *gz = g + r * 3 * H, *gr = gz + H, *gc = gz + 2 * H;
        const float *hz = gh + r * 3 * H, *hc = hz + 2 * H; /* z and r summed together below */
        const float *hpr = hp + r * H;
        float *ghr = ghh + r * H, *hr = h + r * H;
        for (int64_t j = 0; j < 2 * H; j++) gz[j] += hz[j];
        FN(r_act)(ract, gz, 2 * H);
        for (int64_t j = 0; j < H; j++) {
            ghr[j] = hc[j];
            gc[j] += gr[j] * hc[j];
        }
        FN(r_act)(act, gc, H);
        for (int64_t j = 0; j < H; j++) hr[j] = gz[j] * hpr[j] + (1.0f - gz[j]) * gc[j];
    }
}

/* dgx, dgh: pre-activation gradients of the input and recurrent projections; dhp (out): the
 * direct part dh * z of the gradient w.r.t. h_{t-1} (the GEMM adds dgh U^T to it). */
BODY FN(gru_bwd_body)(int64_t rows, int64_t H, int act, int ract, const float *restrict g,
                     const float *restrict ghh, const float *restrict hp,
                     const float *restrict dh, const float *restrict dy, int64_t ldy,
                     float *restrict dgx, float *restrict dgh, float *restrict dhp) {
    for (int64_t r = 0; r < rows; r++) {
        const float *gz = g + r * 3 * H, *gr = gz + H, *gc = gz + 2 * H;
        const float *ghr = ghh + r * H, *hpr = hp + r * H, *dhr = dh + r * H;
        const float *dyr = dy ? dy + r * ldy : NULL;
        float *xz = dgx + r * 3 * H, *xr = xz + H, *xc = xz + 2 * H;
        float *hz = dgh + r * 3 * H, *hr = hz + H, *hc = hz + 2 * H;
        float *dpr = dhp + r * H;
        for (int64_t j = 0; j < H; j++) {
            float dhv = dyr ? dhr[j] + dyr[j] : dhr[j];
            float z = gz[j], rr = gr[j], c = gc[j];
            float a = dhv * (1.0f - z) * FN(r_dact)(act, c);
            float dz = dhv * (hpr[j] - c) * FN(r_dact)(ract, z);
            float dr = a * ghr[j] * FN(r_dact)(ract, rr);
            xz[j] = dz;
            hz[j] = dz;
            xr[j] = dr;
            hr[j] = dr;
            xc[j] = a;
            hc[j] = a * rr;
            dpr[j] = dhv * z;
        }
    }
}

/* ---------------- GRU, reset_after=False ---------------- */

/* Part 1: g[:, :2H] holds x W_zr + b_zr + h U_zr; activates z, r and writes rh = r * h_{t-1}. */
A void FN(nnc_rnn_gru2_fwd1)(int64_t rows, int64_t H, int ract, float *restrict g,
                             const float *restrict hp, float *restrict rh) {
    for (int64_t r = 0; r < rows; r++) {
        float *gz = g + r * 3 * H, *gr = gz + H;
        const float *hpr = hp + r * H;
        float *rhr = rh + r * H;
        FN(r_act)(ract, gz, 2 * H);
        for (int64_t j = 0; j < H; j++) rhr[j] = gr[j] * hpr[j];
    }
}

/* Part 2: g[:, 2H:] holds x W_h + b_h + rh U_h; h~ = act(.), h = z h_{t-1} + (1 - z) h~. */
A void FN(nnc_rnn_gru2_fwd2)(int64_t rows, int64_t H, int act, float *restrict g,
                             const float *restrict hp, float *restrict h) {
    for (int64_t r = 0; r < rows; r++) {
        float *gz = g + r * 3 * H, *gc = gz + 2 * H;
        const float *hpr = hp + r * H;
        float *hr = h + r * H;
        FN(r_act)(act, gc, H);
        for (int64_t j = 0; j < H; j++) hr[j] = gz[j] * hpr[j] + (1.0f - gz[j]) * gc[j];
    }
}

/* Backward part 1: dg_z, dg_h and dhp = dh * z. */
BODY FN(gru2_bwd1_body)(int64_t rows, int64_t H, int act, int ract, const float *restrict g,
                       const float *restrict hp, const float *restrict dh,
                       const float *restrict dy, int64_t ldy, float *restrict dg,
                       float *restrict dhp) {
    for (int64_t r = 0; r < rows; r++) {
        const float *gz = g + r * 3 * H, *gc = gz + 2 * H;
        const float *hpr = hp + r * H, *dhr = dh + r * H;
        const float *dyr = dy ? dy + r * ldy : NULL;
        float *dz = dg + r * 3 * H, *dc = dz + 2 * H, *dpr = dhp + r * H;
        for (int64_t j = 0; j < H; j++) {
            float dhv = dyr ? dhr[j] + dyr[j] : dhr[j];
            float z = gz[j], c = gc[j];
            dc[j] = dhv * (1.0f - z) * FN(r_dact)(act, c);
            dz[j] = dhv * (hpr[j] - c) * FN(r_dact)(ract, z);
            dpr[j] = dhv * z;
        }
    }
}

/* Backward part 2, after drh = dg_h U_h^T: dg_r = drh * h_{t-1} * r', dhp += drh * r. */
BODY FN(gru2_bwd2_body)(int64_t rows, int64_t H, int ract, const float *restrict g,
                       const float *restrict hp, const float *restrict drh,
                       float *restrict dg, float *restrict dhp) {
    for (int64_t r = 0; r < rows; r++) {
        const float *gr = g + r * 3 * H + H;
        const float *hpr = hp + r * H, *drr = drh + r * H;
        float *dr = dg + r * 3 * H + H, *dpr = dhp + r * H;
        for (int64_t j = 0; j < H; j++) {
            dr[j] = drr[j] * hpr[j] * FN(r_dact)(ract, gr[j]);
            dpr[j] += drr[j] * gr[j];
        }
    }
}

/* ---------------- SimpleRNN ---------------- */

/* g: x W + b + h U on entry; h = act(g) written to both g and h. */
A void FN(nnc_rnn_simple_fwd)(int64_t rows, int64_t H, int act, float *restrict g,
                              float *restrict h) {
    FN(r_act)(act, g, rows * H);
    memcpy(h, g, (size_t)(rows * H) * sizeof(float));
}

BODY FN(simple_bwd_body)(int64_t rows, int64_t H, int act, const float *restrict hcur,
                        const float *restrict dh, const float *restrict dy, int64_t ldy,
                        float *restrict dg) {
    for (int64_t r = 0; r < rows; r++) {
        const float *hr = hcur + r * H, *dhr = dh + r * H;
        const float *dyr = dy ? dy + r * ldy : NULL;
        float *dgr = dg + r * H;
        for (int64_t j = 0; j < H; j++) {
            float dhv = dyr ? dhr[j] + dyr[j] : dhr[j];
            dgr[j] = dhv * FN(r_dact)(act, hr[j]);
        }
    }
}

A void FN(nnc_rnn_lstm_bwd)(int64_t rows, int64_t H, int act, int ract, const float *restrict g,
                            const float *restrict cp, const float *restrict tc,
                            const float *restrict dh, const float *restrict dy, int64_t ldy,
                            float *restrict dc, float *restrict dg) {
#ifdef NNC_RNN_LSTM_BWD_TS
    if (act == T_ && ract == S_) {
        NNC_RNN_LSTM_BWD_TS(rows, H, g, cp, tc, dh, dy, ldy, dc, dg);
        return;
    }
#endif
    if (act == T_ && ract == S_) FN(lstm_bwd_body)(rows, H, T_, S_, g, cp, tc, dh, dy, ldy, dc, dg);
    else FN(lstm_bwd_body)(rows, H, act, ract, g, cp, tc, dh, dy, ldy, dc, dg);
}

A void FN(nnc_rnn_gru_bwd)(int64_t rows, int64_t H, int act, int ract, const float *restrict g,
                           const float *restrict ghh, const float *restrict hp,
                           const float *restrict dh, const float *restrict dy, int64_t ldy,
                           float *restrict dgx, float *restrict dgh, float *restrict dhp) {
    if (act == T_ && ract == S_)
        FN(gru_bwd_body)(rows, H, T_, S_, g, ghh, hp, dh, dy, ldy, dgx, dgh, dhp);
    else FN(gru_bwd_body)(rows, H, act, ract, g, ghh, hp, dh, dy, ldy, dgx, dgh, dhp);
}

A void FN(nnc_rnn_gru2_bwd1)(int64_t rows, int64_t H, int act, int ract, const float *restrict g,
                             const float *restrict hp, const float *restrict dh,
                             const float *restrict dy, int64_t ldy, float *restrict dg,
                             float *restrict dhp) {
    if (act == T_ && ract == S_) FN(gru2_bwd1_body)(rows, H, T_, S_, g, hp, dh, dy, ldy, dg, dhp);
    else FN(gru2_bwd1_body)(rows, H, act, ract, g, hp, dh, dy, ldy, dg, dhp);
}

A void FN(nnc_rnn_gru2_bwd2)(int64_t rows, int64_t H, int ract, const float *restrict g,
                             const float *restrict hp, const float *restrict drh,
                             float *restrict dg, float *restrict dhp) {
    if (ract == S_) FN(gru2_bwd2_body)(rows, H, S_, g, hp, drh, dg, dhp);
    else FN(gru2_bwd2_body)(rows, H, ract, g, hp, drh, dg, dhp);
}

A void FN(nnc_rnn_simple_bwd)(int64_t rows, int64_t H, int act, const float *restrict hcur,
                              const float *restrict dh, const float *restrict dy, int64_t ldy,
                              float *restrict dg) {
    if (act == T_) FN(simple_bwd_body)(rows, H, T_, hcur, dh, dy, ldy, dg);
    else FN(simple_bwd_body)(rows, H, act, hcur, dh, dy, ldy, dg);
}

/* part[j] += sum of x[r][j] over the rows, row after row (x [rows x cols], contiguous): the bias
 * gradient of a step. 64 columns at a time are summed in registers; every element is added in
 * row order as in a plain loop, so the sums are the same bits on every ISA. */
A void FN(nnc_rnn_rowsum)(int64_t rows, int64_t cols, const float *restrict x,
                          float *restrict part) {
    int64_t j = 0;
    for (; j + 64 <= cols; j += 64) {
        float acc[64];
        for (int k = 0; k < 64; k++) acc[k] = part[j + k];
        for (int64_t r = 0; r < rows; r++)
            for (int k = 0; k < 64; k++) acc[k] += x[r * cols + j + k];
        for (int k = 0; k < 64; k++) part[j + k] = acc[k];
    }
    for (; j < cols; j++) {
        float a = part[j];
        for (int64_t r = 0; r < rows; r++) a += x[r * cols + j];
        part[j] = a;
    }
}

/* Elementwise activation of a whole block (tests / reference use). */
A void FN(nnc_rnn_act)(int act, float *x, int64_t n) { FN(r_act)(act, x, n); }

const nnc_rnn_kernels FN(nnc_rnn_kernels) = {
    FN(nnc_rnn_lstm_fwd), FN(nnc_rnn_lstm_bwd), FN(nnc_rnn_gru_fwd), FN(nnc_rnn_gru_bwd),
    FN(nnc_rnn_gru2_fwd1), FN(nnc_rnn_gru2_fwd2), FN(nnc_rnn_gru2_bwd1), FN(nnc_rnn_gru2_bwd2),
    FN(nnc_rnn_simple_fwd), FN(nnc_rnn_simple_bwd), FN(nnc_rnn_rowsum), FN(nnc_rnn_act),
};

#undef A
#undef FN
#undef BODY
#undef T_
#undef S_
