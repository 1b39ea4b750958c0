/* Convolution and pooling kernels and nodes (NHWC activations, HWIO kernels).
 *
 * Geometry is validated at the Cython boundary; C only checks for allocation failure.
 * 1-D convolutions and poolings are the 2-D ones with H = 1 (KH = 1, stride_h = 1).
 * Every kernel gives bitwise identical results for any thread count on one ISA: threads split
 * output pixels, images or weight-gradient columns/rows, never a reduction. */
#ifndef NNCORE_CONV_H
#define NNCORE_CONV_H
#include "nncore/nnc_core.h"
#include "nncore/nnc_engine.h"
#include "nncore/nnc_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One Conv2D: input H x W x C (NHWC, per image), kernel KH x KW x C x F (HWIO), output
 * OH x OW x F. pt/pl: zeros added before the first row/column (the bottom/right padding is
 * implied by OH/OW). sh/sw strides, dh/dw dilations. */
typedef struct {
    int64_t H, W, C, KH, KW, F, sh, sw, dh, dw, pt, pl, OH, OW;
} nnc_conv2d_geom;

/* A Conv2D plan: geometry, packed weights (forward, and backward-data form) and grow-only
 * per-thread scratch. One per layer (or per op context); not thread-safe itself. */
typedef struct nnc_conv2d nnc_conv2d;

nnc_conv2d *nnc_conv2d_new(const nnc_conv2d_geom *g);
void nnc_conv2d_free(nnc_conv2d *c);
/* Grow the scratch for `batch` images at up to nnc_get_num_threads() threads (optional: the
 * kernels grow it themselves on first use; nodes call it from reserve so steps never allocate). */
int nnc_conv2d_reserve(nnc_conv2d *c, int64_t batch);
/* Packs w (HWIO, KH*KW*C x F) for the forward pass and remembers the pointer: the
 * backward-data form is packed from it lazily on the next backward_data call, so w must stay
 * valid and unchanged until the next set_weights. */
int nnc_conv2d_set_weights(nnc_conv2d *c, const float *w);
/* y [N x OH x OW x F] = act(conv(x, w) + bias). act in {LINEAR, RELU, LEAKY_RELU (slope alpha),
 * RELU6} is fused in the GEMM epilogue; other activations are applied by the caller. bias may
 * be NULL. nthreads <= 0: process setting. */
int nnc_conv2d_forward(nnc_conv2d *c, const float *x, int64_t N, const float *bias, int act,
                       float alpha, float *y, int nthreads);
/* dx [N x H x W x C] = gradient w.r.t. x for dz = gradient w.r.t. the pre-activation output. */
int nnc_conv2d_backward_data(nnc_conv2d *c, const float *dz, int64_t N, float *dx, int nthreads);
/* dw [KH*KW*C x F] (overwritten) and, if db != NULL, db [F] = column sums of dz (overwritten). */
int nnc_conv2d_backward_weights(nnc_conv2d *c, const float *x, const float *dz, int64_t N,
                                float *dw, float *db, int nthreads);

/* 3x3, stride 1, undilated convs with >= 16 channels in and out run Winograd F(2x2, 3x3)
 * (forward and backward data) unless switched off here (process-wide; for tests). */
void nnc_conv2d_set_winograd(int on);
int nnc_conv2d_get_winograd(void);

/* In place dy <- dy * f'(y) for act in {LINEAR, RELU, LEAKY_RELU, RELU6} (from the output y),
 * and db[j] = sum_i dy[i, j] if db != NULL (overwritten; summed in fixed 512-row chunks, the
 * same for any thread count).
 * Returns NNC_E_ARG for other activations. */
int nnc_conv_act_backward(int act, float alpha, const float *y, float *dy, int64_t rows,
                          int64_t cols, float *db, int nthreads);

/* Pooling, NHWC. Window PH x PW, strides sh x sw, padding pt/pl before (the rest implied by
 * OH/OW). Padded positions never win a max and are not counted in an average (Keras). */
typedef struct {
    int64_t H, W, C, PH, PW, sh, sw, pt, pl, OH, OW;
} nnc_pool2d_geom;

/* argmax (may be NULL): one byte per output element, the window position kh*PW + kw of the
 * first maximum (PH*PW <= 256). */
int nnc_maxpool2d_forward(const nnc_pool2d_geom *g, const float *x, int64_t N, float *y,
                          uint8_t *argmax, int nthreads);
/* dx (overwritten) from dy and the argmax bytes of the forward pass. */
int nnc_maxpool2d_backward(const nnc_pool2d_geom *g, const float *dy, const uint8_t *argmax,
                           int64_t N, float *dx, int nthreads);
int nnc_avgpool2d_forward(const nnc_pool2d_geom *g, const float *x, int64_t N, float *y,
                          int nthreads);
int nnc_avgpool2d_backward(const nnc_pool2d_geom *g, const float *dy, int64_t N, float *dx,
                           int nthreads);

/* Global pooling over S positions: x [N x S x C] -> y [N x C]. */
int nnc_global_avgpool_forward(const float *x, int64_t N, int64_t S, int64_t C, float *y,
                               int nthreads);
int nnc_global_avgpool_backward(const float *dy, int64_t N, int64_t S, int64_t C, float *dx,
                                int nthreads);
int nnc_global_maxpool_forward(const float *x, int64_t N, int64_t S, int64_t C, float *y,
                               int nthreads);
/* dy goes to the first position holding the maximum (found again from x and y). */
int nnc_global_maxpool_backward(const float *x, const float *y, const float *dy, int64_t N,
                                int64_t S, int64_t C, float *dx, int nthreads);

/* Zero padding (ZeroPadding1D/2D): x [N x H x W x C] -> y [N x (t+H+b) x (l+W+r) x C];
 * backward crops. */
int nnc_zeropad2d_forward(const float *x, int64_t N, int64_t H, int64_t W, int64_t C, int64_t t,
                          int64_t b, int64_t l, int64_t r, float *y, int nthreads);
int nnc_zeropad2d_backward(const float *dy, int64_t N, int64_t H, int64_t W, int64_t C,
                           int64_t t, int64_t b, int64_t l, int64_t r, float *dx, int nthreads);

/* ---- engine nodes (flat per-sample vectors, NHWC) ---- */
/* Conv2D (Conv1D with H = 1): params = kernel HWIO then bias [F] (Keras order). Activations
 * other than linear/relu/leaky_relu/relu6 run as a separate pass (z kept for gelu/swish). */
nnc_node *nnc_conv2d_node_new(const nnc_conv2d_geom *g, int use_bias, int act, float alpha,
                              float *params, float *grads);
/* Max (is_max = 1, argmax bytes kept while training) or average pooling. */
nnc_node *nnc_pool2d_node_new(const nnc_pool2d_geom *g, int is_max);
/* Global pooling over S positions of C channels. */
nnc_node *nnc_global_pool_node_new(int64_t S, int64_t C, int is_max);
nnc_node *nnc_zeropad2d_node_new(int64_t H, int64_t W, int64_t C, int64_t t, int64_t b, int64_t l,
                                 int64_t r);
/* Per sample [A x B x inner] -> [B x A x inner] (channels_first <-> channels_last). */
nnc_node *nnc_transpose_node_new(int64_t A, int64_t B, int64_t inner);

#ifdef __cplusplus
}
#endif
#endif
