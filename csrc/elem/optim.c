/* Optimizer updates over flat parameter buffers, Keras 3 formulas (keras/src/optimizers/).
 *
 * Layout: p, g and the slots are contiguous float arrays of n values. Each optimizer is one
 * elementwise, memory-bound loop split into contiguous ranges across threads; no value depends
 * on another, so any split gives bitwise equal results. Weight decay is applied first, as
 * Keras's _apply_weight_decay does: p = p - p*wd*lr. */
#include <math.h>

#include "vmath.h"

#define GRAIN 256

typedef struct {
    float *p, *m, *v, *vmax, *mg;
    const float *g;
    float lr, b1, b2, eps, alpha, wd, mom, rho;
    int nesterov, centered;
} opt_ctx;

static void sgd_range(void *pv, int64_t i0, int64_t i1) {
    const opt_ctx *c = pv;
    float *p = c->p, *m = c->m;
    const float *g = c->g;
    const float lr = c->lr, mom = c->mom, wd = c->wd;
    for (int64_t i = i0; i < i1; i++) {
        float pi = p[i];
        if (wd != 0.0f) pi = pi - pi * wd * lr;
        if (m) {
            float mi = m[i] * mom - g[i] * lr;
            m[i] = mi;
            pi = c->nesterov ? pi + (mi * mom - g[i] * lr) : pi + mi;
        } else {
            pi = pi - g[i] * lr;
        }
        p[i] = pi;
    }
}

int nnc_sgd_update(float *p, const float *g, float *m, int64_t n, float lr, float momentum,
                   int nesterov, float wd, int nthreads) {
    if (n < 0) return NNC_E_ARG;
    opt_ctx c = {p, momentum != 0.0f ? m : NULL, NULL, NULL, NULL, g, lr, 0, 0, 0, 0, wd, momentum,
                 0, nesterov, 0};
    if (momentum != 0.0f && !m) return NNC_E_ARG;
    int nt = nnc_elem_threads(nthreads, 4.0 * (double)n, (n + GRAIN - 1) / GRAIN);
    nnc_elem_parallel(n, GRAIN, nt, sgd_range, &c);
    return NNC_OK;
}

static void adam_range(void *pv, int64_t i0, int64_t i1) {
    const opt_ctx *c = pv;
    float *p = c->p, *m = c->m, *v = c->v, *vmax = c->vmax;
    const float *g = c->g;
    const float a = c->alpha, ob1 = 1.0f - c->b1, ob2 = 1.0f - c->b2, eps = c->eps;
    const float wdlr = c->wd, lr = c->lr;
    for (int64_t i = i0; i < i1; i++) {
        float pi = p[i], gi = g[i];
        if (wdlr != 0.0f) pi = pi - pi * wdlr * lr;
        float mi = m[i] + (gi - m[i]) * ob1;
        float vi = v[i] + (gi * gi - v[i]) * ob2;
        m[i] = mi;
        v[i] = vi;
        if (vmax) {
            vi = vmax[i] > vi ? vmax[i] : vi;
            vmax[i] = vi;
        }
        p[i] = pi - (mi * a) / (sqrtf(vi) + eps);
    }
}

int nnc_adam_update(float *p, const float *g, float *m, float *v, float *vmax, int64_t n, float lr,
                    float beta1, float beta2, float eps, int64_t t, float wd, int nthreads) {
    if (n < 0 || t < 1) return NNC_E_ARG;
    /* Keras computes beta^t and alpha in the variable dtype (float32) */
    float b1t = powf(beta1, (float)t), b2t = powf(beta2, (float)t);
    float alpha = lr * sqrtf(1.0f - b2t) / (1.0f - b1t);
    opt_ctx c = {p, m, v, vmax, NULL, g, lr, beta1, beta2, eps, alpha, wd, 0, 0, 0, 0};
    int nt = nnc_elem_threads(nthreads, 12.0 * (double)n, (n + GRAIN - 1) / GRAIN);
    nnc_elem_parallel(n, GRAIN, nt, adam_range, &c);
    return NNC_OK;
}

static void rmsprop_range(void *pv, int64_t i0, int64_t i1) {
    const opt_ctx *c = pv;
    float *p = c->p, *m = c->m, *v = c->v, *mg = c->mg;
    const float *g = c->g;
    const float rho = c->rho, orho = 1.0f - c->rho, eps = c->eps, lr = c->lr, mom = c->mom;
    const float wd = c->wd;
    for (int64_t i = i0; i < i1; i++) {
        float pi = p[i], gi = g[i];
        if (wd != 0.0f) pi = pi - pi * wd * lr;
        float vi = rho * v[i] + orho * (gi * gi);
        v[i] = vi;
        float den;
        if (mg) {
            float a = rho * mg[i] + orho * gi;
            mg[i] = a;
            den = vi - a * a + eps;
        } else {
            den = vi + eps;
        }
        float inc = (lr * gi) / sqrtf(den);
        if (m) {
            float mi = mom * m[i] + inc;
            m[i] = mi;
            pi = pi - mi;
        } else {
            pi = pi - inc;
        }
        p[i] = pi;
    }
}

int nnc_rmsprop_update(float *p, const float *g, float *v, float *m, float *mg, int64_t n, float lr,
                       float rho, float momentum, float eps, int centered, float wd, int nthreads) {
    if (n < 0) return NNC_E_ARG;
    if ((momentum > 0.0f && !m) || (centered && !mg)) return NNC_E_ARG;
    opt_ctx c = {p, momentum > 0.0f ? m : NULL, v, NULL, centered ? mg : NULL, g, lr, 0, 0, eps, 0,
                 wd, momentum, rho, 0, centered};
    int nt = nnc_elem_threads(nthreads, 10.0 * (double)n, (n + GRAIN - 1) / GRAIN);
    nnc_elem_parallel(n, GRAIN, nt, rmsprop_range, &c);
    return NNC_OK;
}
