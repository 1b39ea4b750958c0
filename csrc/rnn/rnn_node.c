/* Engine nodes for LSTM / GRU / SimpleRNN and their Bidirectional wrapper.
 *
 * A sample is a batch-major sequence [T, I] (T*I floats); the output is [T, H'] or [H'] with
 * H' = H (one direction) or the merged width (Bidirectional). Weights are repacked lazily on
 * the first forward after params_changed, so an optimizer step costs one pack of U and U^T.
 * Dropout masks (Keras 3: one mask per sequence, the same for every step) come from a
 * splitmix64 generator owned by the node, seeded once from Python; they are drawn only on
 * training forwards and kept for the backward. All buffers are sized in reserve. */
#include "common/internal.h"

#include <string.h>

typedef struct {
    nnc_rnn *r[2];     /* forward direction, backward direction (Bidirectional only) */
    nnc_rnn_desc d[2];
    int ndir, merge;
    int64_t T, I, H, np1; /* np1: params per direction */
    float drop, rdrop;
    uint64_t rng;
    int dirty;
    int use_masks; /* the last forward drew masks */
    float *im[2], *rm[2];
    float *yd[2], *dyd[2], *dxb; /* Bidirectional scratch */
    int64_t cap;
    const nnc_node *msrc; /* maker of the step mask, or NULL */
    int zero_out;         /* masked steps output 0, not the previous output */
    int64_t sB;           /* stateful: the fixed batch, else 0 */
    float *sh[2], *sc[2]; /* stateful: the states the last forward ended with */
    int szero;            /* stateful: the states are zeros (start, reset) */
} rnn_node_impl;

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Inverted-dropout mask: 0 with probability p, else 1 / (1 - p). */
static void fill_mask(uint64_t *s, float *m, int64_t n, float p) {
    const float keep = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < n; i++) {
        float u = (float)(splitmix64(s) >> 40) * (1.0f / 16777216.0f);
        m[i] = u >= p ? keep : 0.0f;
    }
}

static int grow(float **p, int64_t n) {
    float *q = (float *)nnc_malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!q) return NNC_E_NOMEM;
    nnc_free(*p);
    *p = q;
    return 0;
}

static int64_t dir_out(const rnn_node_impl *m) { return m->d[0].return_sequences ? m->T * m->H : m->H; }

static int rnn_node_reserve(nnc_node *self, int64_t batch) {
    rnn_node_impl *m = (rnn_node_impl *)self->impl;
    int st = nnc_node_reserve_y(self, batch);
    for (int k = 0; k < m->ndir && !st; k++) st = nnc_rnn_reserve(m->r[k], batch, m->T, 1);
    if (st || batch <= m->cap) return st;
    for (int k = 0; k < m->ndir && !st; k++) {
        if (m->drop > 0.f) st |= grow(&m->im[k], batch * m->I);
        if (m->rdrop > 0.f) st |= grow(&m->rm[k], batch * m->H);
        if (m->ndir == 2) {
            st |= grow(&m->yd[k], batch * dir_out(m));
            st |= grow(&m->dyd[k], batch * dir_out(m));
        }
    }
    if (m->ndir == 2) st |= grow(&m->dxb, batch * m->T * m->I);
    if (!st) m->cap = batch;
    return st ? NNC_E_NOMEM : 0;
}

static int rnn_node_pack(nnc_node *self) {
    rnn_node_impl *m = (rnn_node_impl *)self->impl;
    int64_t GH = (int64_t)nnc_rnn_gates(m->d[0].cell) * m->H;
    for (int k = 0; k < m->ndir; k++) {
        const float *p = self->params + k * m->np1;
        int st = nnc_rnn_set_weights(m->r[k], p, p + m->I * GH,
                                     m->d[k].use_bias ? p + (m->I + m->H) * GH : NULL);
        if (st) return st;
    }
    m->dirty = 0;
    return 0;
}

static int rnn_node_params_changed(nnc_node *self) {
    ((rnn_node_impl *)self->impl)->dirty = 1;
    return 0;
}

static int rnn_node_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    rnn_node_impl *m = (rnn_node_impl *)self->impl;
    int st = 0;
    if (batch > m->cap || batch > self->cap) st = rnn_node_reserve(self, batch);
    if (!st && m->dirty) st = rnn_node_pack(self);
    if (st) return st;
    m->use_masks = training && (m->drop > 0.f || m->rdrop > 0.f);
    const uint8_t *smask = m->msrc ? m->msrc->smask : NULL;
    if (m->msrc && !smask) return NNC_E_ARG;
    for (int k = 0; k < m->ndir; k++) {
        nnc_rnn_set_mask(m->r[k], smask, m->zero_out);
        const float *im = NULL, *rm = NULL;
        if (m->use_masks && m->drop > 0.f) {
            fill_mask(&m->rng, m->im[k], batch * m->I, m->drop);
            im = m->im[k];
        }
        if (m->use_masks && m->rdrop > 0.f) {
            fill_mask(&m->rng, m->rm[k], batch * m->H, m->rdrop);
            rm = m->rm[k];
        }
        float *y = m->ndir == 1 ? self->y : m->yd[k];
        float *h0 = NULL, *c0 = NULL, *hT = NULL, *cT = NULL;
        if (m->sB) { /* nnc_rnn_forward reads h0/c0 before it writes hT/cT: one buffer serves */
            if (batch != m->sB) return NNC_E_ARG;
            hT = m->sh[k];
            cT = m->sc[k];
            if (!m->szero) {
                h0 = hT;
                c0 = cT;
            }
        }
        st = nnc_rnn_forward(m->r[k], x, batch, m->T, h0, c0, im, rm, y, hT, cT);
        if (st) return st;
    }
    if (m->sB) m->szero = 0;
    if (m->ndir == 1) return 0;

    /* Merge. The backward direction's sequence is in processing order: reverse it back. */
    const int64_t H = m->H, Ts = m->d[0].return_sequences ? m->T : 1, ow = self->out_size / Ts;
    const float *yf = m->yd[0], *yb = m->yd[1];
    for (int64_t b = 0; b < batch; b++)
        for (int64_t t = 0; t < Ts; t++) {
            const float *f = yf + (b * Ts + t) * H, *g = yb + (b * Ts + (Ts - 1 - t)) * H;
            float *o = self->y + (b * Ts + t) * ow;
            switch (m->merge) {
            case NNC_MERGE_CONCAT:
                memcpy(o, f, (size_t)H * sizeof(float));
                memcpy(o + H, g, (size_t)H * sizeof(float));
                break;
            case NNC_MERGE_SUM:
                for (int64_t j = 0; j < H; j++) o[j] = f[j] + g[j];
                break;
            case NNC_MERGE_MUL:
                for (int64_t j = 0; j < H; j++) o[j] = f[j] * g[j];
                break;
            default:
                for (int64_t j = 0; j < H; j++) o[j] = 0.5f * (f[j] + g[j]);
            }
        }
    return 0;
}

static int rnn_node_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    (void)x;
    rnn_node_impl *m = (rnn_node_impl *)self->impl;
    const int64_t GH = (int64_t)nnc_rnn_gates(m->d[0].cell) * m->H, H = m->H, I = m->I;
    if (m->ndir == 1) {
        float *g = self->grads;
        return nnc_rnn_backward(m->r[0], dy, NULL, NULL, dx, g, g + I * GH,
                                m->d[0].use_bias ? g + (I + H) * GH : NULL, NULL, NULL);
    }
    /* Split the merged gradient into the two directions (backward one in processing order). */
    const int64_t Ts = m->d[0].return_sequences ? m->T : 1, ow = self->out_size / Ts;
    const float *yf = m->yd[0], *yb = m->yd[1];
    for (int64_t b = 0; b < batch; b++)
        for (int64_t t = 0; t < Ts; t++) {
            const int64_t pf = (b * Ts + t) * H, pb = (b * Ts + (Ts - 1 - t)) * H;
            const float *o = dy + (b * Ts + t) * ow;
            float *df = m->dyd[0] + pf, *db = m->dyd[1] + pb;
            switch (m->merge) {
            case NNC_MERGE_CONCAT:
                memcpy(df, o, (size_t)H * sizeof(float));
                memcpy(db, o + H, (size_t)H * sizeof(float));
                break;
            case NNC_MERGE_SUM:
                memcpy(df, o, (size_t)H * sizeof(float));
                memcpy(db, o, (size_t)H * sizeof(float));
                break;
            case NNC_MERGE_MUL:
                for (int64_t j = 0; j < H; j++) {
                    df[j] = o[j] * yb[pb + j];
                    db[j] = o[j] * yf[pf + j];
                }
                break;
            default:
                for (int64_t j = 0; j < H; j++) df[j] = db[j] = 0.5f * o[j];
            }
        }
    int st = 0;
    for (int k = 0; k < 2 && !st; k++) {
        float *g = self->grads + k * m->np1;
        st = nnc_rnn_backward(m->r[k], m->dyd[k], NULL, NULL, dx ? (k ? m->dxb : dx) : NULL, g,
                              g + I * GH, m->d[k].use_bias ? g + (I + H) * GH : NULL, NULL, NULL);
    }
    if (!st && dx)
        for (int64_t i = 0; i < batch * m->T * I; i++) dx[i] += m->dxb[i];
    return st;
}

static void rnn_node_destroy(nnc_node *self) {
    rnn_node_impl *m = (rnn_node_impl *)self->impl;
    if (m) {
        for (int k = 0; k < 2; k++) {
            nnc_rnn_free(m->r[k]);
            nnc_free(m->im[k]);
            nnc_free(m->rm[k]);
            nnc_free(m->yd[k]);
            nnc_free(m->dyd[k]);
            nnc_free(m->sh[k]);
            nnc_free(m->sc[k]);
            m->r[k] = NULL;
        }
        nnc_free(m->dxb);
    }
    nnc_free(self->y);
    self->y = NULL;
}

static const nnc_node_ops rnn_node_ops = {"rnn", rnn_node_reserve, rnn_node_forward,
                                          rnn_node_backward, rnn_node_params_changed,
                                          rnn_node_destroy};
static const nnc_node_ops birnn_node_ops = {"bidirectional", rnn_node_reserve, rnn_node_forward,
                                            rnn_node_backward, rnn_node_params_changed,
                                            rnn_node_destroy};

static int desc_ok(const nnc_rnn_desc *d) {
    return d && d->cell >= NNC_RNN_SIMPLE && d->cell <= NNC_RNN_GRU && d->units >= 1 &&
           d->input_size >= 1;
}

static nnc_node *make(const nnc_rnn_desc *fw, const nnc_rnn_desc *bw, int64_t T, int merge,
                      float dropout, float rdrop, uint64_t seed, float *params, float *grads) {
    int ndir = bw ? 2 : 1;
    if (!desc_ok(fw) || T < 1 || dropout < 0.f || dropout >= 1.f || rdrop < 0.f || rdrop >= 1.f)
        return NULL;
    if (bw && (!desc_ok(bw) || bw->cell != fw->cell || bw->units != fw->units ||
               bw->input_size != fw->input_size || bw->use_bias != fw->use_bias ||
               bw->reset_after != fw->reset_after || bw->return_sequences != fw->return_sequences ||
               merge < NNC_MERGE_CONCAT || merge > NNC_MERGE_AVE))
        return NULL;
    int64_t H = fw->units, np1 = nnc_rnn_param_count(fw);
    int64_t per = fw->return_sequences ? T : 1;
    int64_t out = per * H * ((ndir == 2 && merge == NNC_MERGE_CONCAT) ? 2 : 1);
    nnc_node *n = nnc_node_alloc(ndir == 2 ? &birnn_node_ops : &rnn_node_ops, T * fw->input_size,
                                 out, params, grads, ndir * np1, sizeof(rnn_node_impl));
    if (!n) return NULL;
    rnn_node_impl *m = (rnn_node_impl *)n->impl;
    m->ndir = ndir;
    m->merge = merge;
    m->T = T;
    m->I = fw->input_size;
    m->H = H;
    m->np1 = np1;
    m->drop = dropout;
    m->rdrop = rdrop;
    m->rng = seed;
    m->dirty = 1;
    m->d[0] = *fw;
    if (bw) m->d[1] = *bw;
    for (int k = 0; k < ndir; k++) {
        m->r[k] = nnc_rnn_new(&m->d[k]);
        if (!m->r[k]) {
            nnc_node_free(n);
            return NULL;
        }
    }
    return n;
}

nnc_node *nnc_rnn_node_new(const nnc_rnn_desc *d, int64_t T, float dropout,
                           float recurrent_dropout, uint64_t seed, float *params, float *grads) {
    return make(d, NULL, T, 0, dropout, recurrent_dropout, seed, params, grads);
}

nnc_node *nnc_birnn_node_new(const nnc_rnn_desc *fw, const nnc_rnn_desc *bw, int64_t T, int merge,
                             float dropout, float recurrent_dropout, uint64_t seed, float *params,
                             float *grads) {
    return make(fw, bw, T, merge, dropout, recurrent_dropout, seed, params, grads);
}

static rnn_node_impl *rnn_impl(const nnc_node *node) {
    if (!node || (node->ops != &rnn_node_ops && node->ops != &birnn_node_ops)) return NULL;
    return (rnn_node_impl *)node->impl;
}

int nnc_rnn_node_set_mask_source(nnc_node *node, const nnc_node *src, int zero_output) {
    rnn_node_impl *m = rnn_impl(node);
    if (!m) return NNC_E_ARG;
    if (src && src->mask_steps != m->T) return NNC_E_ARG;
    m->msrc = src;
    m->zero_out = zero_output != 0;
    return 0;
}

int nnc_rnn_node_set_stateful(nnc_node *node, int64_t batch) {
    rnn_node_impl *m = rnn_impl(node);
    if (!m || batch < 1 || m->sB) return NNC_E_ARG;
    const int lstm = m->d[0].cell == NNC_RNN_LSTM;
    for (int k = 0; k < m->ndir; k++) {
        if (grow(&m->sh[k], batch * m->H) || (lstm && grow(&m->sc[k], batch * m->H)))
            return NNC_E_NOMEM;
    }
    m->sB = batch;
    m->szero = 1;
    return 0;
}

int nnc_rnn_node_reset_state(nnc_node *node) {
    rnn_node_impl *m = rnn_impl(node);
    if (!m || !m->sB) return NNC_E_ARG;
    m->szero = 1;
    return 0;
}

int nnc_rnn_node_get_state(const nnc_node *node, int dir, float *h, float *c) {
    const rnn_node_impl *m = rnn_impl(node);
    if (!m || !m->sB || dir < 0 || dir >= m->ndir) return NNC_E_ARG;
    const size_t n = (size_t)(m->sB * m->H);
    if (h) {
        if (m->szero) memset(h, 0, n * sizeof(float));
        else memcpy(h, m->sh[dir], n * sizeof(float));
    }
    if (c && m->sc[dir]) {
        if (m->szero) memset(c, 0, n * sizeof(float));
        else memcpy(c, m->sc[dir], n * sizeof(float));
    }
    return 0;
}
