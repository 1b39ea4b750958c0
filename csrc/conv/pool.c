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

/* v replaces the running maximum m: when larger, or when it is the first NaN (NaN propagates
 * as in NumPy and PyTorch, whatever its position in the window). */
#define NAN_MAX_WINS(v, m) ((v) > (m) || ((v) != (v) && (m) == (m)))

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
                            const int gt = NAN_MAX_WINS(xp[c], yo[c]);
                            yo[c] = gt ? xp[c] : yo[c];
                            ao[c] = gt ? pos : ao[c];
                        }
                    } else {
                        for (int64_t c = 0; c < C; c++) yo[c] = NAN_MAX_WINS(xp[c], yo[c]) ? xp[c] : yo[c];
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
                for (int64_t c = 0; c < C; c++) yn[c] = NAN_MAX_WINS(xs[c], yn[c]) ? xs[c] : yn[c];
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

static int pool_threads(int nthreads, double work, int64_t units) {
    int T = conv_threads(nthreads, work, units);
    if (T > units) T = (int)(units > 0 ? units : 1);
    return T;
}

/* ---------------- public entry points ---------------- */

/* One job record for every pass; each pass runs its ranges (of rows or of images) on the pool. */
typedef struct {
    const nnc_pool2d_geom *g;
    const float *x, *y, *dy;
    float *out;
    uint8_t *am;
    const uint8_t *cam;
    int is_max;
    int64_t N, S, C, img;
    int64_t H, W, OH, OW, t, b, l, r; /* zero padding */
    float inv;
    void (*max_fwd)(const nnc_pool2d_geom *, const float *, float *, uint8_t *, int64_t, int64_t);
    void (*max_bwd)(const nnc_pool2d_geom *, const float *, const uint8_t *, float *, int64_t,
                    int64_t);
    void (*avg)(const nnc_pool2d_geom *, const float *, float *, int64_t, int64_t);
    void (*gfwd)(int, const float *, int64_t, int64_t, float *, int64_t, int64_t);
} pool_job;

static void maxpool_fwd_range(void *p, int64_t a, int64_t b) {
    const pool_job *j = (const pool_job *)p;
    j->max_fwd(j->g, j->x, j->out, j->am, a, b);
}

int nnc_maxpool2d_forward(const nnc_pool2d_geom *g, const float *x, int64_t N, float *y,
                          uint8_t *argmax, int nthreads) {
    const int64_t rows = N * g->OH;
    int T = pool_threads(nthreads, 1.0 * rows * g->OW * g->C * g->PH * g->PW, rows);
    pool_job j = {.g = g, .x = x, .out = y, .am = argmax, .max_fwd = PICK_MAX(maxpool_fwd_rows)};
    nnc_parallel_ranges(rows, 1, T, maxpool_fwd_range, &j);
    return 0;
}

/* Backward passes take whole images (rows of different images never share dx). */
static void maxpool_bwd_range(void *p, int64_t a, int64_t b) {
    const pool_job *j = (const pool_job *)p;
    memset(j->out + a * j->img, 0, (size_t)((b - a) * j->img) * sizeof(float));
    j->max_bwd(j->g, j->dy, j->cam, j->out, a * j->g->OH, b * j->g->OH);
}

int nnc_maxpool2d_backward(const nnc_pool2d_geom *g, const float *dy, const uint8_t *argmax,
                           int64_t N, float *dx, int nthreads) {
    const int64_t img = g->H * g->W * g->C;
    pool_job j = {.g = g, .dy = dy, .cam = argmax, .out = dx, .img = img,
                  .max_bwd = PICK_MAX(maxpool_bwd_rows)};
    nnc_parallel_ranges(N, 1, pool_threads(nthreads, 1.0 * N * img * 2, N), maxpool_bwd_range, &j);
    return 0;
}

static void avgpool_fwd_range(void *p, int64_t a, int64_t b) {
    const pool_job *j = (const pool_job *)p;
    j->avg(j->g, j->x, j->out, a, b);
}

int nnc_avgpool2d_forward(const nnc_pool2d_geom *g, const float *x, int64_t N, float *y,
                          int nthreads) {
    const int64_t rows = N * g->OH;
    int T = pool_threads(nthreads, 1.0 * rows * g->OW * g->C * g->PH * g->PW, rows);
    pool_job j = {.g = g, .x = x, .out = y, .avg = PICK(avgpool_fwd_rows)};
    nnc_parallel_ranges(rows, 1, T, avgpool_fwd_range, &j);
    return 0;
}

static void avgpool_bwd_range(void *p, int64_t a, int64_t b) {
    const pool_job *j = (const pool_job *)p;
    memset(j->out + a * j->img, 0, (size_t)((b - a) * j->img) * sizeof(float));
    j->avg(j->g, j->dy, j->out, a * j->g->OH, b * j->g->OH);
}

int nnc_avgpool2d_backward(const nnc_pool2d_geom *g, const float *dy, int64_t N, float *dx,
                           int nthreads) {
    const int64_t img = g->H * g->W * g->C;
    pool_job j = {.g = g, .dy = dy, .out = dx, .img = img, .avg = PICK(avgpool_bwd_rows)};
    nnc_parallel_ranges(N, 1, pool_threads(nthreads, 1.0 * N * img * 2, N), avgpool_bwd_range, &j);
    return 0;
}

static void gpool_fwd_range(void *p, int64_t a, int64_t b) {
    const pool_job *j = (const pool_job *)p;
    j->gfwd(j->is_max, j->x, j->S, j->C, j->out, a, b);
}

static int gpool_forward(int is_max, const float *x, int64_t N, int64_t S, int64_t C, float *y,
                         int nthreads) {
    pool_job j = {.is_max = is_max, .x = x, .S = S, .C = C, .out = y, .gfwd = PICK(gpool_fwd_imgs)};
    nnc_parallel_ranges(N, 1, pool_threads(nthreads, 1.0 * N * S * C, N), gpool_fwd_range, &j);
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

static void gavg_bwd_range(void *p, int64_t a, int64_t b) {
    const pool_job *j = (const pool_job *)p;
    const int64_t S = j->S, C = j->C;
    for (int64_t n = a; n < b; n++)
        for (int64_t s = 0; s < S; s++) {
            float *d = j->out + (n * S + s) * C;
            const float *g = j->dy + n * C;
            for (int64_t c = 0; c < C; c++) d[c] = g[c] * j->inv;
        }
}

int nnc_global_avgpool_backward(const float *dy, int64_t N, int64_t S, int64_t C, float *dx,
                                int nthreads) {
    pool_job j = {.dy = dy, .S = S, .C = C, .out = dx, .inv = 1.f / (float)S};
    nnc_parallel_ranges(N, 1, pool_threads(nthreads, 1.0 * N * S * C, N), gavg_bwd_range, &j);
    return 0;
}

static void gmax_bwd_range(void *p, int64_t a, int64_t b) {
    const pool_job *j = (const pool_job *)p;
    const int64_t S = j->S, C = j->C;
    for (int64_t n = a; n < b; n++) {
        const float *xn = j->x + n * S * C, *yn = j->y + n * C, *gn = j->dy + n * C;
        float *dn = j->out + n * S * C;
        memset(dn, 0, (size_t)(S * C) * sizeof(float));
        for (int64_t c = 0; c < C; c++) {
            int64_t s = 0;
            const int nan = yn[c] != yn[c]; /* the forward kept the first NaN */
            while (s < S - 1 && !(nan ? xn[s * C + c] != xn[s * C + c] : xn[s * C + c] == yn[c])) s++;
            dn[s * C + c] = gn[c];
        }
    }
}

int nnc_global_maxpool_backward(const float *x, const float *y, const float *dy, int64_t N,
                                int64_t S, int64_t C, float *dx, int nthreads) {
    pool_job j = {.x = x, .y = y, .dy = dy, .S = S, .C = C, .out = dx};
    nnc_parallel_ranges(N, 1, pool_threads(nthreads, 1.0 * N * S * C, N), gmax_bwd_range, &j);
    return 0;
}

static void zeropad_fwd_range(void *p, int64_t n0, int64_t n1) {
    const pool_job *j = (const pool_job *)p;
    const int64_t H = j->H, W = j->W, C = j->C, OW = j->OW, t = j->t, b = j->b, l = j->l,
                  r = j->r;
    for (int64_t n = n0; n < n1; n++) {
        float *yn = j->out + n * j->OH * OW * C;
        const float *xn = j->x + n * H * W * C;
        memset(yn, 0, (size_t)(t * OW * C) * sizeof(float));
        for (int64_t h = 0; h < H; h++) {
            float *yr = yn + (t + h) * OW * C;
            memset(yr, 0, (size_t)(l * C) * sizeof(float));
            memcpy(yr + l * C, xn + h * W * C, (size_t)(W * C) * sizeof(float));
            memset(yr + (l + W) * C, 0, (size_t)(r * C) * sizeof(float));
        }
        memset(yn + (t + H) * OW * C, 0, (size_t)(b * OW * C) * sizeof(float));
    }
}

int nnc_zeropad2d_forward(const float *x, int64_t N, int64_t H, int64_t W, int64_t C, int64_t t,
                          int64_t b, int64_t l, int64_t r, float *y, int nthreads) {
    const int64_t OH = t + H + b, OW = l + W + r;
    pool_job j = {.x = x, .out = y, .C = C, .H = H, .W = W, .OH = OH, .OW = OW, .t = t, .b = b,
                  .l = l, .r = r};
    nnc_parallel_ranges(N, 1, pool_threads(nthreads, 1.0 * N * OH * OW * C, N), zeropad_fwd_range,
                        &j);
    return 0;
}

static void zeropad_bwd_range(void *p, int64_t n0, int64_t n1) {
    const pool_job *j = (const pool_job *)p;
    const int64_t H = j->H, W = j->W, C = j->C;
    for (int64_t n = n0; n < n1; n++)
        for (int64_t h = 0; h < H; h++)
            memcpy(j->out + (n * H + h) * W * C,
                   j->dy + ((n * j->OH + j->t + h) * j->OW + j->l) * C,
                   (size_t)(W * C) * sizeof(float));
}

int nnc_zeropad2d_backward(const float *dy, int64_t N, int64_t H, int64_t W, int64_t C,
                           int64_t t, int64_t b, int64_t l, int64_t r, float *dx, int nthreads) {
    const int64_t OH = t + H + b, OW = l + W + r;
    pool_job j = {.dy = dy, .out = dx, .C = C, .H = H, .W = W, .OH = OH, .OW = OW, .t = t,
                  .l = l};
    nnc_parallel_ranges(N, 1, pool_threads(nthreads, 1.0 * N * H * W * C, N), zeropad_bwd_range,
                        &j);
    return 0;
}
