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

/* ---- generic kernels (vector ones: elem/vmath_impl.h) ---- */

void nnc_sgd__generic(float *p, const float *g, float *m, int64_t n, float lr, float mom,
                      int nesterov, float wd) {
    for (int64_t i = 0; i < n; i++) {
        float pi = p[i];
        if (wd != 0.0f) pi = pi - pi * wd * lr;
        if (m) {
            float mi = m[i] * mom - g[i] * lr;
            m[i] = mi;
            pi = nesterov ? pi + (mi * mom - g[i] * lr) : pi + mi;
        } else {
            pi = pi - g[i] * lr;
        }
        p[i] = pi;
    }
}

static void sgd_range(void *pv, int64_t i0, int64_t i1) {
    const opt_ctx *c = pv;
    nnc_elem_k.sgd(c->p + i0, c->g + i0, c->m ? c->m + i0 : NULL, i1 - i0, c->lr, c->mom,
                   c->nesterov, c->wd);
}

int nnc_sgd_update(float *p, const float *g, float *m, int64_t n, float lr, float momentum,
                   int nesterov, float wd, int nthreads) {
    if (n < 0) return NNC_E_ARG;
    opt_ctx c = {p, momentum != 0.0f ? m : NULL, NULL, NULL, NULL, g, lr, 0, 0, 0, 0, wd, momentum,
                 0, nesterov, 0};
    if (momentum != 0.0f && !m) return NNC_E_ARG;
    int nt = nnc_elem_threads(nthreads, 4.0 * (double)n, (n + GRAIN - 1) / GRAIN);
    nnc_parallel_ranges(n, GRAIN, nt, sgd_range, &c);
    return NNC_OK;
}

void nnc_adam__generic(float *p, const float *g, float *m, float *v, float *vmax, int64_t n,
                       float lr, float a, float ob1, float ob2, float eps, float wd) {
    for (int64_t i = 0; i < n; i++) {
        float pi = p[i], gi = g[i];
        if (wd != 0.0f) pi = pi - pi * wd * lr;
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

static void adam_range(void *pv, int64_t i0, int64_t i1) {
    const opt_ctx *c = pv;
    nnc_elem_k.adam(c->p + i0, c->g + i0, c->m + i0, c->v + i0, c->vmax ? c->vmax + i0 : NULL,
                    i1 - i0, c->lr, c->alpha, 1.0f - c->b1, 1.0f - c->b2, c->eps, c->wd);
}

int nnc_adam_update(float *p, const float *g, float *m, float *v, float *vmax, int64_t n, float lr,
                    float beta1, float beta2, float eps, int64_t t, float wd, int nthreads) {
    if (n < 0 || t < 1) return NNC_E_ARG;
    /* Keras computes beta^t and alpha in the variable dtype (float32) */
    float b1t = powf(beta1, (float)t), b2t = powf(beta2, (float)t);
    float alpha = lr * sqrtf(1.0f - b2t) / (1.0f - b1t);
    opt_ctx c = {p, m, v, vmax, NULL, g, lr, beta1, beta2, eps, alpha, wd, 0, 0, 0, 0};
    int nt = nnc_elem_threads(nthreads, 12.0 * (double)n, (n + GRAIN - 1) / GRAIN);
    nnc_parallel_ranges(n, GRAIN, nt, adam_range, &c);
    return NNC_OK;
}

void nnc_rmsprop__generic(float *p, const float *g, float *v, float *m, float *mg, int64_t n,
                          float lr, float rho, float mom, float eps, float wd) {
    const float orho = 1.0f - rho;
    for (int64_t i = 0; i < n; i++) {
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

static void rmsprop_range(void *pv, int64_t i0, int64_t i1) {
    const opt_ctx *c = pv;
    nnc_elem_k.rmsprop(c->p + i0, c->g + i0, c->v + i0, c->m ? c->m + i0 : NULL,
                       c->mg ? c->mg + i0 : NULL, i1 - i0, c->lr, c->rho, c->mom, c->eps, c->wd);
}

int nnc_rmsprop_update(float *p, const float *g, float *v, float *m, float *mg, int64_t n, float lr,
                       float rho, float momentum, float eps, int centered, float wd, int nthreads) {
    if (n < 0) return NNC_E_ARG;
    if ((momentum > 0.0f && !m) || (centered && !mg)) return NNC_E_ARG;
    opt_ctx c = {p, momentum > 0.0f ? m : NULL, v, NULL, centered ? mg : NULL, g, lr, 0, 0, eps, 0,
                 wd, momentum, rho, 0, centered};
    int nt = nnc_elem_threads(nthreads, 10.0 * (double)n, (n + GRAIN - 1) / GRAIN);
    nnc_parallel_ranges(n, GRAIN, nt, rmsprop_range, &c);
    return NNC_OK;
}
