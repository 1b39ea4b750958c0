/* Internal to the layer nodes of nnc_layers.h: per-ISA kernels and the counter hash.
 * The kernels are plain C loops (lyr_kern.h) compiled three times, under no target attribute,
 * NNC_TARGET_AVX2 and NNC_TARGET_AVX512, and left to the auto-vectoriser: they are streaming
 * loops (per-channel FMAs, double accumulators per channel) where intrinsics would gain
 * little. -std=c11 keeps fp-contract off, so the three builds give the same numbers. */
#ifndef NNCORE_ENGINE_LYR_INTERNAL_H
#define NNCORE_ENGINE_LYR_INTERNAL_H
#include "../common/internal.h"
#include "../elem/vmath.h"

typedef struct {
    /* m[i] = keep(j0 + i); y[i] = keep ? x[i]*scale : 0 (x, y may be NULL: mask only) */
    void (*drop_fwd)(const float *x, float *y, uint8_t *m, int64_t n, uint32_t j0, uint32_t klo,
                     uint32_t khi, uint32_t thr, float scale);
    /* y[i] = m[i] ? x[i]*scale : 0 */
    void (*mask_mul)(const float *x, const uint8_t *m, float *y, int64_t n, float scale);
    /* acc[c] = sum_r x[r,c] (double, rows in order) */
    void (*col_sum)(const float *x, int64_t rows, int64_t C, double *acc);
    /* acc[c] = sum_r (x[r,c] - mean[c])^2 */
    void (*col_sqdev)(const float *x, int64_t rows, int64_t C, const double *mean, double *acc);
    /* y[r,c] = x[r,c]*a[c] + b[c] */
    void (*col_affine)(const float *x, float *y, int64_t rows, int64_t C, const float *a,
                       const float *b);
    /* y[r,c] = (x[r,c] - m[c]) / s[c] */
    void (*col_standardize)(const float *x, float *y, int64_t rows, int64_t C, const float *m,
                            const float *s);
    /* sdy[c] = sum_r dy, sdyx[c] = sum_r dy*(x-mean[c])*inv[c] */
    void (*bn_bwd_sums)(const float *x, const float *dy, int64_t rows, int64_t C,
                        const float *mean, const float *inv, double *sdy, double *sdyx);
    /* dx = A[c]*dy + B[c]*(x - M[c]) + D[c] (x - M: no cancellation for large means) */
    void (*bn_dx)(const float *x, const float *dy, float *dx, int64_t rows, int64_t C,
                  const float *A, const float *B, const float *M, const float *D);
    /* one LayerNorm row: mean and inv = 1/sqrt(var+eps) (double inside), y = (x-mean)*inv*g + b
     * (g, b may be NULL) */
    void (*ln_fwd_row)(const float *x, float *y, int64_t C, float eps, const float *g,
                       const float *b, float *mean, float *inv);
    /* one LayerNorm row backward: dx = inv*(gd - mean(gd) - xh*mean(gd*xh)), gd = dy*g (g: C
     * floats, ones when the layer has no scale) */
    void (*ln_bwd_row)(const float *x, const float *dy, float *dx, int64_t C, const float *g,
                       float mean, float inv);
    /* sdy[c] += dy, sdyx[c] += dy*xhat over rows, xhat from per-row mean/inv */
    void (*ln_bwd_sums)(const float *x, const float *dy, int64_t rows, int64_t C,
                        const float *mean, const float *inv, double *sdy, double *sdyx);
} lyr_kernels;

/* Kernels for the ISA in use now (tests switch ISA at run time). */
const lyr_kernels *lyr_k(void);

static inline uint64_t lyr_splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* Key of one sample's mask at one step. */
static inline uint64_t lyr_key(uint64_t seed, uint64_t step, uint64_t sample) {
    return lyr_splitmix64(lyr_splitmix64(seed ^ lyr_splitmix64(step)) + sample);
}

/* 32-bit mixer (lowbias32): vectorises with 32-bit multiplies on AVX2/AVX-512. */
static inline uint32_t lyr_mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static inline uint32_t lyr_hash(uint32_t j, uint32_t klo, uint32_t khi) {
    return lyr_mix32(lyr_mix32(j ^ klo) + khi);
}

/* Rows per reduction chunk: partial sums per chunk, combined in chunk order, so the result
 * does not depend on the number of threads. */
#define LYR_CHUNK 128

#endif
