/* Internal: vector math and elementwise kernels, dispatched per ISA.
 *
 * Other areas (RNN gate kernels, fused epilogues) call the array functions below; they use the
 * ISA chosen by nnc_elem_dispatch_init. Inline single-vector helpers for fused kernels live in
 * csrc/kernels/avx2/vmath_avx2.h and csrc/kernels/avx512/vmath_avx512.h.
 *
 * All kernels take contiguous arrays, any alignment, any length (tails go through a stack
 * buffer so every element sees the same vector code: results do not depend on where a thread
 * split falls). Out-of-place or exactly in-place (y == x) only. */
#ifndef NNCORE_ELEM_VMATH_H
#define NNCORE_ELEM_VMATH_H
#include "../common/internal.h"

/* Array functions on the current ISA. y == x allowed. */
void nnc_vexp(const float *x, float *y, int64_t n);     /* e^x; 0 below -87.33, clamped above 88.37 */
void nnc_vsigmoid(const float *x, float *y, int64_t n); /* 1/(1+e^-x), stable both sides */
void nnc_vtanh(const float *x, float *y, int64_t n);

typedef struct nnc_elem_kernels {
    void (*vexp)(const float *x, float *y, int64_t n);
    void (*vsigmoid)(const float *x, float *y, int64_t n);
    void (*vtanh)(const float *x, float *y, int64_t n);
    /* elementwise activations (every id but softmax) over n contiguous values */
    void (*act_fwd)(int act, float alpha, const float *x, float *y, int64_t n);
    void (*act_bwd)(int act, float alpha, const float *x, const float *y, const float *dy, float *dx,
                    int64_t n);
    /* one softmax row forward / backward (dx = y*(dy - sum(dy*y))) */
    void (*softmax_row)(const float *x, float *y, int64_t n);
    void (*softmax_bwd_row)(const float *y, const float *dy, float *dx, int64_t n);
    /* row_max: max of x[0..n), n >= 1. exp_shift_sum: returns sum of e^(x - shift), storing
     * the terms into e when e != NULL (float sum in a fixed order per ISA). */
    float (*row_max)(const float *x, int64_t n);
    float (*exp_shift_sum)(const float *x, float shift, float *e, int64_t n);
    /* binary cross-entropy on logits z, targets t smoothed as tt = t*c1 + c0: per-element loss
     * l = max(z,0) - z*tt + log1p(e^-|z|) and, if g != NULL, g = sigmoid(z) - tt (unscaled) */
    void (*bce_logits)(const float *z, const float *t, float c1, float c0, float *l, float *g,
                       int64_t n);
    /* optimizer steps over n values (formulas in elem/optim.c); NULL slots are unused */
    void (*sgd)(float *p, const float *g, float *m, int64_t n, float lr, float mom, int nesterov,
                float wd);
    void (*adam)(float *p, const float *g, float *m, float *v, float *vmax, int64_t n, float lr,
                 float alpha, float ob1, float ob2, float eps, float wd);
    void (*rmsprop)(float *p, const float *g, float *v, float *m, float *mg, int64_t n, float lr,
                    float rho, float mom, float eps, float wd);
} nnc_elem_kernels;

extern nnc_elem_kernels nnc_elem_k;

void nnc_elem_fill__generic(nnc_elem_kernels *k);
void nnc_sgd__generic(float *p, const float *g, float *m, int64_t n, float lr, float mom,
                      int nesterov, float wd);
void nnc_adam__generic(float *p, const float *g, float *m, float *v, float *vmax, int64_t n,
                       float lr, float alpha, float ob1, float ob2, float eps, float wd);
void nnc_rmsprop__generic(float *p, const float *g, float *v, float *m, float *mg, int64_t n,
                          float lr, float rho, float mom, float eps, float wd);
void nnc_elem_fill__avx2(nnc_elem_kernels *k);
void nnc_elem_fill__avx512(nnc_elem_kernels *k);

/* Keras 3 SELU constants */
#define NNC_SELU_ALPHA 1.67326324f
#define NNC_SELU_SCALE 1.05070098f

/* Thread count for a call: nthreads > 0 is taken as given (capped by units), else the policy. */
int nnc_elem_threads(int nthreads, double flops, int64_t units);

#endif
