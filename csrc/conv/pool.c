/* Max/average pooling (1-D as H = 1), global pooling and zero padding (DESIGN.md section 4).
 *
 * Layout: NHWC, so every inner loop runs over C contiguous floats; the loop bodies are written
 * once as always_inline C and instantiated for generic/AVX2/AVX-512 with target attributes so
 * the compiler vectorises them at each width (dispatch on nnc_isa() per call).
 * Max pooling stores the first maximum's window position as one byte per output (oneDNN's
 * workspace rule); padded positions never win. Average pooling divides by the count of real
 * elements (Keras). Backward passes are scatters over whole images (threads over images), so
 * writes never collide and the sum order is fixed: bitwise identical for any thread count. Memory-bound: no blocking beyond rows. */
#include "conv_internal.h"

#include <float.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* ---------------- bodies ---------------- */

ALWAYS_INLINE void maxpool_fwd_rows(const nnc_pool2d_geom *g, const float *x, float *y,
                                    uint8_t *am, int64_t r0, int64_t r1) {
    /* rows r = n*OH + oh */
    const int64_t H = g->H, W = g->W, C = g->C;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / g->OH, oh = r % g->OH;
        const float *xn = x + n * H * W * C;
        const int64_t ih0 = oh * g->sh - g->pt;
        const int64_t kh0 = ih0 < 0 ? -ih0 : 0, kh1 = NNC_MIN(g->PH, H - ih0);
        for (int64_t ow = 0; ow < g->OW; ow++) {
            float *yo = y + (r * g->OW + ow) * C;
            uint8_t *ao = am ? am + (r * g->OW + ow) * C : NULL;
            const int64_t iw0 = ow * g->sw - g->pl;
            const int64_t kw0 = iw0 < 0 ? -iw0 : 0, kw1 = NNC_MIN(g->PW, W - iw0);
            int first = 1;
            for (int64_t kh = kh0; kh < kh1; kh++)
                for (int64_t kw = kw0; kw < kw1; kw++) {
                    const float *xp = xn + ((ih0 + kh) * W + iw0 + kw) * C;
                    const uint8_t pos = (uint8_t)(kh * g->PW + kw);
                    if (first) {
                        for (int64_t c = 0; c < C; c++) yo[c] = xp[c];
                        if (ao)
                            for (int64_t c = 0; c < C; c++) ao[c] = pos;
                        first = 0;
                    } else if (ao) {
                        for (int64_t c = 0; c < C; c++) {
                            const int gt = xp[c] > yo[c];
                            yo[c] = gt ? xp[c] : yo[c];
                            ao[c] = gt ? pos : ao[c];
                        }
                    } else {
                        for (int64_t c = 0; c < C; c++) yo[c] = xp[c] > yo[c] ? xp[c] : yo[c];
                    }
                }
        }
    }
}

/* Adds the selected dy into dx for output rows [r0, r1) (dx zeroed by the caller). */
ALWAYS_INLINE void maxpool_bwd_rows(const nnc_pool2d_geom *g, const float *dy, const uint8_t *am,
                                    float *dx, int64_t r0, int64_t r1) {
    const int64_t H = g->H, W = g->W, C = g->C;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / g->OH, oh = r % g->OH;
        float *dxn = dx + n * H * W * C;
        const int64_t ih0 = oh * g->sh - g->pt;
        const int64_t kh0 = ih0 < 0 ? -ih0 : 0, kh1 = NNC_MIN(g->PH, H - ih0);
        for (int64_t ow = 0; ow < g->OW; ow++) {
            const float *d = dy + (r * g->OW + ow) * C;
            const uint8_t *ao = am + (r * g->OW + ow) * C;
            const int64_t iw0 = ow * g->sw - g->pl;
            const int64_t kw0 = iw0 < 0 ? -iw0 : 0, kw1 = NNC_MIN(g->PW, W - iw0);
            for (int64_t kh = kh0; kh < kh1; kh++)
                for (int64_t kw = kw0; kw < kw1; kw++) {
                    float *xp = dxn + ((ih0 + kh) * W + iw0 + kw) * C;
                    const uint8_t pos = (uint8_t)(kh * g->PW + kw);
                    for (int64_t c = 0; c < C; c++) xp[c] += ao[c] == pos ? d[c] : 0.f;
                }
        }
    }
}

ALWAYS_INLINE void avgpool_fwd_rows(const nnc_pool2d_geom *g, const float *x, float *y,
                                    int64_t r0, int64_t r1) {
    const int64_t H = g->H, W = g->W, C = g->C;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / g->OH, oh = r % g->OH;
        const float *xn = x + n * H * W * C;
        const int64_t ih0 = oh * g->sh - g->pt;
        const int64_t kh0 = ih0 < 0 ? -ih0 : 0, kh1 = NNC_MIN(g->PH, H - ih0);
        for (int64_t ow = 0; ow < g->OW; ow++) {
            float *yo = y + (r * g->OW + ow) * C;
            const int64_t iw0 = ow * g->sw - g->pl;
            const int64_t kw0 = iw0 < 0 ? -iw0 : 0, kw1 = NNC_MIN(g->PW, W - iw0);
            for (int64_t c = 0; c < C; c++) yo[c] = 0.f;
            for (int64_t kh = kh0; kh < kh1; kh++)
                for (int64_t kw = kw0; kw < kw1; kw++) {
                    const float *xp = xn + ((ih0 + kh) * W + iw0 + kw) * C;
                    for (int64_t c = 0; c < C; c++) yo[c] += xp[c];
                }
            const float inv = 1.f / (float)((kh1 - kh0) * (kw1 - kw0));
            for (int64_t c = 0; c < C; c++) yo[c] *= inv;
        }
    }
}

ALWAYS_INLINE void avgpool_bwd_rows(const nnc_pool2d_geom *g, const float *dy, float *dx,
                                    int64_t r0, int64_t r1) {
    const int64_t H = g->H, W = g->W, C = g->C;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / g->OH, oh = r % g->OH;
        float *dxn = dx + n * H * W * C;
        const int64_t ih0 = oh * g->sh - g->pt;
        const int64_t kh0 = ih0 < 0 ? -ih0 : 0, kh1 = NNC_MIN(g->PH, H - ih0);
        for (int64_t ow = 0; ow < g->OW; ow++) {
            const float *d = dy + (r * g->OW + ow) * C;
            const int64_t iw0 = ow * g->sw - g->pl;
            const int64_t kw0 = iw0 < 0 ? -iw0 : 0, kw1 = NNC_MIN(g->PW, W - iw0);
            const float inv = 1.f / (float)((kh1 - kh0) * (kw1 - kw0));
            for (int64_t kh = kh0; kh < kh1; kh++)
                for (int64_t kw = kw0; kw < kw1; kw++) {
                    float *xp = dxn + ((ih0 + kh) * W + iw0 + kw) * C;
                    for (int64_t c = 0; c < C; c++) xp[c] += d[c] * inv;
                }
        }
    }
}

ALWAYS_INLINE void gpool_fwd_imgs(int is_max, const float *x, int64_t S, int64_t C, float *y,
                                  int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
        const float *xn = x + n * S * C;
        float *yn = y + n * C;
        for (int64_t c = 0; c < C; c++) yn[c] = xn[c];
        for (int64_t s = 1; s < S; s++) {
            const float *xs = xn + s * C;
            if (is_max)
                for (int64_t c = 0; c < C; c++) yn[c] = xs[c] > yn[c] ? xs[c] : yn[c];
            else
                for (int64_t c = 0; c < C; c++) yn[c] += xs[c];
        }
        if (!is_max) {
            const float inv = 1.f / (float)S;
            for (int64_t c = 0; c < C; c++) yn[c] *= inv;
        }
    }
}

/* ---------------- ISA instances ---------------- */

#define INSTANCES(NAME, PARAMS, ARGS)                                                          \
    static void NAME##__generic PARAMS { NAME ARGS; }                                          \
    NNC_TARGET_AVX2 static void NAME##__avx2 PARAMS { NAME ARGS; }                             \
    NNC_TARGET_AVX512 static void NAME##__avx512 PARAMS { NAME ARGS; }

INSTANCES(maxpool_fwd_rows,
          (const nnc_pool2d_geom *g, const float *x, float *y, uint8_t *am, int64_t r0, int64_t r1),
          (g, x, y, am, r0, r1))
INSTANCES(maxpool_bwd_rows,
          (const nnc_pool2d_geom *g, const float *dy, const uint8_t *am, float *dx, int64_t r0,
           int64_t r1),
          (g, dy, am, dx, r0, r1))
INSTANCES(avgpool_fwd_rows,
          (const nnc_pool2d_geom *g, const float *x, float *y, int64_t r0, int64_t r1),
          (g, x, y, r0, r1))
INSTANCES(avgpool_bwd_rows,
          (const nnc_pool2d_geom *g, const float *dy, float *dx, int64_t r0, int64_t r1),
          (g, dy, dx, r0, r1))
INSTANCES(gpool_fwd_imgs,
          (int is_max, const float *x, int64_t S, int64_t C, float *y, int64_t n0, int64_t n1),
          (is_max, x, S, C, y, n0, n1))

#if NNC_X86
#define PICK(NAME)                                                                             \
    (nnc_isa() == NNC_ISA_AVX512 ? NAME##__avx512                                              \
                                 : nnc_isa() == NNC_ISA_AVX2 ? NAME##__avx2 : NAME##__generic)
#else
#define PICK(NAME) NAME##__generic
#endif

/* GCC 12 does not vectorise the mixed float/uint8 argmax loops at 512 bits (measured 2 ms vs
 * 0.16 ms for 26x26x32x32), so the AVX-512 ISA uses the 256-bit instances for those two. */
#if NNC_X86
#define PICK_MAX(NAME) (nnc_isa() >= NNC_ISA_AVX2 ? NAME##__avx2 : NAME##__generic)
#else
#define PICK_MAX(NAME) NAME##__generic
#endif

/* Static split of [0, n) into T contiguous ranges. */
#define SPLIT(n, T, t, a, b)                                                                   \
    int64_t a = (n) * (t) / (T), b = (n) * ((t) + 1) / (T)

#ifdef _OPENMP
#include <omp.h>
#define PAR_RANGES(T, n, a, b, ...)                                                           \
    do {                                                                                       \
        if ((T) > 1) {                                                                         \
            _Pragma("omp parallel num_threads(T)") {                                           \
                int t_ = omp_get_thread_num(), T_ = omp_get_num_threads();                     \
                SPLIT(n, T_, t_, a, b);                                                        \
                __VA_ARGS__;                                                                          \
            }                                                                                  \
        } else {                                                                               \
            int64_t a = 0, b = (n);                                                            \
            __VA_ARGS__;                                                                              \
        }                                                                                      \
    } while (0)
#else
#define PAR_RANGES(T, n, a, b, ...)                                                           \
    do {                                                                                       \
        int64_t a = 0, b = (n);                                                                \
        (void)(T);                                                                             \
        __VA_ARGS__;                                                                           \
    } while (0)
#endif

static int pool_threads(int nthreads, double work, int64_t units) {
    int T = conv_threads(nthreads, work, units);
    if (T > units) T = (int)(units > 0 ? units : 1);
    return T;
}

/* ---------------- public entry points ---------------- */

int nnc_maxpool2d_forward(const nnc_pool2d_geom *g, const float *x, int64_t N, float *y,
                          uint8_t *argmax, int nthreads) {
    const int64_t rows = N * g->OH;
    int T = pool_threads(nthreads, 1.0 * rows * g->OW * g->C * g->PH * g->PW, rows);
    void (*fn)(const nnc_pool2d_geom *, const float *, float *, uint8_t *, int64_t, int64_t) =
        PICK_MAX(maxpool_fwd_rows);
    PAR_RANGES(T, rows, a, b, fn(g, x, y, argmax, a, b));
    return 0;
}

int nnc_maxpool2d_backward(const nnc_pool2d_geom *g, const float *dy, const uint8_t *argmax,
                           int64_t N, float *dx, int nthreads) {
    const int64_t img = g->H * g->W * g->C;
    void (*fn)(const nnc_pool2d_geom *, const float *, const uint8_t *, float *, int64_t,
               int64_t) = PICK_MAX(maxpool_bwd_rows);
    /* Threads over whole images (rows of different images never share dx). */
    int T = pool_threads(nthreads, 1.0 * N * img * 2, N);
    PAR_RANGES(T, N, a, b, {
        memset(dx + a * img, 0, (size_t)((b - a) * img) * sizeof(float));
        fn(g, dy, argmax, dx, a * g->OH, b * g->OH);
    });
    return 0;
}

int nnc_avgpool2d_forward(const nnc_pool2d_geom *g, const float *x, int64_t N, float *y,
                          int nthreads) {
    const int64_t rows = N * g->OH;
    int T = pool_threads(nthreads, 1.0 * rows * g->OW * g->C * g->PH * g->PW, rows);
    void (*fn)(const nnc_pool2d_geom *, const float *, float *, int64_t, int64_t) =
        PICK(avgpool_fwd_rows);
    PAR_RANGES(T, rows, a, b, fn(g, x, y, a, b));
    return 0;
}

int nnc_avgpool2d_backward(const nnc_pool2d_geom *g, const float *dy, int64_t N, float *dx,
                           int nthreads) {
    const int64_t img = g->H * g->W * g->C;
    void (*fn)(const nnc_pool2d_geom *, const float *, float *, int64_t, int64_t) =
        PICK(avgpool_bwd_rows);
    int T = pool_threads(nthreads, 1.0 * N * img * 2, N);
    PAR_RANGES(T, N, a, b, {
        memset(dx + a * img, 0, (size_t)((b - a) * img) * sizeof(float));
        fn(g, dy, dx, a * g->OH, b * g->OH);
    });
    return 0;
}

static int gpool_forward(int is_max, const float *x, int64_t N, int64_t S, int64_t C, float *y,
                         int nthreads) {
    int T = pool_threads(nthreads, 1.0 * N * S * C, N);
    void (*fn)(int, const float *, int64_t, int64_t, float *, int64_t, int64_t) =
        PICK(gpool_fwd_imgs);
    PAR_RANGES(T, N, a, b, fn(is_max, x, S, C, y, a, b));
    return 0;
}

int nnc_global_avgpool_forward(const float *x, int64_t N, int64_t S, int64_t C, float *y,
                               int nthreads) {
    return gpool_forward(0, x, N, S, C, y, nthreads);
}

int nnc_global_maxpool_forward(const float *x, int64_t N, int64_t S, int64_t C, float *y,
                               int nthreads) {
    return gpool_forward(1, x, N, S, C, y, nthreads);
}

int nnc_global_avgpool_backward(const float *dy, int64_t N, int64_t S, int64_t C, float *dx,
                                int nthreads) {
    int T = pool_threads(nthreads, 1.0 * N * S * C, N);
    const float inv = 1.f / (float)S;
    PAR_RANGES(T, N, a, b, {
        for (int64_t n = a; n < b; n++)
            for (int64_t s = 0; s < S; s++) {
                float *d = dx + (n * S + s) * C;
                const float *g = dy + n * C;
                for (int64_t c = 0; c < C; c++) d[c] = g[c] * inv;
            }
    });
    return 0;
}

int nnc_global_maxpool_backward(const float *x, const float *y, const float *dy, int64_t N,
                                int64_t S, int64_t C, float *dx, int nthreads) {
    int T = pool_threads(nthreads, 1.0 * N * S * C, N);
    PAR_RANGES(T, N, a, b, {
        for (int64_t n = a; n < b; n++) {
            const float *xn = x + n * S * C, *yn = y + n * C, *gn = dy + n * C;
            float *dn = dx + n * S * C;
            memset(dn, 0, (size_t)(S * C) * sizeof(float));
            for (int64_t c = 0; c < C; c++) {
                int64_t s = 0;
                while (s < S - 1 && !(xn[s * C + c] == yn[c])) s++;
                dn[s * C + c] = gn[c];
            }
        }
    });
    return 0;
}

int nnc_zeropad2d_forward(const float *x, int64_t N, int64_t H, int64_t W, int64_t C, int64_t t,
                          int64_t b, int64_t l, int64_t r, float *y, int nthreads) {
    const int64_t OH = t + H + b, OW = l + W + r;
    int T = pool_threads(nthreads, 1.0 * N * OH * OW * C, N);
    PAR_RANGES(T, N, n0, n1, {
        for (int64_t n = n0; n < n1; n++) {
            float *yn = y + n * OH * OW * C;
            const float *xn = x + n * H * W * C;
            memset(yn, 0, (size_t)(t * OW * C) * sizeof(float));
            for (int64_t h = 0; h < H; h++) {
                float *yr = yn + (t + h) * OW * C;
                memset(yr, 0, (size_t)(l * C) * sizeof(float));
                memcpy(yr + l * C, xn + h * W * C, (size_t)(W * C) * sizeof(float));
                memset(yr + (l + W) * C, 0, (size_t)(r * C) * sizeof(float));
            }
            memset(yn + (t + H) * OW * C, 0, (size_t)(b * OW * C) * sizeof(float));
        }
    });
    return 0;
}

int nnc_zeropad2d_backward(const float *dy, int64_t N, int64_t H, int64_t W, int64_t C,
                           int64_t t, int64_t b, int64_t l, int64_t r, float *dx, int nthreads) {
    const int64_t OH = t + H + b, OW = l + W + r;
    int T = pool_threads(nthreads, 1.0 * N * H * W * C, N);
    PAR_RANGES(T, N, n0, n1, {
        for (int64_t n = n0; n < n1; n++)
            for (int64_t h = 0; h < H; h++)
                memcpy(dx + (n * H + h) * W * C, dy + ((n * OH + t + h) * OW + l) * C,
                       (size_t)(W * C) * sizeof(float));
    });
    return 0;
}
