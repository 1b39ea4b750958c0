/* Internals shared by the Conv2D plan (conv2d.c), its Winograd paths (winograd.c, winograd_s2.c)
 * and their thread scheduler (conv_sched.c). */
#ifndef NNCORE_CONV_INTERNAL_H
#define NNCORE_CONV_INTERNAL_H
#include "../common/internal.h"

/* n rounded up to a multiple of 32 / 16 (GEMM panel width, vector and skew sizes). */
static inline int64_t pad32(int64_t n) { return (n + 31) / 32 * 32; }
static inline int64_t pad16(int64_t n) { return (n + 15) / 16 * 16; }

/* Winograd F(2x2, 3x3) weights: U[xi] = G g G^T for the 16 positions xi, each a packed
 * C x F GEMM operand. */
typedef struct nnc_wino nnc_wino;

/* Whether a geometry takes the Winograd path: 3x3, stride 1, no dilation, and enough channels
 * on both sides that the 16 C x F GEMMs dominate the transforms. */
int nnc_wino_applies(const nnc_conv2d_geom *g);
/* with_dw: room for the weight gradient (the backward-data instance needs none). */
nnc_wino *nnc_wino_new(int64_t C, int64_t F, int with_dw);
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
/* Image slices the pixel sum is cut into (min(N, SMALLC_SLICES)); scratch holds
 * (slices - 1) * KH*KW*C*F floats. */
#define SMALLC_SLICES 4
int nnc_smallc_slices(int64_t N);
int nnc_smallc_backward_weights(const nnc_conv2d_geom *g, const float *x, const float *dz,
                                int64_t N, float *dw, float *scratch, int nthreads);

/* Thread sharing (conv_sched.c). conv_threads: an explicit nthreads, else the process policy
 * for this much work; always 1 in a build without OpenMP. */
int conv_threads(int nthreads, double flops, int64_t units);
/* Chunked passes: fn(ctx, ch, scratch, gemm_threads) for chunks [0, nchunks). With T > 1 and
 * at least 2T chunks, threads take whole chunks (thread t on scratch + t * per, single-threaded
 * GEMMs); otherwise the chunks run in order on scratch, the GEMMs given nthreads.
 * conv_chunk_threads: how many scratch blocks that uses. */
typedef int (*conv_chunk_fn)(const void *ctx, int64_t ch, float *scratch, int gemm_threads);
int conv_chunk_threads(int64_t nchunks, int T);
int conv_run_chunks(int64_t nchunks, int T, float *scratch, size_t per, conv_chunk_fn fn,
                    const void *ctx, int nthreads);
/* Weight gradients: the image sum is cut into S slices fixed by the batch, each summed into its
 * own buffer by body(ctx, slice, b0, b1, scratch) for column blocks [b0, b1) of `blocks`. With
 * T <= S threads each takes whole slices; with T > S the threads of a slice split its blocks.
 * Then fin(ctx, i) for i in [0, nfin) (adding the slices in order, any final transform), split
 * over the threads. T must not exceed S * blocks. */
typedef int (*conv_slice_fn)(void *ctx, int64_t sl, int64_t b0, int64_t b1, float *scratch);
typedef void (*conv_fin_fn)(void *ctx, int64_t i);
int conv_run_slices(int64_t S, int64_t blocks, int T, float *scratch, size_t per,
                    conv_slice_fn body, conv_fin_fn fin, int64_t nfin, void *ctx);
#endif
