/* Conv2D forward, backward-data and backward-weights (DESIGN.md section 3).
 *
 * Layout: NHWC activations, HWIO kernels. Viewed row-major, HWIO is the GEMM B matrix
 * [Kc = KH*KW*C x F], and the GEMM output [P = N*OH*OW x F] is NHWC already.
 * Forward: 1x1/stride 1/no padding is one GEMM on x viewed as [N*H*W x C]; undilated kernels
 * with >= 16 channels read x in place (implicit GEMM: one segment per kernel row, blocks of
 * output rows per call, threads over whole blocks); otherwise im2col of a chunk of output pixels
 * (at most ~128 KB, a slice of L2, so the GEMM streams its A rows from L2) followed by a GEMM
 * against the pre-packed weights. Bias and activation are in the epilogue. With enough chunks,
 * threads take whole chunks (per-thread scratch, shared packed B); otherwise the chunks run in
 * order and the GEMM splits N. Chunks and blocks never depend on the thread count, so results
 * are bitwise identical for any thread count.
 * Backward data: stride 1 is the forward conv of dz with the flipped, channel-transposed kernel
 * W' (packed once per weight change); stride > 1 is dcol = dz * W^T then col2im, threads over
 * whole images so writes never collide; col2im adds one KW*C run per kernel row where it can
 * (one input channel: dcolT = W dz^T per image, added a whole output row per tap).
 * Backward weights: dW = sum over chunks of col(x)^T dz, chunks in order within each of
 * min(N, 2) image slices fixed by the batch (partials added in slice order); threads take whole
 * slices, or split a slice's dW columns -- never a sum in a thread-count-dependent way.
 * Special paths: 3x3 stride-1 undilated convs with >= 16 channels in and out run Winograd
 * F(2x2, 3x3) for all three passes (winograd.c), and stride-2 ones a folded F(2, 2) variant
 * (winograd_s2.c); C <= 4 takes a direct dW kernel under AVX-512
 * (smallc.c). nnc_conv2d_set_winograd(0) switches both off (tests compare the paths). */
#include "conv_internal.h"

#include <string.h>

struct nnc_conv2d {
    nnc_conv2d_geom g;
    nnc_conv2d_geom gb;   /* stride 1: backward data as a forward conv of dz */
    int64_t Kc;           /* KH*KW*C */
    int pointwise;        /* 1x1, stride 1, no padding */
    int stride1;          /* backward data through gb (flipped kernel) */
    int64_t rows_fwd, rows_bwd, rows_dw, rows_col2im;
    nnc_packed *wp;       /* W  [Kc x F] */
    nnc_packed *wbp;      /* stride 1: W' [KH*KW*F x C]; else W^T [F x Kc] */
    float *wflip;         /* W' staging for packing */
    const float *w;       /* weights last given to set_weights */
    int bwd_dirty;
    float *scratch;
    size_t scratch_n;     /* floats */
    nnc_wino *wino;       /* Winograd forward (winograd.c), NULL where it does not apply */
    nnc_wino *winob;      /* Winograd backward data (forward conv gb of dz) */
    nnc_wino2 *wino2;     /* stride-2 Winograd, all passes (winograd_s2.c) */
};

/* Winograd and the small-C direct dW on/off for the whole process (tests compare them
 * with the im2col path). */
static volatile int g_wino_on = 1;
void nnc_conv2d_set_winograd(int on) { g_wino_on = on != 0; }
int nnc_conv2d_get_winograd(void) { return g_wino_on; }

static int64_t chunk_rows(int64_t k, int64_t bytes) {
    /* Rows whose k-float rows fit in `bytes`, a multiple of 24 (any GEMM MR of 4/6/8/12). */
    int64_t r = bytes / (4 * (k > 0 ? k : 1));
    r = r / 24 * 24;
    if (r < 24) r = 24;
    if (r > 4080) r = 4080;
    return r;
}

static int is_pointwise(const nnc_conv2d_geom *g) {
    return g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 &&
           g->OH == g->H && g->OW == g->W;
}

nnc_conv2d *nnc_conv2d_new(const nnc_conv2d_geom *g) {
    nnc_conv2d *c = (nnc_conv2d *)nnc_malloc(sizeof(nnc_conv2d));
    if (!c) return NULL;
    memset(c, 0, sizeof(*c));
    c->g = *g;
    c->Kc = g->KH * g->KW * g->C;
    c->pointwise = is_pointwise(g);
    /* Stride 1 with >= 16 input channels: dx is a forward conv (GEMM N = C). With fewer
     * channels that GEMM would be mostly padding, so dcol = dz W^T (N = Kc) + col2im wins. */
    c->stride1 = c->pointwise || (g->sh == 1 && g->sw == 1 && g->C >= 16);
    nnc_conv2d_geom b = {0};
    b.H = g->OH; b.W = g->OW; b.C = g->F; b.KH = g->KH; b.KW = g->KW; b.F = g->C;
    b.sh = 1; b.sw = 1; b.dh = g->dh; b.dw = g->dw;
    b.pt = (g->KH - 1) * g->dh - g->pt;
    b.pl = (g->KW - 1) * g->dw - g->pl;
    b.OH = g->H; b.OW = g->W;
    c->gb = b;
    c->rows_fwd = chunk_rows(c->Kc, 128 * 1024);
    c->rows_bwd = chunk_rows(g->KH * g->KW * g->F, 128 * 1024);
    c->rows_col2im = chunk_rows(c->Kc, 128 * 1024);
    c->rows_dw = chunk_rows(c->Kc, 256 * 1024);
    c->wp = nnc_packed_new(c->Kc, g->F);
    if (c->stride1) {
        c->wbp = nnc_packed_new(g->KH * g->KW * g->F, g->C);
        c->wflip = (float *)nnc_malloc((size_t)(c->Kc * g->F) * sizeof(float));
    } else {
        c->wbp = nnc_packed_new(g->F, c->Kc);
    }
    if (nnc_wino_applies(g) && !(c->wino = nnc_wino_new(g->C, g->F, 1))) {
        nnc_conv2d_free(c);
        return NULL;
    }
    if (c->stride1 && !c->pointwise && nnc_wino_applies(&c->gb) &&
        !(c->winob = nnc_wino_new(g->F, g->C, 0))) {
        nnc_conv2d_free(c);
        return NULL;
    }
    if (nnc_wino2_applies(g) && !(c->wino2 = nnc_wino2_new(g->C, g->F))) {
        nnc_conv2d_free(c);
        return NULL;
    }
    if (!c->wp || !c->wbp || (c->stride1 && !c->wflip)) {
        nnc_conv2d_free(c);
        return NULL;
    }
    c->bwd_dirty = 1;
    return c;
}

void nnc_conv2d_free(nnc_conv2d *c) {
    if (!c) return;
    nnc_packed_free(c->wp);
    nnc_packed_free(c->wbp);
    nnc_free(c->wflip);
    nnc_free(c->scratch);
    nnc_wino_free(c->wino);
    nnc_wino_free(c->winob);
    nnc_wino2_free(c->wino2);
    nnc_free(c);
}

static int grow(nnc_conv2d *c, size_t n) {
    if (n <= c->scratch_n) return 0;
    float *p = (float *)nnc_malloc(n * sizeof(float));
    if (!p) return NNC_E_NOMEM;
    nnc_free(c->scratch);
    c->scratch = p;
    c->scratch_n = n;
    return 0;
}

/* dW splits its pixel sum into at most this many image slices (a function of N only). */
#define DW_SLICES 2

/* Floats of per-thread im2col blocks for dW; the slice partials follow them. */
static size_t scratch_cols_dw(const nnc_conv2d *c, int T) { return (size_t)T * c->rows_dw * c->Kc; }

static size_t scratch_need(const nnc_conv2d *c, int T) {
    const nnc_conv2d_geom *g = &c->g;
    size_t a = (size_t)T * c->rows_fwd * c->Kc;
    size_t b = (size_t)T * c->rows_bwd * g->KH * g->KW * g->F;
    size_t d = (size_t)T * c->rows_col2im * c->Kc;
    size_t e = scratch_cols_dw(c, T) + (size_t)(DW_SLICES - 1) * c->Kc * g->F;
    size_t m = a;
    if (b > m) m = b;
    if (d > m) m = d;
    if (e > m) m = e;
    const size_t sm = (size_t)(SMALLC_SLICES - 1) * c->Kc * g->F; /* smallc's slice partials */
    if (g->C <= 4 && sm > m) m = sm;
    if (c->wino && (size_t)T * nnc_wino_scratch(g) > m) m = (size_t)T * nnc_wino_scratch(g);
    if (c->winob && (size_t)T * nnc_wino_scratch(&c->gb) > m)
        m = (size_t)T * nnc_wino_scratch(&c->gb);
    if (c->wino2 && (size_t)T * nnc_wino2_scratch(g) > m) m = (size_t)T * nnc_wino2_scratch(g);
    return m;
}

int nnc_conv2d_reserve(nnc_conv2d *c, int64_t batch) {
    (void)batch; /* chunks bound the scratch, not the batch */
    int T = nnc_get_num_threads();
    return grow(c, scratch_need(c, T));
}

int nnc_conv2d_set_weights(nnc_conv2d *c, const float *w) {
    c->w = w;
    c->bwd_dirty = 1;
    int st = nnc_pack_b(c->wp, w, c->g.F, 0);
    if (!st && c->wino) st = nnc_wino_set_weights(c->wino, w);
    if (!st && c->wino2) st = nnc_wino2_set_weights(c->wino2, w);
    return st;
}

static int pack_backward(nnc_conv2d *c) {
    if (!c->bwd_dirty) return 0;
    const nnc_conv2d_geom *g = &c->g;
    int st;
    if (c->stride1) {
        /* W'[kh][kw][f][c] = W[KH-1-kh][KW-1-kw][c][f] */
        const int64_t KH = g->KH, KW = g->KW, C = g->C, F = g->F;
        for (int64_t kh = 0; kh < KH; kh++)
            for (int64_t kw = 0; kw < KW; kw++) {
                const float *src = c->w + ((KH - 1 - kh) * KW + (KW - 1 - kw)) * C * F;
                float *dst = c->wflip + (kh * KW + kw) * F * C;
                for (int64_t ci = 0; ci < C; ci++)
                    for (int64_t f = 0; f < F; f++) dst[f * C + ci] = src[ci * F + f];
            }
        st = nnc_pack_b(c->wbp, c->wflip, C, 0);
        if (!st && c->winob) st = nnc_wino_set_weights(c->winob, c->wflip);
    } else {
        st = nnc_pack_b(c->wbp, c->w, g->F, 1); /* op(B) = W^T, [F x Kc] */
        if (!st && c->wino2) st = nnc_wino2_set_weights_dx(c->wino2, c->w);
    }
    if (st == 0) c->bwd_dirty = 0;
    return st;
}

/* d[0:n] = s[0:n] for the runs of im2col (KW*C or C floats, a few hundred bytes): inlined and
 * vectorised for the ISA of its caller; a libc memcpy call per run cost more than the copy
 * (measured: 11% of a stride-2 32-channel forward). */
#if defined(__GNUC__)
typedef float nnc_v16f_u __attribute__((vector_size(64), aligned(4), may_alias));
typedef float nnc_v4f_u __attribute__((vector_size(16), aligned(4), may_alias));
static inline __attribute__((always_inline)) void copy_run(float *restrict d,
                                                           const float *restrict s, int64_t n) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) *(nnc_v16f_u *)(d + j) = *(const nnc_v16f_u *)(s + j);
    for (; j + 4 <= n; j += 4) *(nnc_v4f_u *)(d + j) = *(const nnc_v4f_u *)(s + j);
    switch (n - j) { /* no loop here: a copy loop would become a memcpy call again */
    case 3: d[j + 2] = s[j + 2]; /* fall through */
    case 2: d[j + 1] = s[j + 1]; /* fall through */
    case 1: d[j] = s[j];
    }
}
#else
#define copy_run(d, s, n) memcpy((d), (s), (size_t)(n) * sizeof(float))
#endif

/* col[i, :] = the receptive field of output pixel p0 + i (rows of Kc floats, zeros for padding). */
static inline __attribute__((always_inline)) void im2col_body(const nnc_conv2d_geom *g,
                                                             const float *x, int64_t p0,
                                                             int64_t rows, float *col) {
    const int64_t H = g->H, W = g->W, C = g->C, KH = g->KH, KW = g->KW;
    const int64_t OHW = g->OH * g->OW, runlen = KW * C, Kc = KH * KW * C;
    int64_t n = p0 / OHW, r = p0 % OHW, oh = r / g->OW, ow = r % g->OW;
    for (int64_t i = 0; i < rows; i++) {
        float *dst = col + i * Kc;
        const float *xn = x + n * H * W * C;
        const int64_t ih0 = oh * g->sh - g->pt, iw0 = ow * g->sw - g->pl;
        const int full_w = g->dw == 1 && iw0 >= 0 && iw0 + KW <= W;
        for (int64_t kh = 0; kh < KH; kh++) {
            const int64_t ih = ih0 + kh * g->dh;
            float *d = dst + kh * runlen;
            if (ih < 0 || ih >= H) {
                memset(d, 0, (size_t)runlen * sizeof(float));
                continue;
            }
            const float *xr = xn + ih * W * C;
            if (full_w) {
                copy_run(d, xr + iw0 * C, runlen);
            } else {
                for (int64_t kw = 0; kw < KW; kw++) {
                    const int64_t iw = iw0 + kw * g->dw;
                    if (iw < 0 || iw >= W) memset(d + kw * C, 0, (size_t)C * sizeof(float));
                    else copy_run(d + kw * C, xr + iw * C, C);
                }
            }
        }
        if (++ow == g->OW) {
            ow = 0;
            if (++oh == g->OH) {
                oh = 0;
                n++;
            }
        }
    }
}

static void im2col_generic(const nnc_conv2d_geom *g, const float *x, int64_t p0, int64_t rows,
                           float *col) {
    im2col_body(g, x, p0, rows, col);
}
#if NNC_X86
NNC_TARGET_AVX2 static void im2col_avx2(const nnc_conv2d_geom *g, const float *x, int64_t p0,
                                        int64_t rows, float *col) {
    im2col_body(g, x, p0, rows, col);
}
NNC_TARGET_AVX512 static void im2col_avx512(const nnc_conv2d_geom *g, const float *x, int64_t p0,
                                            int64_t rows, float *col) {
    im2col_body(g, x, p0, rows, col);
}
#endif

static void im2col_rows(const nnc_conv2d_geom *g, const float *x, int64_t p0, int64_t rows,
                        float *col) {
#if NNC_X86
    if (nnc_isa() == NNC_ISA_AVX512) return im2col_avx512(g, x, p0, rows, col);
    if (nnc_isa() == NNC_ISA_AVX2) return im2col_avx2(g, x, p0, rows, col);
#endif
    im2col_generic(g, x, p0, rows, col);
}

/* Implicit GEMM (no im2col) for undilated kernels with >= 16 channels: an output row's pixels
 * whose window lies inside the input are rows sw*C apart in x, and each kernel row of their
 * windows is KW*C contiguous floats, so the row is one GEMM over KH segments of A read in place;
 * the few edge pixels get their own group with the kernel columns that fall inside. Blocks of
 * IMPLICIT_ROWS output rows go to nnc_sgemm_packed_groups together, so each panel of the packed
 * kernel is reused from L1 across them. Saves the im2col pass. Every pixel needs a kernel row and
 * column inside the input (always true for 'valid' and 'same'). */
enum { IMPLICIT_MAX_KH = 16, IMPLICIT_MAX_EDGE = 4, IMPLICIT_ROWS = 8 };

/* Interior output columns [lo, hi): iw0 = ow sw - pl >= 0 and iw0 + KW <= W. */
static void implicit_interior(const nnc_conv2d_geom *g, int64_t *lo, int64_t *hi) {
    int64_t a = 0, b = g->OW;
    while (a < g->OW && a * g->sw - g->pl < 0) a++;
    while (b > a && (b - 1) * g->sw - g->pl + g->KW > g->W) b--;
    *lo = a;
    *hi = b;
}

static int implicit_ok(const nnc_conv2d_geom *g) {
    if (g->dh != 1 || g->dw != 1 || g->C < 16 || g->OW < 8 || g->KH > IMPLICIT_MAX_KH) return 0;
    int64_t lo, hi;
    implicit_interior(g, &lo, &hi);
    if (g->OW - (hi - lo) > IMPLICIT_MAX_EDGE) return 0;
    for (int64_t oh = 0; oh < g->OH; oh++) {
        const int64_t ih0 = oh * g->sh - g->pt;
        if (ih0 + g->KH <= 0 || ih0 >= g->H) return 0;
    }
    for (int64_t ow = 0; ow < g->OW; ow++) {
        const int64_t iw0 = ow * g->sw - g->pl;
        if (iw0 + g->KW <= 0 || iw0 >= g->W) return 0;
    }
    return 1;
}

/* Segments of the kernel rows inside the input for output row oh, columns [kw0, kw1), A starting
 * at input column iw (image n); returns their number. */
static int implicit_segs(const nnc_conv2d_geom *g, const float *x, int64_t n, int64_t oh,
                         int64_t iw, int64_t kw0, int64_t kw1, nnc_gemm_seg *seg) {
    const int64_t H = g->H, W = g->W, C = g->C, ih0 = oh * g->sh - g->pt;
    int ns = 0;
    for (int64_t kh = 0; kh < g->KH; kh++) {
        const int64_t ih = ih0 + kh;
        if (ih < 0 || ih >= H) continue;
        seg[ns].a = x + ((n * H + ih) * W + iw) * C;
        seg[ns].k0 = (kh * g->KW + kw0) * C;
        seg[ns].K = (kw1 - kw0) * C;
        ns++;
    }
    return ns;
}

/* Output rows [oh0, oh1) of image n, whose kernel rows inside the input are the same: one group
 * per row for the interior pixels (rows sw*C apart in x), one per edge column spanning the rows
 * (rows sh*W*C apart), so no group is a lone pixel. */
static int implicit_block(const nnc_conv2d_geom *g, const float *x, float *y, int64_t n,
                          int64_t oh0, int64_t oh1, int64_t lo, int64_t hi,
                          const nnc_packed *wp, const nnc_epilogue *ep) {
    nnc_gemm_group gr[IMPLICIT_ROWS + IMPLICIT_MAX_EDGE];
    nnc_gemm_seg seg[(IMPLICIT_ROWS + IMPLICIT_MAX_EDGE) * IMPLICIT_MAX_KH];
    const int64_t C = g->C, F = g->F, OW = g->OW, KW = g->KW;
    int ng = 0;
    for (int64_t oh = oh0; oh < oh1 && hi > lo; oh++, ng++) {
        nnc_gemm_seg *s = seg + ng * IMPLICIT_MAX_KH;
        const int ns = implicit_segs(g, x, n, oh, lo * g->sw - g->pl, 0, KW, s);
        gr[ng] = (nnc_gemm_group){hi - lo, g->sw * C, F, y + ((n * g->OH + oh) * OW + lo) * F, s, ns};
    }
    for (int64_t ow = 0; ow < OW; ow++) {
        if (ow >= lo && ow < hi) continue;
        const int64_t iw0 = ow * g->sw - g->pl, kw0 = NNC_MAX(0, -iw0), kw1 = NNC_MIN(KW, g->W - iw0);
        nnc_gemm_seg *s = seg + ng * IMPLICIT_MAX_KH;
        const int ns = implicit_segs(g, x, n, oh0, iw0 + kw0, kw0, kw1, s);
        gr[ng++] = (nnc_gemm_group){oh1 - oh0, g->sh * g->W * C, OW * F,
                                    y + ((n * g->OH + oh0) * OW + ow) * F, s, ns};
    }
    return nnc_sgemm_packed_groups(F, gr, ng, wp, ep);
}

/* First kernel row inside the input for output row oh (rows with the same one and the same
 * count share a block). */
static int64_t implicit_khkey(const nnc_conv2d_geom *g, int64_t oh) {
    const int64_t ih0 = oh * g->sh - g->pt;
    const int64_t k0 = NNC_MAX(0, -ih0), k1 = NNC_MIN(g->KH, g->H - ih0);
    return k0 * 1024 + k1;
}

typedef struct {
    const nnc_conv2d_geom *g;
    const float *x;
    float *y;
    const nnc_packed *wp;
    const nnc_epilogue *ep;
    int64_t bpi, lo, hi;
    int status;
} implicit_job;

static void implicit_task(void *p, int64_t b, int thread) {
    implicit_job *j = (implicit_job *)p;
    const nnc_conv2d_geom *g = j->g;
    const int64_t n = b / j->bpi, e = NNC_MIN(g->OH, (b % j->bpi + 1) * IMPLICIT_ROWS);
    int st = 0;
    (void)thread;
    for (int64_t oh0 = (b % j->bpi) * IMPLICIT_ROWS; oh0 < e && !st;) {
        int64_t oh1 = oh0 + 1;
        while (oh1 < e && implicit_khkey(g, oh1) == implicit_khkey(g, oh0)) oh1++;
        st = implicit_block(g, j->x, j->y, n, oh0, oh1, j->lo, j->hi, j->wp, j->ep);
        oh0 = oh1;
    }
    if (st) __atomic_store_n(&j->status, st, __ATOMIC_RELAXED);
}

static int conv_fwd_implicit(const nnc_conv2d_geom *g, const float *x, int64_t N,
                             const nnc_packed *wp, const nnc_epilogue *ep, float *y,
                             int nthreads) {
    const int64_t OH = g->OH, bpi = (OH + IMPLICIT_ROWS - 1) / IMPLICIT_ROWS, blocks = N * bpi;
    implicit_job j = {g, x, y, wp, ep, bpi, 0, 0, 0};
    implicit_interior(g, &j.lo, &j.hi);
    int T = conv_threads(nthreads, 2.0 * N * OH * g->OW * g->KH * g->KW * g->C * g->F, blocks);
    nnc_parallel_run(T, blocks, implicit_task, &j);
    return j.status;
}

typedef struct {
    const nnc_conv2d_geom *g;
    const float *x;
    const nnc_packed *wp;
    const nnc_epilogue *ep;
    float *y;
    int64_t R, P;
} fwd_job;

/* Chunk ch: im2col of R output pixels, then their GEMM. */
static int fwd_chunk(const void *ctx, int64_t ch, float *col, int gemm_threads) {
    const fwd_job *j = (const fwd_job *)ctx;
    const int64_t Kc = j->g->KH * j->g->KW * j->g->C, F = j->g->F;
    const int64_t p0 = ch * j->R, rows = NNC_MIN(j->R, j->P - p0);
    im2col_rows(j->g, j->x, p0, rows, col);
    return nnc_sgemm_packed(0, rows, F, Kc, 1.f, col, Kc, j->wp, 0.f, j->y + p0 * F, F, j->ep,
                            gemm_threads);
}

/* y [P x F] for the conv of geometry g with the packed kernel; pointwise is handled by callers. */
static int conv_fwd_chunks(const nnc_conv2d_geom *g, const float *x, int64_t N,
                           const nnc_packed *wp, const nnc_epilogue *ep, float *y, int64_t R,
                           float *scratch, int nthreads) {
    if (implicit_ok(g)) return conv_fwd_implicit(g, x, N, wp, ep, y, nthreads);
    const int64_t Kc = g->KH * g->KW * g->C, P = N * g->OH * g->OW, nchunks = (P + R - 1) / R;
    const fwd_job j = {g, x, wp, ep, y, R, P};
    const int T = conv_threads(nthreads, 2.0 * P * Kc * g->F, nchunks);
    return conv_run_chunks(nchunks, T, scratch, (size_t)(R * Kc), fwd_chunk, &j, nthreads);
}

static int threads_setting(int nthreads) { return nthreads > 0 ? nthreads : nnc_get_num_threads(); }

int nnc_conv2d_forward(nnc_conv2d *c, const float *x, int64_t N, const float *bias, int act,
                       float alpha, float *y, int nthreads) {
    if (act != NNC_ACT_LINEAR && act != NNC_ACT_RELU && act != NNC_ACT_LEAKY_RELU &&
        act != NNC_ACT_RELU6)
        return NNC_E_ARG;
    const nnc_conv2d_geom *g = &c->g;
    nnc_epilogue ep = {bias, act, alpha};
    if (N <= 0) return 0;
    if (c->pointwise)
        return nnc_sgemm_packed(0, N * g->H * g->W, g->F, g->C, 1.f, x, g->C, c->wp, 0.f, y, g->F,
                                &ep, nthreads);
    int st = grow(c, scratch_need(c, threads_setting(nthreads)));
    if (st) return st;
    if (c->wino && g_wino_on) return nnc_wino_forward(c->wino, g, x, N, &ep, y, c->scratch, nthreads);
    if (c->wino2 && g_wino_on)
        return nnc_wino2_forward(c->wino2, g, x, N, &ep, y, c->scratch, nthreads);
    return conv_fwd_chunks(g, x, N, c->wp, &ep, y, c->rows_fwd, c->scratch, nthreads);
}

/* dx[pixel window] += dcol rows (the adjoint of im2col_rows), rows within one image. */
static inline __attribute__((always_inline)) void col2im_body(const nnc_conv2d_geom *g,
                                                             const float *dcol, int64_t r0,
                                                             int64_t rows, float *dxn) {
    const int64_t H = g->H, W = g->W, C = g->C, KH = g->KH, KW = g->KW, Kc = KH * KW * C;
    int64_t oh = r0 / g->OW, ow = r0 % g->OW;
    for (int64_t i = 0; i < rows; i++) {
        const float *src = dcol + i * Kc;
        const int64_t ih0 = oh * g->sh - g->pt, iw0 = ow * g->sw - g->pl;
        /* undilated window inside the row: each kh adds one contiguous run of KW*C floats
         * (with few channels the per-tap loops cost more than the adds) */
        const int full_w = g->dw == 1 && iw0 >= 0 && iw0 + KW <= W;
        for (int64_t kh = 0; kh < KH; kh++) {
            const int64_t ih = ih0 + kh * g->dh;
            if (ih < 0 || ih >= H) continue;
            if (full_w) {
                float *d = dxn + (ih * W + iw0) * C;
                const float *s = src + kh * KW * C;
                for (int64_t j = 0; j < KW * C; j++) d[j] += s[j];
                continue;
            }
            for (int64_t kw = 0; kw < KW; kw++) {
                const int64_t iw = iw0 + kw * g->dw;
                if (iw < 0 || iw >= W) continue;
                float *d = dxn + (ih * W + iw) * C;
                const float *s = src + (kh * KW + kw) * C;
                for (int64_t ci = 0; ci < C; ci++) d[ci] += s[ci];
            }
        }
        if (++ow == g->OW) {
            ow = 0;
            oh++;
        }
    }
}

/* One channel: dcolT [Kc x OH*OW] for one image (tap-major), so each tap adds whole output
 * rows: a run of OW floats spaced sw*C apart in dx (contiguous for stride 1) instead of per-pixel
 * runs of KW*C (3 floats for a 3x3 kernel). Halves dx for 28x28x1; with C = 3 the strided adds
 * lost to the per-pixel runs, so only C = 1 takes it. */
static inline __attribute__((always_inline)) void col2im_t_body(const nnc_conv2d_geom *g,
                                                               const float *dT, float *dxn) {
    const int64_t H = g->H, W = g->W, C = g->C, KW = g->KW, OH = g->OH, OW = g->OW;
    const int64_t Kc = g->KH * KW * C, OHW = OH * OW, sw = g->sw;
    for (int64_t k = 0; k < Kc; k++) {
        const int64_t kh = k / (KW * C), kw = (k / C) % KW, ci = k % C;
        const int64_t offw = kw * g->dw - g->pl;
        /* output columns whose input column is inside the row */
        int64_t lo = 0, hi = OW;
        while (lo < OW && lo * sw + offw < 0) lo++;
        while (hi > lo && (hi - 1) * sw + offw >= W) hi--;
        const float *src = dT + k * OHW;
        for (int64_t oh = 0; oh < OH; oh++) {
            const int64_t ih = oh * g->sh - g->pt + kh * g->dh;
            if (ih < 0 || ih >= H) continue;
            float *d = dxn + (ih * W + offw) * C + ci;
            const float *sr = src + oh * OW;
            if (sw * C == 1)
                for (int64_t ow = lo; ow < hi; ow++) d[ow] += sr[ow];
            else
                for (int64_t ow = lo; ow < hi; ow++) d[ow * sw * C] += sr[ow];
        }
    }
}

/* The adds vectorise to the ISA in use (run-time dispatch). */
static void col2im_generic(const nnc_conv2d_geom *g, const float *dcol, int64_t r0, int64_t rows,
                           float *dxn) {
    if (rows < 0) col2im_t_body(g, dcol, dxn);
    else col2im_body(g, dcol, r0, rows, dxn);
}
#if NNC_X86
NNC_TARGET_AVX2 static void col2im_avx2(const nnc_conv2d_geom *g, const float *dcol, int64_t r0,
                                        int64_t rows, float *dxn) {
    if (rows < 0) col2im_t_body(g, dcol, dxn);
    else col2im_body(g, dcol, r0, rows, dxn);
}
NNC_TARGET_AVX512 static void col2im_avx512(const nnc_conv2d_geom *g, const float *dcol,
                                            int64_t r0, int64_t rows, float *dxn) {
    if (rows < 0) col2im_t_body(g, dcol, dxn);
    else col2im_body(g, dcol, r0, rows, dxn);
}
#endif

static void col2im_rows_add(const nnc_conv2d_geom *g, const float *dcol, int64_t r0, int64_t rows,
                            float *dxn) {
#if NNC_X86
    if (nnc_isa() == NNC_ISA_AVX512) return col2im_avx512(g, dcol, r0, rows, dxn);
    if (nnc_isa() == NNC_ISA_AVX2) return col2im_avx2(g, dcol, r0, rows, dxn);
#endif
    col2im_generic(g, dcol, r0, rows, dxn);
}

/* One image of the strided backward-data path. */
static int bwd_data_image(const nnc_conv2d *c, const float *dzn, float *dxn, float *dcol,
                          int gemm_threads) {
    const nnc_conv2d_geom *g = &c->g;
    const int64_t OHW = g->OH * g->OW, R = c->rows_col2im, Kc = c->Kc;
    memset(dxn, 0, (size_t)(g->H * g->W * g->C) * sizeof(float));
    if (g->C == 1 && OHW <= R) { /* dcolT = W dz^T, one image, then tap-major col2im */
        int st = nnc_sgemm(0, 1, Kc, OHW, g->F, 1.f, c->w, g->F, dzn, g->F, 0.f, dcol, OHW, NULL,
                           gemm_threads);
        if (st) return st;
        col2im_rows_add(g, dcol, 0, -1, dxn);
        return 0;
    }
    for (int64_t r0 = 0; r0 < OHW; r0 += R) {
        const int64_t rows = NNC_MIN(R, OHW - r0);
        int st = nnc_sgemm_packed(0, rows, Kc, g->F, 1.f, dzn + r0 * g->F, g->F, c->wbp, 0.f, dcol,
                                  Kc, NULL, gemm_threads);
        if (st) return st;
        col2im_rows_add(g, dcol, r0, rows, dxn);
    }
    return 0;
}

/* Strided dx, one image per chunk (images do not overlap in dx). */
typedef struct {
    const nnc_conv2d *c;
    const float *dz;
    float *dx;
    int64_t in_img, out_img;
} bwd_data_job;

static int bwd_data_chunk(const void *ctx, int64_t n, float *dcol, int gemm_threads) {
    const bwd_data_job *j = (const bwd_data_job *)ctx;
    return bwd_data_image(j->c, j->dz + n * j->out_img, j->dx + n * j->in_img, dcol, gemm_threads);
}

int nnc_conv2d_backward_data(nnc_conv2d *c, const float *dz, int64_t N, float *dx, int nthreads) {
    const nnc_conv2d_geom *g = &c->g;
    if (N <= 0) return 0;
    int st = pack_backward(c);
    if (st) return st;
    st = grow(c, scratch_need(c, threads_setting(nthreads)));
    if (st) return st;
    if (c->stride1) {
        if (c->pointwise) /* dx = dz W^T */
            return nnc_sgemm_packed(0, N * g->H * g->W, g->C, g->F, 1.f, dz, g->F, c->wbp, 0.f, dx,
                                    g->C, NULL, nthreads);
        if (c->winob && g_wino_on)
            return nnc_wino_forward(c->winob, &c->gb, dz, N, NULL, dx, c->scratch, nthreads);
        return conv_fwd_chunks(&c->gb, dz, N, c->wbp, NULL, dx, c->rows_bwd, c->scratch, nthreads);
    }
    if (c->wino2 && g_wino_on)
        return nnc_wino2_backward_data(c->wino2, g, dz, N, dx, c->scratch, nthreads);
    const bwd_data_job j = {c, dz, dx, g->H * g->W * g->C, g->OH * g->OW * g->F};
    const int T = conv_threads(nthreads, 2.0 * N * g->OH * g->OW * c->Kc * g->F, N);
    return conv_run_chunks(N, T, c->scratch, (size_t)(c->rows_col2im * c->Kc), bwd_data_chunk, &j,
                           nthreads);
}

/* db[j] = sum_i dz[i, j], rows in order; threads split the columns (deterministic). */
typedef struct {
    const float *dz;
    int64_t rows, cols;
    float *db;
} colsum_job;

static void colsum_range(void *p, int64_t b0, int64_t b1) {
    const colsum_job *c = (const colsum_job *)p;
    for (int64_t b = b0; b < b1; b++) {
        const int64_t j0 = b * 16, j1 = NNC_MIN(c->cols, j0 + 16);
        float acc[16] = {0};
        for (int64_t i = 0; i < c->rows; i++) {
            const float *r = c->dz + i * c->cols;
            for (int64_t j = j0; j < j1; j++) acc[j - j0] += r[j];
        }
        for (int64_t j = j0; j < j1; j++) c->db[j] = acc[j - j0];
    }
}

static void colsum_cols(const float *dz, int64_t rows, int64_t cols, float *db, int T) {
    colsum_job c = {dz, rows, cols, db};
    nnc_parallel_ranges((cols + 15) / 16, 1, T, colsum_range, &c);
}

/* dW[:, f0:f1] = sum over chunks (in order) of col(x_chunk)^T dz_chunk[:, f0:f1]. */
static int dw_columns(const nnc_conv2d *c, const float *x, const float *dz, int64_t P, int64_t f0,
                      int64_t f1, float *dw, float *col) {
    const int64_t Kc = c->Kc, F = c->g.F, R = c->rows_dw;
    if (f1 <= f0) return 0;
    for (int64_t p0 = 0; p0 < P; p0 += R) {
        const int64_t rows = NNC_MIN(R, P - p0);
        im2col_rows(&c->g, x, p0, rows, col);
        int st = nnc_sgemm(1, 0, Kc, f1 - f0, rows, 1.f, col, Kc, dz + p0 * F + f0, F,
                           p0 == 0 ? 0.f : 1.f, dw + f0, F, NULL, 1);
        if (st) return st;
    }
    return 0;
}

typedef struct {
    const nnc_conv2d *c;
    const float *x, *dz;
    float *dw, *part; /* slice 0 sums into dw, slice s > 0 into part + (s - 1) * Kc * F */
    int64_t N, S;
} dw_job;

static int dw_slice(void *ctx, int64_t sl, int64_t b0, int64_t b1, float *col) {
    const dw_job *j = (const dw_job *)ctx;
    const nnc_conv2d_geom *g = &j->c->g;
    const int64_t Kc = j->c->Kc, F = g->F, OHW = g->OH * g->OW;
    const int64_t n0 = j->N * sl / j->S, n1 = j->N * (sl + 1) / j->S;
    return dw_columns(j->c, j->x + n0 * g->H * g->W * g->C, j->dz + n0 * OHW * F,
                      (n1 - n0) * OHW, b0 * 16, NNC_MIN(F, b1 * 16),
                      sl ? j->part + (sl - 1) * Kc * F : j->dw, col);
}

/* Row i of dW plus the later slices' partials, in slice order. */
static void dw_fin(void *ctx, int64_t i) {
    const dw_job *j = (const dw_job *)ctx;
    const int64_t F = j->c->g.F, KcF = j->c->Kc * F;
    float *d = j->dw + i * F;
    for (int64_t sl = 1; sl < j->S; sl++) {
        const float *p = j->part + (sl - 1) * KcF + i * F;
        for (int64_t f = 0; f < F; f++) d[f] += p[f];
    }
}

int nnc_conv2d_backward_weights(nnc_conv2d *c, const float *x, const float *dz, int64_t N,
                                float *dw, float *db, int nthreads) {
    const nnc_conv2d_geom *g = &c->g;
    const int64_t Kc = c->Kc, F = g->F, P = N * g->OH * g->OW;
    if (N <= 0) {
        memset(dw, 0, (size_t)(Kc * F) * sizeof(float));
        if (db) memset(db, 0, (size_t)F * sizeof(float));
        return 0;
    }
    if (db) colsum_cols(dz, P, F, db, conv_threads(nthreads, 1.0 * P * F, (F + 15) / 16));
    if (c->pointwise)
        return nnc_sgemm(1, 0, Kc, F, P, 1.f, x, Kc, dz, F, 0.f, dw, F, NULL, nthreads);
    int st = grow(c, scratch_need(c, threads_setting(nthreads)));
    if (st) return st;
    if (nnc_smallc_applies(g) && g_wino_on)
        return nnc_smallc_backward_weights(g, x, dz, N, dw, c->scratch, nthreads);
    if (c->wino && g_wino_on)
        return nnc_wino_backward_weights(c->wino, g, x, dz, N, dw, c->scratch, nthreads);
    if (c->wino2 && g_wino_on)
        return nnc_wino2_backward_weights(c->wino2, g, x, dz, N, dw, c->scratch, nthreads);
    /* The pixel sum is cut into S = min(N, 2) image slices, fixed by the batch alone: slice 0
     * sums into dw, slice 1 into a partial in scratch, added last. With T <= S threads each
     * takes whole slices (its own im2col, no duplicated work); with T > S the threads of a slice
     * own 16-aligned column blocks of it (each building the slice's im2col). */
    dw_job j = {c, x, dz, dw, c->scratch + scratch_cols_dw(c, threads_setting(nthreads)), N,
                NNC_MIN(N, DW_SLICES)};
    const int64_t nb = (F + 15) / 16;
    int T = conv_threads(nthreads, 2.0 * P * Kc * F, j.S * nb);
    if (T > j.S * nb) T = (int)(j.S * nb);
    return conv_run_slices(j.S, nb, T, c->scratch, (size_t)(c->rows_dw * Kc), dw_slice, dw_fin,
                           j.S > 1 ? Kc : 0, &j);
}

/* ---- activation backward fused with the bias gradient ---- */

static inline __attribute__((always_inline)) void act_bwd_cols(int act, float alpha,
                                                               const float *y, float *dy,
                                                               int64_t rows, int64_t cols,
                                                               int64_t j0, int64_t j1, float *db) {
    float acc[256] = {0}; /* j1 - j0 <= 256 */
    for (int64_t i = 0; i < rows; i++) {
        const float *yr = y + i * cols;
        float *dr = dy + i * cols;
        switch (act) {
        case NNC_ACT_RELU:
            for (int64_t j = j0; j < j1; j++) dr[j] = yr[j] > 0.f ? dr[j] : 0.f;
            break;
        case NNC_ACT_LEAKY_RELU:
            for (int64_t j = j0; j < j1; j++) dr[j] = yr[j] > 0.f ? dr[j] : dr[j] * alpha;
            break;
        case NNC_ACT_RELU6:
            for (int64_t j = j0; j < j1; j++) dr[j] = (yr[j] > 0.f && yr[j] < 6.f) ? dr[j] : 0.f;
            break;
        default: break;
        }
        if (db)
            for (int64_t j = j0; j < j1; j++) acc[j - j0] += dr[j];
    }
    if (db)
        for (int64_t j = j0; j < j1; j++) db[j] = acc[j - j0];
}

static void act_bwd_generic(int act, float alpha, const float *y, float *dy, int64_t rows,
                            int64_t cols, int64_t j0, int64_t j1, float *db) {
    act_bwd_cols(act, alpha, y, dy, rows, cols, j0, j1, db);
}
#if NNC_X86
NNC_TARGET_AVX2 static void act_bwd_avx2(int act, float alpha, const float *y, float *dy,
                                         int64_t rows, int64_t cols, int64_t j0, int64_t j1,
                                         float *db) {
    act_bwd_cols(act, alpha, y, dy, rows, cols, j0, j1, db);
}
NNC_TARGET_AVX512 static void act_bwd_avx512(int act, float alpha, const float *y, float *dy,
                                             int64_t rows, int64_t cols, int64_t j0, int64_t j1,
                                             float *db) {
    act_bwd_cols(act, alpha, y, dy, rows, cols, j0, j1, db);
}
#endif

typedef struct {
    void (*fn)(int, float, const float *, float *, int64_t, int64_t, int64_t, int64_t, float *);
    int act;
    float alpha;
    const float *y;
    float *dy, *db, *part;
    int64_t rows, cols;
} act_bwd_job;

enum { ACT_CHUNK = 512, ACT_PART = 8192 };

static void act_bwd_chunk(void *p, int64_t ch, int thread) {
    const act_bwd_job *j = (const act_bwd_job *)p;
    const int64_t r0 = ch * ACT_CHUNK, n = NNC_MIN(ACT_CHUNK, j->rows - r0);
    (void)thread;
    j->fn(j->act, j->alpha, j->y + r0 * j->cols, j->dy + r0 * j->cols, n, j->cols, 0, j->cols,
          j->db ? j->part + ch * j->cols : NULL);
}

static void act_bwd_blocks(void *p, int64_t b0, int64_t b1) {
    const act_bwd_job *j = (const act_bwd_job *)p;
    for (int64_t b = b0; b < b1; b++)
        j->fn(j->act, j->alpha, j->y, j->dy, j->rows, j->cols, b * 16,
              NNC_MIN(j->cols, b * 16 + 16), j->db);
}

int nnc_conv_act_backward(int act, float alpha, const float *y, float *dy, int64_t rows,
                          int64_t cols, float *db, int nthreads) {
    if (act != NNC_ACT_LINEAR && act != NNC_ACT_RELU && act != NNC_ACT_LEAKY_RELU &&
        act != NNC_ACT_RELU6)
        return NNC_E_ARG;
    if (act == NNC_ACT_LINEAR && !db) return 0;
    act_bwd_job j = {act_bwd_generic, act, alpha, y, dy, db, NULL, rows, cols};
#if NNC_X86
    if (nnc_isa() == NNC_ISA_AVX2) j.fn = act_bwd_avx2;
    else if (nnc_isa() == NNC_ISA_AVX512) j.fn = act_bwd_avx512;
#endif
    /* Fixed 512-row chunks, each writing its own column sums, added in chunk order: threads
     * take whole chunks (streaming rows, both threads busy even with 16-32 columns) and the sums
     * do not depend on the thread count. Too many partial sums for the stack: column split. */
    const int64_t nch = (rows + ACT_CHUNK - 1) / ACT_CHUNK;
    if (cols <= 256 && nch * cols <= ACT_PART) {
        float part[ACT_PART];
        j.part = part;
        nnc_parallel_run(conv_threads(nthreads, 2.0 * rows * cols, nch), nch, act_bwd_chunk, &j);
        if (db) {
            for (int64_t c = 0; c < cols; c++) db[c] = 0.f;
            for (int64_t ch = 0; ch < nch; ch++)
                for (int64_t c = 0; c < cols; c++) db[c] += part[ch * cols + c];
        }
        return 0;
    }
    const int64_t nb = (cols + 15) / 16;
    int T = conv_threads(nthreads, 2.0 * rows * cols, nb);
    if (T > 1) {
        nnc_parallel_ranges(nb, 1, T, act_bwd_blocks, &j);
    } else {
        /* one pass over the rows for up to 256 columns (each column sums the same rows in the
         * same order as with the 16-column blocks of the threaded split) */
        for (int64_t j0 = 0; j0 < cols; j0 += 256)
            j.fn(act, alpha, y, dy, rows, cols, j0, NNC_MIN(cols, j0 + 256), db);
    }
    return 0;
}
