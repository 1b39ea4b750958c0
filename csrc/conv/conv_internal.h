/* Internals shared by the Conv2D plan (conv2d.c) and its Winograd path (winograd.c). */
#ifndef NNCORE_CONV_INTERNAL_H
#define NNCORE_CONV_INTERNAL_H
#include "../common/internal.h"

/* Winograd F(2x2, 3x3) weights: U[xi] = G g G^T for the 16 positions xi, each a packed
 * C x F GEMM operand. */
typedef struct nnc_wino nnc_wino;

/* Whether a geometry takes the Winograd path: 3x3, stride 1, no dilation, and enough channels
 * on both sides that the 16 C x F GEMMs dominate the transforms. */
int nnc_wino_applies(const nnc_conv2d_geom *g);
nnc_wino *nnc_wino_new(int64_t C, int64_t F);
void nnc_wino_free(nnc_wino *w);
/* k: HWIO 3 x 3 x C x F. */
int nnc_wino_set_weights(nnc_wino *w, const float *k);
/* Floats of scratch one thread needs. */
size_t nnc_wino_scratch(const nnc_conv2d_geom *g);
/* y = act(conv(x, k) + bias) for geometry g (nnc_wino_applies(g)); scratch holds
 * nnc_get_num_threads() (or nthreads) per-thread blocks of nnc_wino_scratch(g) floats. */
int nnc_wino_forward(const nnc_wino *w, const nnc_conv2d_geom *g, const float *x, int64_t N,
                     const nnc_epilogue *ep, float *y, float *scratch, int nthreads);
/* dw [3 x 3 x C x F] (overwritten) = the kernel gradient for dz (the pre-activation output
 * gradient); same scratch as nnc_wino_forward. */
int nnc_wino_backward_weights(const nnc_wino *w, const nnc_conv2d_geom *g, const float *x,
                              const float *dz, int64_t N, float *dw, float *scratch,
                              int nthreads);

/* Winograd for 3x3 stride-2 undilated layers (winograd_s2.c): the even taps as F(2, 2), the
 * odd tap folded into the end slots; 25 products per 2x2 outputs instead of 36, all three
 * passes. Same scratch convention as nnc_wino. */
typedef struct nnc_wino2 nnc_wino2;
int nnc_wino2_applies(const nnc_conv2d_geom *g);
nnc_wino2 *nnc_wino2_new(int64_t C, int64_t F);
void nnc_wino2_free(nnc_wino2 *w);
/* k: HWIO 3 x 3 x C x F; the forward weights, and (set_weights_dx) the backward-data ones. */
int nnc_wino2_set_weights(nnc_wino2 *w, const float *k);
int nnc_wino2_set_weights_dx(nnc_wino2 *w, const float *k);
size_t nnc_wino2_scratch(const nnc_conv2d_geom *g);
int nnc_wino2_forward(const nnc_wino2 *w, const nnc_conv2d_geom *g, const float *x, int64_t N,
                      const nnc_epilogue *ep, float *y, float *scratch, int nthreads);
/* dx (overwritten) for dz, the pre-activation output gradient. */
int nnc_wino2_backward_data(const nnc_wino2 *w, const nnc_conv2d_geom *g, const float *dz,
                            int64_t N, float *dx, float *scratch, int nthreads);
int nnc_wino2_backward_weights(const nnc_wino2 *w, const nnc_conv2d_geom *g, const float *x,
                               const float *dz, int64_t N, float *dw, float *scratch,
                               int nthreads);

/* Direct weight gradient for C <= 4 and F % 16 == 0 under AVX-512 (smallc.c); the ISA in
 * use is checked at each call. */
int nnc_smallc_applies(const nnc_conv2d_geom *g);
/* Image slices the pixel sum is cut into (a function of N only); scratch holds
 * (slices - 1) * KH*KW*C*F floats. */
int nnc_smallc_slices(int64_t N);
int nnc_smallc_backward_weights(const nnc_conv2d_geom *g, const float *x, const float *dz,
                                int64_t N, float *dw, float *scratch, int nthreads);

/* How the weight gradients share work: the image sum is cut into S slices fixed by the batch.
 * Thread t of nt visits slices conv_slice_first(t, nt, S), then every conv_slice_step(nt, S);
 * with nt <= S it takes whole slices (blocks [0, blocks)), with nt > S the threads t, t + S, ...
 * of a slice share its blocks (conv_slice_blocks). */
static inline int64_t conv_slice_first(int t, int nt, int64_t S) { return nt > S ? t % S : t; }
static inline int64_t conv_slice_step(int nt, int64_t S) { return nt > S ? S : nt; }
static inline void conv_slice_blocks(int t, int nt, int64_t S, int64_t sl, int64_t blocks,
                                     int64_t *b0, int64_t *b1) {
    *b0 = 0;
    *b1 = blocks;
    if (nt > S) {
        const int64_t ns = (nt - sl + S - 1) / S, jt = t / S;
        *b0 = blocks * jt / ns;
        *b1 = blocks * (jt + 1) / ns;
    }
}
#endif
