/* Direct weight-gradient kernel for convolutions with few input channels (C <= 4: the first layer on
 * images and series), any kernel size, stride, padding and dilation, F a multiple of 16.
 *
 * Why: im2col + GEMM wastes most of the work there: dW = col^T dz has M = KH*KW*C rows (9 or
 * 27 for 3x3), a poor fit for 8-row strips, and needs the im2col copy.
 * (A direct dx kernel -- per-pixel dot products over taps -- measured no faster than
 * dcol = dz W^T + col2im on Zen5, so dx keeps that path.)
 * dW: per group of 12 im2col columns k = (kh, kw, c) and 16 or 32 filters, one pass over all
 *     output pixels in order keeps 12 x (1 or 2) accumulator vectors in registers (one dz load,
 *     12 broadcasts of x per pixel). Threads split (group, filter block) items; every element is
 *     one FMA chain over the pixels of an image slice in order; the (at most 4) image slices are
 *     fixed by the batch size and their partial sums added in slice order, so results do not
 *     depend on the thread count or on the filter block width, and 2 threads get whole passes.
 * Layouts: NHWC x, HWIO dW, NHWC dz. 16-float vectors via GCC vector extensions: AVX-512 only
 * (GCC lowers them through memory under AVX2, slower than the GEMM path there). */
#include "conv_internal.h"

/* -std=c11 turns off FMA contraction; these loops are multiply-adds by design. */
#pragma GCC optimize("fp-contract=fast")

#include <string.h>

typedef float vf16 __attribute__((vector_size(64)));
typedef int vi16 __attribute__((vector_size(64)));
typedef float vf16u __attribute__((vector_size(64), aligned(4), may_alias));
#define VLD(p) ((vf16)(*(const vf16u *)(p)))
#define VST(p, v) (*(vf16u *)(p) = (v))

#define SMALLC_MAX_TAPS 64

int nnc_smallc_applies(const nnc_conv2d_geom *g) {
    return nnc_isa() == NNC_ISA_AVX512 && g->C <= 4 && g->F % 16 == 0 && g->F > 0 && g->KH * g->KW <= SMALLC_MAX_TAPS;
}

/* ---- dW ---- */

#define KG 12

/* dW rows [k0, k0 + KG) (im2col columns; offs[a] their offset from a pixel's window origin,
 * ks[a] = k or -1 past Kc), filters [f0, f0 + 16 * NVB). */
static inline __attribute__((always_inline)) void dw_item(const nnc_conv2d_geom *g,
                                                          const float *x, const float *dz,
                                                          int64_t N, int64_t k0, int64_t f0,
                                                          float *dw, const int NVB) {
    const int64_t H = g->H, W = g->W, C = g->C, F = g->F, KH = g->KH, KW = g->KW;
    const int64_t OH = g->OH, OW = g->OW, Kc = KH * KW * C;
    int64_t offs[KG], dh[KG], dwv[KG], cc[KG];
    for (int a = 0; a < KG; a++) {
        const int64_t k = k0 + a < Kc ? k0 + a : Kc - 1; /* padding columns: computed, dropped */
        const int64_t kh = k / (KW * C), kw = (k / C) % KW, c = k % C;
        dh[a] = kh * g->dh;
        dwv[a] = kw * g->dw;
        cc[a] = c;
        offs[a] = (dh[a] * W + dwv[a]) * C + c;
    }
#define DWA(a) vf16 c##a##_0 = {0}, c##a##_1 = {0};
    DWA(0) DWA(1) DWA(2) DWA(3) DWA(4) DWA(5) DWA(6) DWA(7) DWA(8) DWA(9) DWA(10) DWA(11)
#undef DWA
    /* output columns whose whole window is inside the input */
    int64_t ow_lo = 0, ow_hi = OW;
    while (ow_lo < OW && ow_lo * g->sw - g->pl < 0) ow_lo++;
    while (ow_hi > ow_lo && (ow_hi - 1) * g->sw - g->pl + (KW - 1) * g->dw >= W) ow_hi--;
    for (int64_t n = 0; n < N; n++) {
        const float *xn = x + n * H * W * C;
        for (int64_t oh = 0; oh < OH; oh++) {
            const int64_t ih0 = oh * g->sh - g->pt;
            const int row_in = ih0 >= 0 && ih0 + (KH - 1) * g->dh < H;
            const float *dzr = dz + ((n * OH + oh) * OW) * F + f0;
            for (int64_t ow = 0; ow < OW; ow++) {
                const int64_t iw0 = ow * g->sw - g->pl;
                const vf16 d0 = VLD(dzr + ow * F);
                const vf16 d1 = NVB > 1 ? VLD(dzr + ow * F + 16) : d0;
                float xv[KG];
                if (row_in && ow >= ow_lo && ow < ow_hi) {
                    const float *xb = xn + (ih0 * W + iw0) * C;
                    for (int a = 0; a < KG; a++) xv[a] = xb[offs[a]];
                } else {
                    for (int a = 0; a < KG; a++) {
                        const int64_t ih = ih0 + dh[a], iw = iw0 + dwv[a];
                        xv[a] = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? xn[(ih * W + iw) * C + cc[a]]
                                                                        : 0.f;
                    }
                }
#define DWX(a)                                                                                 \
    {                                                                                          \
        const vf16 xa = (vf16){0} + xv[a];                                                     \
        c##a##_0 += xa * d0;                                                                   \
        if (NVB > 1) c##a##_1 += xa * d1;                                                      \
    }
                DWX(0) DWX(1) DWX(2) DWX(3) DWX(4) DWX(5) DWX(6) DWX(7) DWX(8) DWX(9) DWX(10)
                DWX(11)
#undef DWX
            }
        }
    }
#define DWS(a)                                                                                 \
    if (k0 + a < Kc) {                                                                         \
        VST(dw + (k0 + a) * F + f0, c##a##_0);                                                 \
        if (NVB > 1) VST(dw + (k0 + a) * F + f0 + 16, c##a##_1);                               \
    }
    DWS(0) DWS(1) DWS(2) DWS(3) DWS(4) DWS(5) DWS(6) DWS(7) DWS(8) DWS(9) DWS(10) DWS(11)
#undef DWS
}

#if NNC_X86
NNC_TARGET_AVX512 static void dw_item_avx512(const nnc_conv2d_geom *g, const float *x,
                                             const float *dz, int64_t N, int64_t k0, int64_t f0,
                                             float *dw, int nvb) {
    if (nvb == 2) dw_item(g, x, dz, N, k0, f0, dw, 2);
    else dw_item(g, x, dz, N, k0, f0, dw, 1);
}
#endif

int nnc_smallc_slices(int64_t N) { return (int)NNC_MIN(N, SMALLC_SLICES); }

#if NNC_X86
typedef struct {
    const nnc_conv2d_geom *g;
    const float *x, *dz;
    float *dw, *scratch;
    int64_t N, S, per, fb, in_img, out_img, Kc, F;
    int nvb;
} smallc_job;

static void smallc_item(void *p, int64_t it, int thread) {
    const smallc_job *j = (const smallc_job *)p;
    const int64_t s = it / j->per, r = it % j->per;
    const int64_t n0 = j->N * s / j->S, n1 = j->N * (s + 1) / j->S;
    (void)thread;
    dw_item_avx512(j->g, j->x + n0 * j->in_img, j->dz + n0 * j->out_img, n1 - n0, (r / j->fb) * KG,
                   (r % j->fb) * 16 * j->nvb, s ? j->scratch + (s - 1) * j->Kc * j->F : j->dw,
                   j->nvb);
}

/* dw += the other slices, in slice order */
static void smallc_sum(void *p, int64_t i0, int64_t i1) {
    const smallc_job *j = (const smallc_job *)p;
    const int64_t KF = j->Kc * j->F;
    for (int64_t i = i0; i < i1; i++)
        for (int64_t s = 1; s < j->S; s++) j->dw[i] += j->scratch[(s - 1) * KF + i];
}
#endif

int nnc_smallc_backward_weights(const nnc_conv2d_geom *g, const float *x, const float *dz,
                                int64_t N, float *dw, float *scratch, int nthreads) {
#if NNC_X86
    const int64_t Kc = g->KH * g->KW * g->C, F = g->F;
    const int64_t groups = (Kc + KG - 1) / KG;
    /* The pixel sum is cut into S image slices fixed by the batch size alone (slice 0 into dw,
     * slice s into scratch, added in slice order), so threads get whole passes without ever
     * splitting a sum in a thread-count-dependent way. */
    const int64_t S = nnc_smallc_slices(N);
    const double flops = 2.0 * N * g->OH * g->OW * Kc * F;
    int T = conv_threads(nthreads, flops, S * groups * (F / 16));
    /* 32-filter items unless that leaves a thread idle (the width does not change results) */
    const int nvb = (F % 32 == 0 && (T <= 1 || S * groups * (F / 32) >= 2 * T)) ? 2 : 1;
    const int64_t fb = F / (16 * nvb);
    smallc_job j = {g, x, dz, dw, scratch, N, S, groups * fb, fb, g->H * g->W * g->C,
                    g->OH * g->OW * F, Kc, F, nvb};
    nnc_parallel_run(T, S * j.per, smallc_item, &j);
    if (S > 1) nnc_parallel_ranges(Kc * F, 64, T, smallc_sum, &j);
    return 0;
#else
    (void)g; (void)x; (void)dz; (void)N; (void)dw; (void)scratch; (void)nthreads;
    return NNC_E_ARG; /* nnc_smallc_applies() is false */
#endif
}
