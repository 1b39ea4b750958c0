/* Embedding: a gather of table rows, and the scatter-add of its gradient.
 *
 * Layout: table [input_dim x output_dim] row-major (Keras's "embeddings"); a sample is `length`
 * indices encoded as floats (the engine's inputs are float32; exact below 2^24, which the
 * Python layer enforces for input_dim). Each index is range-checked before its row is read:
 * a bad index (or NaN) fails the call with NNC_E_INDEX, never an out-of-bounds read.
 * The gradient adds dy rows into the zeroed table in sample order; threads split the columns,
 * so duplicate indices accumulate in the same order for any thread count. */
#include "lyr_internal.h"

#include <string.h>

typedef struct {
    int64_t L, V, D;
    int mask_zero;
    int32_t *idx; /* cap x L indices of the last forward */
    int64_t icap;
    /* per-call */
    const float *x, *dy;
    float *y;
    uint8_t *smask;
    int64_t n;
    int bad;
} emb_impl;

static int emb_reserve(nnc_node *self, int64_t batch) {
    emb_impl *d = (emb_impl *)self->impl;
    int st = nnc_node_reserve_y(self, batch);
    if (st) return st;
    if (batch * d->L > d->icap) {
        int32_t *p = (int32_t *)nnc_malloc((size_t)(batch * d->L) * sizeof(int32_t));
        uint8_t *m = d->mask_zero ? (uint8_t *)nnc_malloc((size_t)(batch * d->L)) : NULL;
        if (!p || (d->mask_zero && !m)) {
            nnc_free(p);
            nnc_free(m);
            return NNC_E_NOMEM;
        }
        nnc_free(d->idx);
        d->idx = p;
        if (m) {
            nnc_free(self->smask);
            self->smask = m;
        }
        d->icap = batch * d->L;
    }
    return 0;
}

static void emb_gather(void *p, int64_t i0, int64_t i1) {
    emb_impl *d = (emb_impl *)p;
    const float *params = (const float *)d->dy; /* the table, passed through dy */
    float vmax = (float)d->V;
    for (int64_t i = i0; i < i1; i++) {
        float v = d->x[i];
        if (!(v > -1.f && v < vmax)) { /* NaN fails too */
            d->bad = 1;
            return;
        }
        int32_t k = (int32_t)v; /* truncation toward zero, as Keras's cast */
        d->idx[i] = k;
        if (d->mask_zero) d->smask[i] = k != 0;
        memcpy(d->y + i * d->D, params + (int64_t)k * d->D, (size_t)d->D * sizeof(float));
    }
}

static int emb_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    emb_impl *d = (emb_impl *)self->impl;
    (void)training;
    d->x = x;
    d->y = self->y;
    d->dy = self->params;
    d->smask = self->smask;
    d->bad = 0;
    int64_t n = batch * d->L;
    int nt = nnc_elem_threads(0, (double)n * (double)d->D, n);
    nnc_parallel_ranges(n, 16, nt, emb_gather, d);
    return d->bad ? NNC_E_INDEX : 0;
}

/* Columns [c0, c1) of the table gradient: rows added in sample order. */
static void emb_scatter(void *p, int64_t c0, int64_t c1) {
    emb_impl *d = (emb_impl *)p;
    float *g = d->y;
    for (int64_t i = 0; i < d->n; i++) {
        float *gr = g + (int64_t)d->idx[i] * d->D;
        const float *dr = d->dy + i * d->D;
        for (int64_t c = c0; c < c1; c++) gr[c] += dr[c];
    }
}

static int emb_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    emb_impl *d = (emb_impl *)self->impl;
    (void)x;
    memset(self->grads, 0, (size_t)(d->V * d->D) * sizeof(float));
    d->dy = dy;
    d->y = self->grads;
    d->n = batch * d->L;
    int nt = nnc_elem_threads(0, (double)d->n * (double)d->D, (d->D + 15) / 16);
    nnc_parallel_ranges(d->D, 16, nt, emb_scatter, d);
    if (dx) memset(dx, 0, (size_t)(batch * d->L) * sizeof(float)); /* indices: no gradient */
    return 0;
}

static void emb_destroy(nnc_node *self) {
    emb_impl *d = (emb_impl *)self->impl;
    if (d) nnc_free(d->idx);
    nnc_free(self->smask);
    self->smask = NULL;
    nnc_free(self->y);
    self->y = NULL;
}

static const nnc_node_ops emb_ops = {"embedding", emb_reserve, emb_forward, emb_backward, NULL,
                                     emb_destroy};

nnc_node *nnc_embedding_node_new(int64_t length, int64_t input_dim, int64_t output_dim,
                                 int mask_zero, float *params, float *grads) {
    if (length < 1 || input_dim < 1 || input_dim > (1 << 24) || output_dim < 1 || !params ||
        !grads)
        return NULL;
    nnc_node *n = nnc_node_alloc(&emb_ops, length, length * output_dim, params, grads,
                                 input_dim * output_dim, sizeof(emb_impl));
    if (!n) return NULL;
    emb_impl *d = (emb_impl *)n->impl;
    d->L = length;
    d->V = input_dim;
    d->D = output_dim;
    d->mask_zero = mask_zero != 0;
    if (mask_zero) n->mask_steps = length;
    return n;
}
