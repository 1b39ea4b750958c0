/* Generic (portable C) elementwise kernels: the reference semantics, built on libm.
 *
 * Layout: contiguous float arrays, any alignment and length; y == x allowed.
 * No blocking: one pass per array, scalar code the compiler may vectorise.
 * Formulas (Keras 3): see nnc_elem.h; backward passes use the forward output y except gelu
 * and swish, which need x. gelu uses erfc so the negative tail keeps its relative accuracy. */
#include <math.h>

#include "../../elem/vmath.h"

static void vexp__generic(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]);
}

static inline float sigmoid1(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

static void vsigmoid__generic(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = sigmoid1(x[i]);
}

static void vtanh__generic(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

/* Phi(x) = 0.5*erfc(-x/sqrt2), in double: no cancellation for x << 0, and x/sqrt2 is not
 * rounded to float (that would cost ~2z^2 ulps of relative accuracy in the tail). */
static inline float ncdf(float x) { return (float)(0.5 * erfc(-(double)x * 0.70710678118654752)); }

static void act_fwd__generic(int act, float alpha, const float *x, float *y, int64_t n) {
    int64_t i;
    switch (act) {
    case NNC_ACT_RELU:
        for (i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
        break;
    case NNC_ACT_SIGMOID: vsigmoid__generic(x, y, n); break;
    case NNC_ACT_TANH: vtanh__generic(x, y, n); break;
    case NNC_ACT_LEAKY_RELU:
        for (i = 0; i < n; i++) y[i] = x[i] >= 0.0f ? x[i] : alpha * x[i];
        break;
    case NNC_ACT_ELU:
        for (i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]);
        break;
    case NNC_ACT_GELU:
        for (i = 0; i < n; i++) y[i] = x[i] * ncdf(x[i]);
        break;
    case NNC_ACT_SWISH:
        for (i = 0; i < n; i++) y[i] = x[i] * sigmoid1(x[i]);
        break;
    case NNC_ACT_SOFTPLUS:
        for (i = 0; i < n; i++) {
            float v = x[i];
            y[i] = (v > 0.0f ? v : 0.0f) + log1pf(expf(-fabsf(v)));
        }
        break;
    case NNC_ACT_SELU:
        for (i = 0; i < n; i++)
            y[i] = x[i] > 0.0f ? NNC_SELU_SCALE * x[i]
                               : (NNC_SELU_SCALE * NNC_SELU_ALPHA) * expm1f(x[i]);
        break;
    case NNC_ACT_RELU6:
        for (i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : (x[i] > 6.0f ? 6.0f : x[i]);
        break;
    case NNC_ACT_HARD_SIGMOID:
        for (i = 0; i < n; i++) {
            float v = x[i] + 3.0f;
            v = v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
            y[i] = v * (1.0f / 6.0f);
        }
        break;
    case NNC_ACT_SOFTSIGN:
        for (i = 0; i < n; i++) y[i] = x[i] / (1.0f + fabsf(x[i]));
        break;
    default: /* linear */
        if (y != x)
            for (i = 0; i < n; i++) y[i] = x[i];
        break;
    }
}

static void act_bwd__generic(int act, float alpha, const float *x, const float *y, const float *dy,
                             float *dx, int64_t n) {
    int64_t i;
    switch (act) {
    case NNC_ACT_RELU:
        for (i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case NNC_ACT_SIGMOID:
        for (i = 0; i < n; i++) dx[i] = dy[i] * (y[i] * (1.0f - y[i]));
        break;
    case NNC_ACT_TANH:
        for (i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    case NNC_ACT_LEAKY_RELU: /* y > 0 <=> x > 0 for alpha > 0 */
        for (i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : alpha * dy[i];
        break;
    case NNC_ACT_ELU: /* alpha*e^x = y + alpha */
        for (i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : dy[i] * (y[i] + alpha);
        break;
    case NNC_ACT_GELU:
        for (i = 0; i < n; i++) {
            float v = x[i];
            float pdf = (float)(0.39894228040143268 * exp(-0.5 * (double)v * v));
            dx[i] = dy[i] * (ncdf(v) + v * pdf);
        }
        break;
    case NNC_ACT_SWISH:
        for (i = 0; i < n; i++) {
            float s = sigmoid1(x[i]);
            dx[i] = dy[i] * (s * (1.0f + x[i] * (1.0f - s)));
        }
        break;
    case NNC_ACT_SOFTPLUS: /* sigmoid(x) = 1 - e^-y */
        for (i = 0; i < n; i++) dx[i] = dy[i] * -expm1f(-y[i]);
        break;
    case NNC_ACT_SELU: /* scale*alpha*e^x = y + scale*alpha */
        for (i = 0; i < n; i++)
            dx[i] = y[i] > 0.0f ? NNC_SELU_SCALE * dy[i]
                                : dy[i] * (y[i] + NNC_SELU_SCALE * NNC_SELU_ALPHA);
        break;
    case NNC_ACT_RELU6:
        for (i = 0; i < n; i++) dx[i] = (y[i] > 0.0f && y[i] < 6.0f) ? dy[i] : 0.0f;
        break;
    case NNC_ACT_HARD_SIGMOID:
        for (i = 0; i < n; i++) dx[i] = (y[i] > 0.0f && y[i] < 1.0f) ? dy[i] * (1.0f / 6.0f) : 0.0f;
        break;
    case NNC_ACT_SOFTSIGN: /* 1/(1+|x|)^2 = (1-|y|)^2 */
        for (i = 0; i < n; i++) {
            float t = 1.0f - fabsf(y[i]);
            dx[i] = dy[i] * (t * t);
        }
        break;
    default: /* linear */
        if (dx != dy)
            for (i = 0; i < n; i++) dx[i] = dy[i];
        break;
    }
}

static float row_max__generic(const float *x, int64_t n) {
    float m = x[0];
    for (int64_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static float exp_shift_sum__generic(const float *x, float shift, float *e, int64_t n) {
    double s = 0.0; /* double: a long row's float sum would drift by ~n ulps */
    for (int64_t i = 0; i < n; i++) {
        float v = expf(x[i] - shift);
        if (e) e[i] = v;
        s += v;
    }
    return (float)s;
}

static void softmax_row__generic(const float *x, float *y, int64_t n) {
    float m = row_max__generic(x, n);
    float s = exp_shift_sum__generic(x, m, y, n);
    float r = 1.0f / s;
    for (int64_t i = 0; i < n; i++) y[i] *= r;
}

static void softmax_bwd_row__generic(const float *y, const float *dy, float *dx, int64_t n) {
    double d = 0.0;
    for (int64_t i = 0; i < n; i++) d += (double)dy[i] * y[i];
    float df = (float)d;
    for (int64_t i = 0; i < n; i++) dx[i] = y[i] * (dy[i] - df);
}

static void bce_logits__generic(const float *z, const float *t, float c1, float c0, float *l,
                                float *g, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = z[i], tt = t[i] * c1 + c0;
        double e = exp(-fabs((double)v));
        l[i] = (float)((double)(v > 0.0f ? v : 0.0f) - (double)v * tt + log1p(e));
        if (g) { /* sigmoid(z) - t without cancelling when both are ~1 */
            float sm = (float)(e / (1.0 + e)); /* sigmoid(-|z|) */
            g[i] = v >= 0.0f ? (1.0f - tt) - sm : sm - tt;
        }
    }
}

void nnc_elem_fill__generic(nnc_elem_kernels *k) {
    k->sgd = nnc_sgd__generic;
    k->adam = nnc_adam__generic;
    k->rmsprop = nnc_rmsprop__generic;
    k->bce_logits = bce_logits__generic;
    k->vexp = vexp__generic;
    k->vsigmoid = vsigmoid__generic;
    k->vtanh = vtanh__generic;
    k->act_fwd = act_fwd__generic;
    k->act_bwd = act_bwd__generic;
    k->softmax_row = softmax_row__generic;
    k->softmax_bwd_row = softmax_bwd_row__generic;
    k->row_max = row_max__generic;
    k->exp_shift_sum = exp_shift_sum__generic;
}
