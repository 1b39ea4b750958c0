/* Elementwise kernels: activations, losses, optimizer updates, deterministic reductions.
 * Reductions use fixed chunks of rows (NNC_REDUCE_CHUNK) combined in chunk order, so results
 * do not depend on the thread count. Scalar losses accumulate in double. */
#ifndef NNCORE_ELEM_H
#define NNCORE_ELEM_H
#include "nncore/nnc_core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NNC_REDUCE_CHUNK 256

/* y = f(x) for a [rows x cols] block (contiguous). softmax is per row. x == y is allowed.
 * alpha: slope for leaky_relu, alpha for elu; ignored otherwise. */
int nnc_act_forward(int act, float alpha, const float *x, float *y, int64_t rows, int64_t cols,
                    int nthreads);
/* dx = dy * f'(.) using x (pre-activation, needed only by gelu and swish; may be NULL for the
 * others) and y (the forward output; the vector gelu backward also reads Phi(x) = y/x). dx == dy is allowed. If db != NULL, db[j] = sum_i dx[i,j]
 * (overwritten, deterministic). */
int nnc_act_backward(int act, float alpha, const float *x, const float *y, const float *dy,
                     float *dx, int64_t rows, int64_t cols, float *db, int nthreads);
/* out[j] = sum_i x[i*ldx + j], fixed-chunk order; accumulate != 0 adds to out. */
int nnc_colsum(const float *x, int64_t rows, int64_t cols, int64_t ldx, float *out, int accumulate,
               int nthreads);
/* 1 if every value is finite. */
int nnc_all_finite(const float *x, int64_t n);

/* Losses, Keras semantics. pred is [rows x cols]; target is float [rows x cols], except for
 * SPARSE_CATEGORICAL where it is int32 [rows] (checked in range by the caller).
 * Per-sample loss (Keras: mean over the last axis for bce/mse/mae/huber, sum over classes for
 * the categorical ones), times w[i] when w != NULL, is summed into *loss_sum (double).
 * If grad != NULL, grad = d(scale * sum_i w_i*loss_i)/d(pred), or d/d(logits) when from_logits.
 * param: huber delta; label_smoothing for the cross-entropies (0 = none); focal gamma later.
 * Probability forms clip to [1e-7, 1-1e-7] (float32, as Keras); the gradient is zero where a
 * value was clipped (tf.clip_by_value's gradient). categorical and sparse renormalise p by its
 * row sum first (sparse = categorical on one-hot labels; it takes no label smoothing). */
enum {
    NNC_LOSS_MSE = 0, NNC_LOSS_MAE, NNC_LOSS_HUBER, NNC_LOSS_BINARY_CE,
    NNC_LOSS_CATEGORICAL_CE, NNC_LOSS_SPARSE_CATEGORICAL_CE, NNC_LOSS_BINARY_FOCAL_CE,
    NNC_LOSS_COUNT
};
int nnc_loss(int loss, int from_logits, float param, const float *pred, const void *target,
             const float *w, int64_t rows, int64_t cols, float scale, double *loss_sum,
             float *grad, int nthreads);
/* Same with NNC_LOSS_NPARAMS parameters: params[0] is nnc_loss's param; for BINARY_FOCAL_CE
 * (Keras's BinaryFocalCrossentropy) params = {label_smoothing, gamma, alpha,
 * apply_class_balancing (0 or 1)}: loss = mean_j w_bal * (1 - p_t)^gamma * bce, with
 * p_t = t*p + (1-t)*(1-p) and w_bal = t*alpha + (1-t)*(1-alpha) when balancing (else 1). */
#define NNC_LOSS_NPARAMS 4
/* Keras's focal-loss defaults (params[1], params[2]) */
#define NNC_FOCAL_GAMMA 2.0f
#define NNC_FOCAL_ALPHA 0.25f
int nnc_loss_ex(int loss, int from_logits, const float *params, const float *pred,
                const void *target, const float *w, int64_t rows, int64_t cols, float scale,
                double *loss_sum, float *grad, int nthreads);

/* Optimizer updates over one flat buffer of n parameters, Keras formulas. t is the 1-based
 * step (for Adam's bias correction). wd: decoupled weight decay (AdamW; 0 = none). */
int nnc_sgd_update(float *p, const float *g, float *m, int64_t n, float lr, float momentum,
                   int nesterov, float wd, int nthreads);
int nnc_adam_update(float *p, const float *g, float *m, float *v, float *vmax, int64_t n, float lr,
                    float beta1, float beta2, float eps, int64_t t, float wd, int nthreads);
int nnc_rmsprop_update(float *p, const float *g, float *v, float *m, float *mg, int64_t n, float lr,
                       float rho, float momentum, float eps, int centered, float wd, int nthreads);

#ifdef __cplusplus
}
#endif
#endif
