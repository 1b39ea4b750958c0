/* Dropout (with Keras's noise_shape, hence SpatialDropout), GaussianNoise and GaussianDropout.
 *
 * Layout: flat per-sample vectors. Randomness is a stateless counter hash: a 64-bit key from
 * (seed, step, sample) by splitmix64, then a 32-bit mixer of (element index, key), so an
 * element's draw does not depend on how the work is split between threads, nor on the ISA
 * (the mixer is plain 32-bit integer code the vectoriser handles on AVX2/AVX-512). The node
 * counts its training forwards (step), so every step draws a fresh mask.
 * Dropout keeps its mask as bytes (cap x size) for backward; the Gaussian layers regenerate
 * their noise from the step of the last training forward instead of storing it. */
#include "lyr_internal.h"

#include <math.h>
#include <string.h>

/* ---------------- Dropout ---------------- */

typedef struct {
    float rate, scale;
    uint32_t thr;      /* keep iff hash >= thr; thr = rate * 2^32 */
    uint64_t seed, step;
    int64_t msize;     /* mask values per sample (== size without broadcast) */
    uint32_t *map;     /* element -> mask index; NULL without broadcast */
    int batch_bcast;
    uint8_t *mask;     /* cap x size */
    uint8_t *small;    /* cap x msize (broadcast only) */
    int trained;       /* last forward was a training one */
    /* per-call arguments for the range workers */
    const float *x;
    float *y;
    const float *dy;
    float *dx;
    uint64_t cur_step;
    int64_t size;
} drop_impl;

static int drop_reserve(nnc_node *self, int64_t batch) {
    drop_impl *d = (drop_impl *)self->impl;
    int st = nnc_node_reserve_y(self, batch);
    if (st) return st;
    uint8_t *m = (uint8_t *)nnc_malloc((size_t)(batch * self->out_size));
    if (!m) return NNC_E_NOMEM;
    nnc_free(d->mask);
    d->mask = m;
    if (d->map) {
        uint8_t *s = (uint8_t *)nnc_malloc((size_t)(batch * d->msize));
        if (!s) return NNC_E_NOMEM;
        nnc_free(d->small);
        d->small = s;
    }
    return 0;
}

/* Flat range [i0, i1) of the batch: generate the mask and apply it, sample by sample. */
static void drop_fwd_range(void *p, int64_t i0, int64_t i1) {
    drop_impl *d = (drop_impl *)p;
    const lyr_kernels *k = lyr_k();
    int64_t size = d->size;
    while (i0 < i1) {
        int64_t b = i0 / size, j0 = i0 - b * size, n = NNC_MIN(i1 - i0, size - j0);
        uint64_t key = lyr_key(d->seed, d->cur_step, (uint64_t)b);
        k->drop_fwd(d->x + i0, d->y + i0, d->mask + i0, n, (uint32_t)j0, (uint32_t)key,
                    (uint32_t)(key >> 32), d->thr, d->scale);
        i0 += n;
    }
}

/* Broadcast noise shape: expand the small per-sample masks, then apply. */
static void drop_expand_range(void *p, int64_t i0, int64_t i1) {
    drop_impl *d = (drop_impl *)p;
    int64_t size = d->size;
    for (int64_t i = i0; i < i1; i++) {
        int64_t b = i / size, j = i - b * size;
        d->mask[i] = d->small[(d->batch_bcast ? 0 : b) * d->msize + d->map[j]];
    }
    lyr_k()->mask_mul(d->x + i0, d->mask + i0, d->y + i0, i1 - i0, d->scale);
}

static void drop_bwd_range(void *p, int64_t i0, int64_t i1) {
    drop_impl *d = (drop_impl *)p;
    lyr_k()->mask_mul(d->dy + i0, d->mask + i0, d->dx + i0, i1 - i0, d->scale);
}

static int drop_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    drop_impl *d = (drop_impl *)self->impl;
    int64_t n = batch * self->out_size;
    d->trained = training == 1; /* 2: inference behaviour with backward (explanations) */
    if (!d->trained) {
        if (self->y != x) memcpy(self->y, x, (size_t)n * sizeof(float));
        return 0;
    }
    d->cur_step = d->step++;
    d->x = x;
    d->y = self->y;
    int nt = nnc_elem_threads(0, (double)n * 12.0, (n + 1023) / 1024);
    if (!d->map) {
        nnc_parallel_ranges(n, 64, nt, drop_fwd_range, d);
    } else {
        const lyr_kernels *k = lyr_k();
        int64_t ns = d->batch_bcast ? 1 : batch;
        for (int64_t b = 0; b < ns; b++) {
            uint64_t key = lyr_key(d->seed, d->cur_step, (uint64_t)b);
            k->drop_fwd(NULL, NULL, d->small + b * d->msize, d->msize, 0, (uint32_t)key,
                        (uint32_t)(key >> 32), d->thr, d->scale);
        }
        nnc_parallel_ranges(n, 64, nt, drop_expand_range, d);
    }
    return 0;
}

static int drop_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    drop_impl *d = (drop_impl *)self->impl;
    (void)x;
    if (!dx) return 0;
    int64_t n = batch * self->out_size;
    if (!d->trained) {
        memcpy(dx, dy, (size_t)n * sizeof(float));
        return 0;
    }
    d->dy = dy;
    d->dx = dx;
    int nt = nnc_elem_threads(0, (double)n, (n + 1023) / 1024);
    nnc_parallel_ranges(n, 64, nt, drop_bwd_range, d);
    return 0;
}

static void drop_destroy(nnc_node *self) {
    drop_impl *d = (drop_impl *)self->impl;
    if (d) {
        nnc_free(d->mask);
        nnc_free(d->small);
        nnc_free(d->map);
    }
    nnc_free(self->y);
    self->y = NULL;
}

static const nnc_node_ops drop_ops = {"dropout", drop_reserve, drop_forward, drop_backward, NULL,
                                      drop_destroy};

nnc_node *nnc_dropout_node_new(int64_t size, float rate, uint64_t seed, int ndim,
                               const int64_t *dims, const int *bcast, int batch_bcast) {
    if (size < 1 || size > (int64_t)UINT32_MAX || !(rate >= 0.f && rate < 1.f) || ndim < 0 ||
        (ndim && (!dims || !bcast)))
        return NULL;
    int64_t prod = 1, msize = 1;
    int any = batch_bcast != 0;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 1) return NULL;
        prod *= dims[i];
        if (bcast[i]) any = 1;
        else msize *= dims[i];
    }
    if (ndim && prod != size) return NULL;
    nnc_node *n = nnc_node_alloc(&drop_ops, size, size, NULL, NULL, 0, sizeof(drop_impl));
    if (!n) return NULL;
    drop_impl *d = (drop_impl *)n->impl;
    d->rate = rate;
    d->scale = 1.f / (1.f - rate);
    d->thr = (uint32_t)NNC_MIN((double)rate * 4294967296.0, 4294967295.0);
    d->seed = seed;
    d->size = size;
    d->msize = ndim ? msize : size;
    d->batch_bcast = batch_bcast != 0;
    if (any) {
        /* element -> mask index: row-major over the non-broadcast axes */
        d->map = (uint32_t *)nnc_malloc((size_t)size * sizeof(uint32_t));
        if (!d->map) {
            nnc_node_free(n);
            return NULL;
        }
        for (int64_t j = 0; j < size; j++) {
            int64_t rem = j, mi = 0, mstride = 1;
            for (int i = ndim - 1; i >= 0; i--) { /* last axis fastest */
                int64_t c = rem % dims[i];
                rem /= dims[i];
                if (!bcast[i]) {
                    mi += c * mstride;
                    mstride *= dims[i];
                }
            }
            d->map[j] = (uint32_t)(ndim ? mi : j);
        }
    }
    return n;
}

/* ---------------- GaussianNoise / GaussianDropout ---------------- */

typedef struct {
    float s;
    int mult;
    uint64_t seed, step, cur_step;
    int trained;
    int64_t size;
    const float *x;
    float *y;
} gn_impl;

/* N(0,1) for element j of a sample with key (Box-Muller on two counter draws). */
static inline float gn_normal(uint32_t j, uint32_t klo, uint32_t khi) {
    uint32_t h1 = lyr_hash(2u * j, klo, khi), h2 = lyr_hash(2u * j + 1u, klo, khi);
    float u1 = (float)((h1 >> 8) + 1u) * (1.f / 16777216.f); /* (0, 1] */
    float u2 = (float)(h2 >> 8) * (1.f / 16777216.f);
    return sqrtf(-2.f * logf(u1)) * cosf(6.28318531f * u2);
}

/* mode 0: y = x + s*n; mode 1: y = x * (1 + s*n) (x is dy in backward). */
static void gn_range(void *p, int64_t i0, int64_t i1) {
    gn_impl *d = (gn_impl *)p;
    int64_t size = d->size;
    while (i0 < i1) {
        int64_t b = i0 / size, j0 = i0 - b * size, n = NNC_MIN(i1 - i0, size - j0);
        uint64_t key = lyr_key(d->seed, d->cur_step, (uint64_t)b);
        uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
        const float *x = d->x + i0;
        float *y = d->y + i0;
        if (d->mult)
            for (int64_t i = 0; i < n; i++)
                y[i] = x[i] * (1.f + d->s * gn_normal((uint32_t)(j0 + i), klo, khi));
        else
            for (int64_t i = 0; i < n; i++)
                y[i] = x[i] + d->s * gn_normal((uint32_t)(j0 + i), klo, khi);
        i0 += n;
    }
}

static int gn_reserve(nnc_node *self, int64_t batch) { return nnc_node_reserve_y(self, batch); }

static int gn_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    gn_impl *d = (gn_impl *)self->impl;
    int64_t n = batch * self->out_size;
    d->trained = training == 1;
    if (!d->trained) {
        memcpy(self->y, x, (size_t)n * sizeof(float));
        return 0;
    }
    d->cur_step = d->step++;
    d->x = x;
    d->y = self->y;
    int nt = nnc_elem_threads(0, (double)n * 40.0, (n + 255) / 256);
    nnc_parallel_ranges(n, 64, nt, gn_range, d);
    return 0;
}

static int gn_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    gn_impl *d = (gn_impl *)self->impl;
    (void)x;
    if (!dx) return 0;
    int64_t n = batch * self->out_size;
    if (!d->trained || !d->mult) { /* additive noise: identity gradient */
        memcpy(dx, dy, (size_t)n * sizeof(float));
        return 0;
    }
    d->x = dy;
    d->y = dx;
    int nt = nnc_elem_threads(0, (double)n * 40.0, (n + 255) / 256);
    nnc_parallel_ranges(n, 64, nt, gn_range, d);
    return 0;
}

static void gn_destroy(nnc_node *self) {
    nnc_free(self->y);
    self->y = NULL;
}

static const nnc_node_ops gn_ops = {"gaussian_noise", gn_reserve, gn_forward, gn_backward, NULL,
                                    gn_destroy};

nnc_node *nnc_gaussian_noise_node_new(int64_t size, float stddev, uint64_t seed, int mult) {
    if (size < 1 || size > (int64_t)INT32_MAX || !(stddev >= 0.f) || !isfinite(stddev))
        return NULL;
    nnc_node *n = nnc_node_alloc(&gn_ops, size, size, NULL, NULL, 0, sizeof(gn_impl));
    if (!n) return NULL;
    gn_impl *d = (gn_impl *)n->impl;
    d->s = stddev;
    d->mult = mult != 0;
    d->seed = seed;
    d->size = size;
    return n;
}

/* ---------------- test helpers ---------------- */

int nnc_lyr_node_forward(nnc_node *node, const float *x, int64_t batch, int training, float *y) {
    if (!node || batch < 1) return NNC_E_ARG;
    if (batch > node->cap || !node->y) {
        int st = node->ops->reserve(node, batch);
        if (st) return st;
    }
    int st = node->ops->forward(node, x, batch, training);
    if (st) return st;
    memcpy(y, node->y, (size_t)(batch * node->out_size) * sizeof(float));
    return 0;
}

int nnc_lyr_node_backward(nnc_node *node, const float *x, const float *dy, float *dx,
                          int64_t batch) {
    if (!node || batch < 1 || batch > node->cap) return NNC_E_ARG;
    size_t bytes = (size_t)(batch * node->out_size) * sizeof(float);
    float *g = (float *)nnc_malloc(bytes);
    if (!g) return NNC_E_NOMEM;
    memcpy(g, dy, bytes);
    int st = node->ops->backward(node, x, g, dx, batch);
    nnc_free(g);
    return st;
}
