/* BatchNormalization, LayerNormalization and Normalization nodes (channels last).
 *
 * Layout: a batch is viewed as [rows x C], rows = batch * size / C, row-major (NHWC images and
 * batch-major sequences are already this). Per-channel reductions (BatchNorm statistics and
 * both norms' gamma/beta gradients) are split into fixed chunks of LYR_CHUNK rows: each chunk
 * sums its rows in order into its own double partials, and the partials are added in chunk
 * order, so threads change only who computes a chunk, never the result. Chunks of 128 rows
 * keep a chunk's slice of x in L2 for the second pass while giving 2 threads work from 256 rows
 * up. Per-row work (normalising, LayerNorm rows) is split over rows. All buffers are sized in
 * reserve/constructors; forward/backward allocate nothing. */
#include "lyr_internal.h"

#include <math.h>
#include <string.h>

/* ---- per-ISA kernels ------------------------------------------------------------------- */

#define KSFX generic
#define KATTR
#include "lyr_kern.h"
#undef KSFX
#undef KATTR
#if NNC_X86
#define KSFX avx2
#define KATTR NNC_TARGET_AVX2
#include "lyr_kern.h"
#undef KSFX
#undef KATTR
#define KSFX avx512
#define KATTR NNC_TARGET_AVX512
#include "lyr_kern.h"
#undef KSFX
#undef KATTR
#endif

static lyr_kernels k_cur;

/* Filled by nnc_init / nnc_set_isa, before any kernel runs (no lazy fill racing on first use). */
void nnc_lyr_dispatch_init(int isa) {
    lyr_kernels k;
    lyr_fill__generic(&k);
#if NNC_X86
    if (isa == NNC_ISA_AVX2) lyr_fill__avx2(&k);
    else if (isa == NNC_ISA_AVX512) lyr_fill__avx512(&k);
#else
    (void)isa;
#endif
    k_cur = k;
}

const lyr_kernels *lyr_k(void) { return &k_cur; }

/* ---- shared helpers -------------------------------------------------------------------- */

static int64_t nchunks(int64_t rows) { return (rows + LYR_CHUNK - 1) / LYR_CHUNK; }

/* Per-chunk column reductions: fn(ctx, chunk) for chunks [0, n). */
typedef struct {
    const lyr_kernels *k;
    const float *x, *dy;
    float *y;
    int64_t rows, C;
    const double *dmean;
    const float *mean, *inv; /* per channel (bn) or per row (ln) */
    const float *a, *b, *A, *B, *D;
    const float *g;
    float eps;
    double *part; /* chunk k writes part[k*2C .. k*2C + 2C) */
    float *dx, *rmean, *rinv;
    int which;
} nctx;

static void chunk_stats(void *p, int64_t k0, int64_t k1) {
    nctx *c = (nctx *)p;
    for (int64_t k = k0; k < k1; k++) {
        int64_t r0 = k * LYR_CHUNK, nr = NNC_MIN((int64_t)LYR_CHUNK, c->rows - r0);
        const float *x = c->x + r0 * c->C;
        double *pk = c->part + k * 2 * c->C;
        switch (c->which) {
        case 0: c->k->col_sum(x, nr, c->C, pk); break;
        case 1: c->k->col_sqdev(x, nr, c->C, c->dmean, pk); break;
        case 2:
            c->k->bn_bwd_sums(x, c->dy + r0 * c->C, nr, c->C, c->mean, c->inv, pk, pk + c->C);
            break;
        default:
            c->k->ln_bwd_sums(x, c->dy + r0 * c->C, nr, c->C, c->mean + r0, c->inv + r0, pk,
                              pk + c->C);
        }
    }
}

/* Reduce chunk partials in chunk order: out[j] = sum_k part[k*2C + off + j], j < width. */
static void run_chunks(nctx *c, int which, double flops_per_elem) {
    int64_t n = nchunks(c->rows);
    c->which = which;
    int nt = nnc_elem_threads(0, (double)c->rows * (double)c->C * flops_per_elem, n);
    nnc_parallel_ranges(n, 1, nt, chunk_stats, c);
}

static void combine(const double *part, int64_t n, int64_t C, int64_t off, int64_t width,
                    double *out) {
    for (int64_t j = 0; j < width; j++) out[j] = part[off + j];
    for (int64_t k = 1; k < n; k++) {
        const double *pk = part + k * 2 * C + off;
        for (int64_t j = 0; j < width; j++) out[j] += pk[j];
    }
}

static void rows_affine(void *p, int64_t r0, int64_t r1) {
    nctx *c = (nctx *)p;
    c->k->col_affine(c->x + r0 * c->C, c->y + r0 * c->C, r1 - r0, c->C, c->a, c->b);
}

static void rows_standardize(void *p, int64_t r0, int64_t r1) {
    nctx *c = (nctx *)p;
    c->k->col_standardize(c->x + r0 * c->C, c->y + r0 * c->C, r1 - r0, c->C, c->a, c->b);
}

static void rows_bn_dx(void *p, int64_t r0, int64_t r1) {
    nctx *c = (nctx *)p;
    int64_t o = r0 * c->C;
    c->k->bn_dx(c->x + o, c->dy + o, c->dx + o, r1 - r0, c->C, c->A, c->B, c->mean, c->D);
}

static void par_rows(nctx *c, nnc_range_fn fn, double flops_per_elem) {
    int nt = nnc_elem_threads(0, (double)c->rows * (double)c->C * flops_per_elem, c->rows);
    int64_t grain = NNC_MAX((int64_t)1, 64 / c->C);
    nnc_parallel_ranges(c->rows, grain, nt, fn, c);
}

static int grow_d(double **p, int64_t *cap, int64_t n) {
    if (n <= *cap && *p) return 0;
    double *q = (double *)nnc_malloc((size_t)NNC_MAX(n, (int64_t)1) * sizeof(double));
    if (!q) return NNC_E_NOMEM;
    nnc_free(*p);
    *p = q;
    *cap = n;
    return 0;
}

static int grow_f(float **p, int64_t *cap, int64_t n) {
    if (n <= *cap && *p) return 0;
    float *q = (float *)nnc_malloc((size_t)NNC_MAX(n, (int64_t)1) * sizeof(float));
    if (!q) return NNC_E_NOMEM;
    nnc_free(*p);
    *p = q;
    *cap = n;
    return 0;
}

/* ---------------- BatchNormalization ---------------- */

typedef struct {
    int64_t C, rpb; /* channels, rows per sample */
    float momentum, eps;
    int center, scale;
    const int32_t *frozen; /* caller-kept flag (layer.trainable == False), may be NULL */
    float *gamma, *beta, *mm, *mv; /* into params (gamma/beta NULL when off) */
    /* 8 x C floats: mean, inv (batch stats of the last training forward), a, b (forward
     * coefficients), A, B, D (backward), zeros */
    float *fw;
    double *dw; /* 3 x C doubles: mean, var / sums */
    double *part;
    int64_t part_cap;
    int batch_stats; /* last forward used batch statistics */
} bn_impl;

static int bn_reserve(nnc_node *self, int64_t batch) {
    bn_impl *d = (bn_impl *)self->impl;
    int st = nnc_node_reserve_y(self, batch);
    if (!st) st = grow_d(&d->part, &d->part_cap, nchunks(batch * d->rpb) * 2 * d->C);
    return st;
}

static int bn_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    bn_impl *d = (bn_impl *)self->impl;
    const lyr_kernels *k = lyr_k();
    int64_t C = d->C, rows = batch * d->rpb;
    float *mean = d->fw, *inv = d->fw + C, *a = d->fw + 2 * C, *b = d->fw + 3 * C;
    nctx c;
    memset(&c, 0, sizeof(c));
    c.k = k;
    c.x = x;
    c.y = self->y;
    c.rows = rows;
    c.C = C;
    c.part = d->part;
    d->batch_stats = training == 1 && !(d->frozen && *d->frozen); /* 2: inference behaviour + backward */
    if (d->batch_stats) {
        double *dmean = d->dw, *dvar = d->dw + C;
        int64_t n = nchunks(rows);
        run_chunks(&c, 0, 1.0);
        combine(d->part, n, C, 0, C, dmean);
        for (int64_t j = 0; j < C; j++) dmean[j] /= (double)rows;
        c.dmean = dmean;
        run_chunks(&c, 1, 3.0);
        combine(d->part, n, C, 0, C, dvar);
        float m1 = 1.f - d->momentum;
        for (int64_t j = 0; j < C; j++) {
            double var = dvar[j] / (double)rows;
            mean[j] = (float)dmean[j];
            inv[j] = (float)(1.0 / sqrt(var + (double)d->eps));
            /* Keras: moving = moving * momentum + batch * (1 - momentum), biased variance */
            d->mm[j] = d->mm[j] * d->momentum + mean[j] * m1;
            d->mv[j] = d->mv[j] * d->momentum + (float)var * m1;
        }
    } else {
        for (int64_t j = 0; j < C; j++) {
            mean[j] = d->mm[j];
            inv[j] = 1.f / sqrtf(d->mv[j] + d->eps);
        }
    }
    for (int64_t j = 0; j < C; j++) {
        a[j] = d->gamma ? d->gamma[j] * inv[j] : inv[j];
        b[j] = (d->beta ? d->beta[j] : 0.f) - mean[j] * a[j];
    }
    c.a = a;
    c.b = b;
    par_rows(&c, rows_affine, 2.0);
    return 0;
}

static int bn_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    bn_impl *d = (bn_impl *)self->impl;
    const lyr_kernels *k = lyr_k();
    int64_t C = d->C, rows = batch * d->rpb;
    float *mean = d->fw, *inv = d->fw + C, *a = d->fw + 2 * C;
    float *A = d->fw + 4 * C, *B = d->fw + 5 * C, *D = d->fw + 6 * C, *zeros = d->fw + 7 * C;
    memset(self->grads, 0, (size_t)self->n_params * sizeof(float));
    nctx c;
    memset(&c, 0, sizeof(c));
    c.k = k;
    c.x = x;
    c.dy = dy;
    c.dx = dx;
    c.rows = rows;
    c.C = C;
    c.part = d->part;
    c.mean = mean;
    c.inv = inv;
    c.A = A;
    c.B = B;
    c.D = D;
    if (!d->batch_stats) { /* frozen: y = a*x + b with constants; no weight gradients */
        if (!dx) return 0;
        c.x = dy; /* dx = a * dy: x is not read */
        c.y = dx;
        c.a = a;
        c.b = zeros;
        par_rows(&c, rows_affine, 1.0);
        return 0;
    }
    int64_t n = nchunks(rows);
    double *sdy = d->dw, *sdyx = d->dw + C;
    run_chunks(&c, 2, 5.0);
    combine(d->part, n, C, 0, C, sdy);
    combine(d->part, n, C, C, C, sdyx);
    float *g = self->grads;
    if (d->scale) {
        for (int64_t j = 0; j < C; j++) g[j] = (float)sdyx[j];
        g += C;
    }
    if (d->center)
        for (int64_t j = 0; j < C; j++) g[j] = (float)sdy[j];
    if (!dx) return 0;
    for (int64_t j = 0; j < C; j++) {
        double aj = (double)(d->gamma ? d->gamma[j] : 1.f) * inv[j];
        A[j] = (float)aj;
        B[j] = (float)(-aj * inv[j] * sdyx[j] / (double)rows);
        D[j] = (float)(-aj * sdy[j] / (double)rows);
    }
    par_rows(&c, rows_bn_dx, 4.0);
    return 0;
}

static void bn_destroy(nnc_node *self) {
    bn_impl *d = (bn_impl *)self->impl;
    if (d) {
        nnc_free(d->fw);
        nnc_free(d->dw);
        nnc_free(d->part);
    }
    nnc_free(self->y);
    self->y = NULL;
}

static const nnc_node_ops bn_ops = {"batch_normalization", bn_reserve, bn_forward, bn_backward,
                                    NULL, bn_destroy};

nnc_node *nnc_batchnorm_node_new(int64_t size, int64_t channels, float momentum, float eps,
                                 int center, int scale, const int32_t *frozen, float *params,
                                 float *grads) {
    if (size < 1 || channels < 1 || size % channels || !(eps > 0.f) || !params || !grads)
        return NULL;
    int64_t np = channels * (2 + (center != 0) + (scale != 0));
    nnc_node *n = nnc_node_alloc(&bn_ops, size, size, params, grads, np, sizeof(bn_impl));
    if (!n) return NULL;
    bn_impl *d = (bn_impl *)n->impl;
    d->C = channels;
    d->rpb = size / channels;
    d->momentum = momentum;
    d->eps = eps;
    d->center = center != 0;
    d->scale = scale != 0;
    d->frozen = frozen;
    float *p = params;
    if (d->scale) d->gamma = p, p += channels;
    if (d->center) d->beta = p, p += channels;
    d->mm = p;
    d->mv = p + channels;
    d->fw = (float *)nnc_malloc((size_t)(8 * channels) * sizeof(float));
    d->dw = (double *)nnc_malloc((size_t)(3 * channels) * sizeof(double));
    if (!d->fw || !d->dw) {
        nnc_node_free(n);
        return NULL;
    }
    memset(d->fw, 0, (size_t)(8 * channels) * sizeof(float));
    return n;
}

/* ---------------- LayerNormalization ---------------- */

typedef struct {
    int64_t C, rpb;
    float eps;
    int center, scale;
    float *gamma, *beta;
    float *rmean, *rinv; /* per row, cap rows */
    int64_t rcap;
    double *part, *sums;
    int64_t part_cap;
    float *ones; /* gamma stand-in when scale=False */
} ln_impl;

static int ln_reserve(nnc_node *self, int64_t batch) {
    ln_impl *d = (ln_impl *)self->impl;
    int64_t rows = batch * d->rpb;
    int st = nnc_node_reserve_y(self, batch);
    if (!st && rows > d->rcap) {
        int64_t c1 = 0, c2 = 0;
        nnc_free(d->rmean);
        nnc_free(d->rinv);
        d->rmean = d->rinv = NULL;
        d->rcap = 0;
        st = grow_f(&d->rmean, &c1, rows);
        if (!st) st = grow_f(&d->rinv, &c2, rows);
        if (!st) d->rcap = rows;
    }
    if (!st) st = grow_d(&d->part, &d->part_cap, nchunks(rows) * 2 * d->C);
    return st;
}

static void rows_ln_fwd(void *p, int64_t r0, int64_t r1) {
    nctx *c = (nctx *)p;
    for (int64_t r = r0; r < r1; r++)
        c->k->ln_fwd_row(c->x + r * c->C, c->y + r * c->C, c->C, c->eps, c->a, c->b, c->rmean + r,
                         c->rinv + r);
}

static void rows_ln_bwd(void *p, int64_t r0, int64_t r1) {
    nctx *c = (nctx *)p;
    for (int64_t r = r0; r < r1; r++)
        c->k->ln_bwd_row(c->x + r * c->C, c->dy + r * c->C, c->dx + r * c->C, c->C, c->g,
                         c->rmean[r], c->rinv[r]);
}

static int ln_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    ln_impl *d = (ln_impl *)self->impl;
    (void)training;
    nctx c;
    memset(&c, 0, sizeof(c));
    c.k = lyr_k();
    c.x = x;
    c.y = self->y;
    c.rows = batch * d->rpb;
    c.C = d->C;
    c.eps = d->eps;
    c.a = d->gamma;
    c.b = d->beta;
    c.rmean = d->rmean;
    c.rinv = d->rinv;
    par_rows(&c, rows_ln_fwd, 8.0);
    return 0;
}

static int ln_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    ln_impl *d = (ln_impl *)self->impl;
    int64_t C = d->C, rows = batch * d->rpb;
    nctx c;
    memset(&c, 0, sizeof(c));
    c.k = lyr_k();
    c.x = x;
    c.dy = dy;
    c.dx = dx;
    c.rows = rows;
    c.C = C;
    c.part = d->part;
    c.mean = d->rmean;
    c.inv = d->rinv;
    c.rmean = d->rmean;
    c.rinv = d->rinv;
    c.g = d->gamma ? d->gamma : d->ones;
    if (self->n_params) {
        int64_t n = nchunks(rows);
        run_chunks(&c, 3, 4.0);
        float *g = self->grads;
        double *s = d->sums;
        if (d->scale) {
            combine(d->part, n, C, C, C, s);
            for (int64_t j = 0; j < C; j++) g[j] = (float)s[j];
            g += C;
        }
        if (d->center) {
            combine(d->part, n, C, 0, C, s);
            for (int64_t j = 0; j < C; j++) g[j] = (float)s[j];
        }
    }
    if (dx) par_rows(&c, rows_ln_bwd, 10.0);
    return 0;
}

static void ln_destroy(nnc_node *self) {
    ln_impl *d = (ln_impl *)self->impl;
    if (d) {
        nnc_free(d->rmean);
        nnc_free(d->rinv);
        nnc_free(d->part);
        nnc_free(d->sums);
        nnc_free(d->ones);
    }
    nnc_free(self->y);
    self->y = NULL;
}

static const nnc_node_ops ln_ops = {"layer_normalization", ln_reserve, ln_forward, ln_backward,
                                    NULL, ln_destroy};

nnc_node *nnc_layernorm_node_new(int64_t size, int64_t channels, float eps, int center, int scale,
                                 float *params, float *grads) {
    if (size < 1 || channels < 1 || size % channels || !(eps > 0.f)) return NULL;
    int64_t np = channels * ((center != 0) + (scale != 0));
    if (np && (!params || !grads)) return NULL;
    nnc_node *n = nnc_node_alloc(&ln_ops, size, size, np ? params : NULL, np ? grads : NULL, np,
                                 sizeof(ln_impl));
    if (!n) return NULL;
    ln_impl *d = (ln_impl *)n->impl;
    d->C = channels;
    d->rpb = size / channels;
    d->eps = eps;
    d->center = center != 0;
    d->scale = scale != 0;
    float *p = params;
    if (d->scale) d->gamma = p, p += channels;
    if (d->center) d->beta = p;
    d->sums = (double *)nnc_malloc((size_t)channels * sizeof(double));
    d->ones = (float *)nnc_malloc((size_t)channels * sizeof(float));
    if (!d->sums || !d->ones) {
        nnc_node_free(n);
        return NULL;
    }
    for (int64_t j = 0; j < channels; j++) d->ones[j] = 1.f;
    return n;
}

/* ---------------- Normalization ---------------- */

typedef struct {
    int64_t C, rpb;
    int invert;
    const float *mean, *var;
    float *s, *zeros; /* max(sqrt(var), 1e-7); C zeros */
} nm_impl;

static int nm_params_changed(nnc_node *self) {
    nm_impl *d = (nm_impl *)self->impl;
    for (int64_t j = 0; j < d->C; j++) {
        float s = sqrtf(d->var[j]);
        d->s[j] = s > 1e-7f ? s : 1e-7f; /* Keras: maximum(sqrt(variance), epsilon()) */
    }
    return 0;
}

static int nm_reserve(nnc_node *self, int64_t batch) { return nnc_node_reserve_y(self, batch); }

static int nm_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    nm_impl *d = (nm_impl *)self->impl;
    (void)training;
    nctx c;
    memset(&c, 0, sizeof(c));
    c.k = lyr_k();
    c.x = x;
    c.y = self->y;
    c.rows = batch * d->rpb;
    c.C = d->C;
    if (d->invert) { /* mean + x * s */
        c.a = d->s;
        c.b = d->mean;
        par_rows(&c, rows_affine, 2.0);
    } else { /* (x - mean) / s */
        c.a = d->mean;
        c.b = d->s;
        par_rows(&c, rows_standardize, 2.0);
    }
    return 0;
}

static int nm_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    nm_impl *d = (nm_impl *)self->impl;
    (void)x;
    if (self->n_params) memset(self->grads, 0, (size_t)self->n_params * sizeof(float));
    if (!dx) return 0;
    nctx c;
    memset(&c, 0, sizeof(c));
    c.k = lyr_k();
    c.x = dy;
    c.y = dx;
    c.rows = batch * d->rpb;
    c.C = d->C;
    c.a = d->invert ? d->s : d->zeros;
    c.b = d->invert ? d->zeros : d->s;
    par_rows(&c, d->invert ? rows_affine : rows_standardize, 1.0);
    return 0;
}

static void nm_destroy(nnc_node *self) {
    nm_impl *d = (nm_impl *)self->impl;
    if (d) nnc_free(d->s);
    nnc_free(self->y);
    self->y = NULL;
}

static const nnc_node_ops nm_ops = {"normalization", nm_reserve, nm_forward, nm_backward,
                                    nm_params_changed, nm_destroy};

nnc_node *nnc_normalization_node_new(int64_t size, int64_t channels, int invert, const float *mean,
                                     const float *var, float *params, float *grads,
                                     int64_t n_params) {
    if (size < 1 || channels < 1 || size % channels || !mean || !var) return NULL;
    if (n_params && (!params || !grads)) return NULL;
    nnc_node *n = nnc_node_alloc(&nm_ops, size, size, n_params ? params : NULL,
                                 n_params ? grads : NULL, n_params, sizeof(nm_impl));
    if (!n) return NULL;
    nm_impl *d = (nm_impl *)n->impl;
    d->C = channels;
    d->rpb = size / channels;
    d->invert = invert != 0;
    d->mean = mean;
    d->var = var;
    d->s = (float *)nnc_malloc((size_t)(2 * channels) * sizeof(float));
    if (!d->s) {
        nnc_node_free(n);
        return NULL;
    }
    d->zeros = d->s + channels;
    memset(d->zeros, 0, (size_t)channels * sizeof(float));
    nm_params_changed(n);
    return n;
}
