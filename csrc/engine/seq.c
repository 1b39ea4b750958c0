/* The sequential model: forward, loss, backward and the optimizer step of whole runs of batches
 * in one call, so Python pays a handful of calls per chunk of steps, not per layer.
 *
 * Buffers are sized for the largest batch seen (grow-only); a step allocates nothing.
 * Losses: Keras's sum_over_batch_size reduction, sum_i w_i*loss_i / rows. When the model ends in
 * softmax/sigmoid and the loss is the matching cross-entropy, the last node runs linear and the
 * loss works on logits (stable, one pass); out_act is then applied only to what is returned. */
#include "../common/internal.h"

#include <math.h>
#include <string.h>

struct nnc_seq {
    nnc_node **nodes;
    int n;
    int64_t in_size, out_size, max_size;
    int out_act;
    int first_p;    /* first node with weights: without an input gradient, backward stops there */
    int64_t cap;
    float *xbuf;    /* gathered inputs, cap x in_size */
    float *g[2];    /* gradient ping-pong, cap x max_size */
    float *tbuf;    /* gathered float targets, cap x out_size */
    int32_t *lbuf;  /* gathered int labels, cap */
    float *wbuf;    /* gathered sample weights, cap */
    float *pbuf;    /* out_act(logits), cap x out_size */
    /* compile state */
    int compiled;
    float *P, *G, *s0, *s1, *s2;
    int64_t np;
    int loss, from_logits, fused;
    float loss_params[NNC_LOSS_NPARAMS]; /* nnc_loss's param; focal's gamma, alpha, balance */
    nnc_optimizer opt;
    int64_t t;
    /* trainable ranges (offsets into P/G) with their regularizers */
    int nr, ns;             /* trainable ranges (one per weight) and their merged spans */
    int64_t *roff, *rlen, *soff, *slen;
    float *rl1, *rl2;
};

nnc_seq *nnc_seq_new(nnc_node **nodes, int n_nodes, int64_t in_size, int out_act) {
    nnc_seq *s = (nnc_seq *)nnc_malloc(sizeof(nnc_seq));
    if (!s) return NULL;
    memset(s, 0, sizeof(*s));
    s->nodes = (nnc_node **)nnc_malloc(sizeof(nnc_node *) * (size_t)(n_nodes > 0 ? n_nodes : 1));
    if (!s->nodes) {
        nnc_free(s);
        return NULL;
    }
    s->n = n_nodes;
    s->in_size = s->max_size = in_size;
    for (int i = 0; i < n_nodes; i++) {
        s->nodes[i] = nodes[i];
        s->max_size = NNC_MAX(s->max_size, NNC_MAX(nodes[i]->in_size, nodes[i]->out_size));
    }
    s->out_size = n_nodes ? nodes[n_nodes - 1]->out_size : in_size;
    /* a Masking or Dropout layer first must not cost the next layer its dX */
    while (s->first_p < n_nodes - 1 && nodes[s->first_p]->n_params == 0) s->first_p++;
    s->out_act = out_act;
    return s;
}

void nnc_seq_free(nnc_seq *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) nnc_node_free(s->nodes[i]);
    nnc_free(s->nodes);
    nnc_free(s->xbuf);
    nnc_free(s->g[0]);
    nnc_free(s->g[1]);
    nnc_free(s->tbuf);
    nnc_free(s->lbuf);
    nnc_free(s->wbuf);
    nnc_free(s->pbuf);
    nnc_free(s->roff);
    nnc_free(s);
}

int nnc_seq_set_param_ranges(nnc_seq *s, int n_ranges, const int64_t *offsets,
                             const int64_t *sizes, const float *l1, const float *l2) {
    if (n_ranges < 0 || (n_ranges > 0 && (!offsets || !sizes))) return NNC_E_ARG;
    /* in arena order, inside the arena, no overlap: the optimizer writes through them */
    for (int i = 0; i < n_ranges; i++)
        if (offsets[i] < 0 || sizes[i] < 0 || offsets[i] + sizes[i] > s->np ||
            (i > 0 && offsets[i] < offsets[i - 1] + sizes[i - 1]))
            return NNC_E_ARG;
    /* one block: offsets, lengths, span offsets, span lengths, l1, l2 */
    const size_t cap = (size_t)(n_ranges > 0 ? n_ranges : 1);
    char *blk = (char *)nnc_malloc(cap * (4 * sizeof(int64_t) + 2 * sizeof(float)));
    if (!blk) return NNC_E_NOMEM;
    nnc_free(s->roff);
    s->roff = (int64_t *)blk;
    s->rlen = s->roff + cap;
    s->soff = s->rlen + cap;
    s->slen = s->soff + cap;
    s->rl1 = (float *)(s->slen + cap);
    s->rl2 = s->rl1 + cap;
    s->ns = 0;
    for (int i = 0; i < n_ranges; i++) {
        s->roff[i] = offsets[i];
        s->rlen[i] = sizes[i];
        s->rl1[i] = l1 ? l1[i] : 0.f;
        s->rl2[i] = l2 ? l2[i] : 0.f;
        /* adjacent ranges merge into one span for the elementwise passes (one update call
         * over all trainable weights in the usual case) */
        if (s->ns > 0 && s->soff[s->ns - 1] + s->slen[s->ns - 1] == offsets[i])
            s->slen[s->ns - 1] += sizes[i];
        else {
            s->soff[s->ns] = offsets[i];
            s->slen[s->ns++] = sizes[i];
        }
    }
    s->nr = n_ranges;
    return 0;
}

int64_t nnc_seq_out_size(const nnc_seq *s) { return s->out_size; }
int64_t nnc_seq_num_params(const nnc_seq *s) { return s->np; }
nnc_node *nnc_seq_node(nnc_seq *s, int i) { return (i >= 0 && i < s->n) ? s->nodes[i] : NULL; }
void nnc_seq_set_step(nnc_seq *s, int64_t t) { s->t = t; }
int64_t nnc_seq_get_step(const nnc_seq *s) { return s->t; }

static int grow(float **p, int64_t n) {
    float *q = (float *)nnc_malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!q) return NNC_E_NOMEM;
    nnc_free(*p);
    *p = q;
    return 0;
}

static int reserve(nnc_seq *s, int64_t batch) {
    if (batch <= s->cap) return 0;
    int st = 0;
    for (int i = 0; i < s->n && !st; i++) st = s->nodes[i]->ops->reserve(s->nodes[i], batch);
    if (!st) st = grow(&s->xbuf, batch * s->in_size);
    if (!st) st = grow(&s->g[0], batch * s->max_size);
    if (!st) st = grow(&s->g[1], batch * s->max_size);
    if (!st) st = grow(&s->tbuf, batch * s->out_size);
    if (!st) st = grow((float **)&s->lbuf, batch);
    if (!st) st = grow(&s->wbuf, batch);
    if (!st) st = grow(&s->pbuf, batch * s->out_size);
    if (!st) s->cap = batch;
    return st;
}

/* Runs the chain on rows x; returns the last output (logits when out_act is split off). */
static const float *forward(nnc_seq *s, const float *x, int64_t rows, int training, int *st) {
    for (int i = 0; i < s->n; i++) {
        *st = s->nodes[i]->ops->forward(s->nodes[i], x, rows, training);
        if (*st) return NULL;
        x = s->nodes[i]->y;
    }
    return x;
}

int nnc_seq_params_changed(nnc_seq *s) {
    for (int i = 0; i < s->n; i++)
        if (s->nodes[i]->ops->params_changed) {
            int st = s->nodes[i]->ops->params_changed(s->nodes[i]);
            if (st) return st;
        }
    return 0;
}

int nnc_seq_predict(nnc_seq *s, const float *X, int64_t n, int64_t batch_size, float *out) {
    if (!nnc_all_finite(X, n * s->in_size)) return NNC_E_NONFINITE;
    if (batch_size < 1) batch_size = 32;
    int64_t bs = NNC_MIN(batch_size, n);
    int st = reserve(s, bs);
    for (int64_t r0 = 0; r0 < n && !st; r0 += bs) {
        int64_t rows = NNC_MIN(bs, n - r0);
        const float *y = forward(s, X + r0 * s->in_size, rows, 0, &st);
        if (st) break;
        float *o = out + r0 * s->out_size;
        if (s->out_act != NNC_ACT_LINEAR)
            st = nnc_act_forward(s->out_act, 0.f, y, o, rows, s->out_size, 0);
        else
            memcpy(o, y, (size_t)(rows * s->out_size) * sizeof(float));
    }
    return st;
}

int nnc_seq_set_loss_params(nnc_seq *s, const float *params) {
    if (!params) return NNC_E_ARG;
    memcpy(s->loss_params, params, sizeof(s->loss_params));
    return 0;
}

int nnc_seq_compile(nnc_seq *s, float *params, float *grads, int64_t n_params, int loss,
                    int from_logits, float loss_param, const nnc_optimizer *opt, float *slot0,
                    float *slot1, float *slot2) {
    if (loss < 0 || loss >= NNC_LOSS_COUNT || !opt) return NNC_E_ARG;
    s->P = params;
    s->G = grads;
    s->np = n_params;
    s->loss = loss;
    s->from_logits = from_logits;
    s->loss_params[0] = loss_param;
    s->loss_params[1] = NNC_FOCAL_GAMMA; /* until nnc_seq_set_loss_params */
    s->loss_params[2] = NNC_FOCAL_ALPHA;
    s->loss_params[3] = 0.0f;
    s->opt = *opt;
    s->s0 = slot0;
    s->s1 = slot1;
    s->s2 = slot2;
    /* softmax/sigmoid + matching cross-entropy: the loss takes the logits. */
    s->fused = !from_logits &&
               ((s->out_act == NNC_ACT_SIGMOID &&
                 (loss == NNC_LOSS_BINARY_CE || loss == NNC_LOSS_BINARY_FOCAL_CE)) ||
                (s->out_act == NNC_ACT_SOFTMAX &&
                 (loss == NNC_LOSS_CATEGORICAL_CE || loss == NNC_LOSS_SPARSE_CATEGORICAL_CE)));
    if (!s->roff) {
        int64_t off = 0;
        int st = nnc_seq_set_param_ranges(s, n_params > 0 ? 1 : 0, &off, &n_params, NULL, NULL);
        if (st) return st;
    }
    s->compiled = 1;
    return 0;
}

/* Loss of `rows` outputs y (last node output) against gathered targets; grad into g (may be
 * NULL). Also writes out_act(y) into pbuf when out_act is split off. */
static int loss_and_grad(nnc_seq *s, const float *y, int64_t rows, const void *tgt,
                         const float *w, double *lsum, float *g) {
    int st = 0;
    float scale = 1.f / (float)rows;
    const float *pred = y;
    if (s->out_act != NNC_ACT_LINEAR) {
        st = nnc_act_forward(s->out_act, 0.f, y, s->pbuf, rows, s->out_size, 0);
        if (st) return st;
        pred = s->pbuf;
    }
    if (s->fused || s->out_act == NNC_ACT_LINEAR)
        return nnc_loss_ex(s->loss, s->fused ? 1 : s->from_logits, s->loss_params, y, tgt, w,
                           rows, s->out_size, scale, lsum, g, 0);
    /* Loss on out_act(y), then back through out_act. */
    st = nnc_loss_ex(s->loss, s->from_logits, s->loss_params, pred, tgt, w, rows, s->out_size,
                     scale, lsum, g, 0);
    if (st || !g) return st;
    return nnc_act_backward(s->out_act, 0.f, y, pred, g, g, rows, s->out_size, NULL, 0);
}

static double sumsq(const float *g, int64_t n) {
    /* Fixed-order double accumulation: independent of threads. */
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) acc += (double)g[i] * g[i];
    return acc;
}

static void scale(float *g, int64_t n, float f) {
    for (int64_t i = 0; i < n; i++) g[i] *= f;
}

/* Adds the regularizers' gradients (and returns their loss) for the current weights. */
static double regularize(nnc_seq *s) {
    double pen = 0.0;
    for (int r = 0; r < s->nr; r++) {
        float l1 = s->rl1[r], l2 = s->rl2[r];
        if (l1 == 0.f && l2 == 0.f) continue;
        const float *w = s->P + s->roff[r];
        float *g = s->G + s->roff[r];
        double a1 = 0.0, a2 = 0.0;
        for (int64_t i = 0; i < s->rlen[r]; i++) {
            float v = w[i];
            a1 += fabsf(v);
            a2 += (double)v * v;
            g[i] += l1 * (v > 0.f ? 1.f : (v < 0.f ? -1.f : 0.f)) + 2.f * l2 * v;
        }
        pen += l1 * a1 + l2 * a2;
    }
    return pen;
}

static int optimizer_step(nnc_seq *s, float lr) {
    const nnc_optimizer *o = &s->opt;
    if (s->nr == 0) return 0;
    if (o->clipvalue > 0.f)
        for (int r = 0; r < s->ns; r++) {
            float *g = s->G + s->soff[r], c = o->clipvalue;
            for (int64_t i = 0; i < s->slen[r]; i++) g[i] = g[i] > c ? c : (g[i] < -c ? -c : g[i]);
        }
    if (o->clipnorm > 0.f) /* per variable, as Keras */
        for (int r = 0; r < s->nr; r++) {
            double norm = sqrt(sumsq(s->G + s->roff[r], s->rlen[r]));
            if (norm > o->clipnorm) scale(s->G + s->roff[r], s->rlen[r], (float)(o->clipnorm / norm));
        }
    if (o->global_clipnorm > 0.f) {
        double tot = 0.0;
        for (int r = 0; r < s->nr; r++) tot += sumsq(s->G + s->roff[r], s->rlen[r]);
        double norm = sqrt(tot);
        if (norm > o->global_clipnorm)
            for (int r = 0; r < s->ns; r++)
                scale(s->G + s->soff[r], s->slen[r], (float)(o->global_clipnorm / norm));
    }
    s->t += 1;
    int st = 0;
    for (int r = 0; r < s->ns && !st; r++) {
        int64_t off = s->soff[r], n = s->slen[r];
        float *p = s->P + off, *g = s->G + off;
        float *m0 = s->s0 ? s->s0 + off : NULL, *m1 = s->s1 ? s->s1 + off : NULL,
              *m2 = s->s2 ? s->s2 + off : NULL;
        switch (o->kind) {
        case NNC_OPT_SGD:
            st = nnc_sgd_update(p, g, m0, n, lr, o->momentum, o->nesterov, o->weight_decay, 0);
            break;
        case NNC_OPT_ADAM:
            st = nnc_adam_update(p, g, m0, m1, o->amsgrad ? m2 : NULL, n, lr, o->beta1, o->beta2,
                                 o->eps, s->t, o->weight_decay, 0);
            break;
        case NNC_OPT_RMSPROP:
            st = nnc_rmsprop_update(p, g, m0, m1, m2, n, lr, o->rho, o->momentum, o->eps,
                                    o->centered, o->weight_decay, 0);
            break;
        default: st = NNC_E_ARG;
        }
    }
    return st;
}

/* Backward through all nodes from the loss gradient in g[0]; dx of the first node into dx0. */
static int backward(nnc_seq *s, const float *x0, int64_t rows, float *dx0) {
    int cur = 0, st = 0;
    const int first_p = dx0 ? 0 : s->first_p; /* nothing before it needs an input gradient */
    for (int i = s->n - 1; i >= first_p && !st; i--) {
        nnc_node *nd = s->nodes[i];
        const float *x = i ? s->nodes[i - 1]->y : x0;
        float *dx = i > first_p ? s->g[1 - cur] : dx0;
        st = nd->ops->backward(nd, x, s->g[cur], dx, rows);
        cur = 1 - cur;
    }
    return st;
}

static void gather(nnc_seq *s, const float *X, const void *Y, const float *sw, const int64_t *idx,
                   int64_t rows) {
    int sparse = s->loss == NNC_LOSS_SPARSE_CATEGORICAL_CE;
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = idx[r];
        memcpy(s->xbuf + r * s->in_size, X + i * s->in_size, (size_t)s->in_size * sizeof(float));
        if (sparse)
            s->lbuf[r] = ((const int32_t *)Y)[i];
        else
            memcpy(s->tbuf + r * s->out_size, (const float *)Y + i * s->out_size,
                   (size_t)s->out_size * sizeof(float));
        if (sw) s->wbuf[r] = sw[i];
    }
}

int nnc_seq_train(nnc_seq *s, const float *X, const void *Y, const float *sw, const int64_t *idx,
                  int64_t n_idx, int64_t batch_size, const float *lrs, double *batch_loss,
                  float *preds) {
    if (!s->compiled || batch_size < 1) return NNC_E_ARG;
    int64_t bs = NNC_MIN(batch_size, n_idx);
    int st = reserve(s, bs);
    int sparse = s->loss == NNC_LOSS_SPARSE_CATEGORICAL_CE;
    for (int64_t b = 0, r0 = 0; r0 < n_idx && !st; b++, r0 += bs) {
        int64_t rows = NNC_MIN(bs, n_idx - r0);
        gather(s, X, Y, sw, idx + r0, rows);
        const void *tgt = sparse ? (const void *)s->lbuf : (const void *)s->tbuf;
        const float *y = forward(s, s->xbuf, rows, 1, &st);
        if (st) break;
        double lsum = 0.0;
        st = loss_and_grad(s, y, rows, tgt, sw ? s->wbuf : NULL, &lsum, s->g[0]);
        if (st) break;
        batch_loss[b] = lsum / (double)rows;
        if (preds) {
            const float *p = s->out_act != NNC_ACT_LINEAR ? s->pbuf : y;
            memcpy(preds + r0 * s->out_size, p, (size_t)(rows * s->out_size) * sizeof(float));
        }
        st = backward(s, s->xbuf, rows, NULL);
        if (st) break;
        batch_loss[b] += regularize(s); /* Keras adds the penalties to the reported loss */
        st = optimizer_step(s, lrs[b]);
        if (!st) st = nnc_seq_params_changed(s);
    }
    return st;
}

int nnc_seq_evaluate(nnc_seq *s, const float *X, const void *Y, const float *sw, int64_t n,
                     int64_t batch_size, double *loss_sum, float *preds) {
    if (!s->compiled || batch_size < 1) return NNC_E_ARG;
    int64_t bs = NNC_MIN(batch_size, n);
    int st = reserve(s, bs);
    int sparse = s->loss == NNC_LOSS_SPARSE_CATEGORICAL_CE;
    *loss_sum = 0.0;
    for (int64_t r0 = 0; r0 < n && !st; r0 += bs) {
        int64_t rows = NNC_MIN(bs, n - r0);
        const float *y = forward(s, X + r0 * s->in_size, rows, 0, &st);
        if (st) break;
        const void *tgt = sparse ? (const void *)((const int32_t *)Y + r0)
                                 : (const void *)((const float *)Y + r0 * s->out_size);
        st = loss_and_grad(s, y, rows, tgt, sw ? sw + r0 : NULL, loss_sum, NULL);
        if (!st && preds) {
            const float *p = s->out_act != NNC_ACT_LINEAR ? s->pbuf : y;
            memcpy(preds + r0 * s->out_size, p, (size_t)(rows * s->out_size) * sizeof(float));
        }
    }
    return st;
}

int nnc_seq_gradients(nnc_seq *s, const float *X, const void *Y, const float *sw, int64_t n,
                      double *loss_sum, float *dx) {
    if (!s->compiled || n < 1) return NNC_E_ARG;
    int st = reserve(s, n);
    if (st) return st;
    const float *y = forward(s, X, n, 1, &st);
    if (st) return st;
    *loss_sum = 0.0;
    st = loss_and_grad(s, y, n, Y, sw, loss_sum, s->g[0]);
    if (st) return st;
    if (s->n == 0) {
        if (dx) memcpy(dx, s->g[0], (size_t)(n * s->in_size) * sizeof(float));
        return 0;
    }
    return backward(s, X, n, dx);
}

int nnc_seq_output_gradients(nnc_seq *s, const float *X, int64_t n, const float *upstream,
                             float *dx, float *out) {
    if (n < 1) return NNC_E_ARG;
    int st = reserve(s, n);
    if (st) return st;
    const float *y = forward(s, X, n, 2, &st);
    if (st) return st;
    int64_t m = n * s->out_size;
    float *g = s->g[0];
    memcpy(g, upstream, (size_t)m * sizeof(float));
    if (s->out_act != NNC_ACT_LINEAR) {
        st = nnc_act_forward(s->out_act, 0.f, y, s->pbuf, n, s->out_size, 0);
        if (!st) st = nnc_act_backward(s->out_act, 0.f, y, s->pbuf, g, g, n, s->out_size, NULL, 0);
        if (st) return st;
        if (out) memcpy(out, s->pbuf, (size_t)m * sizeof(float));
    } else if (out) {
        memcpy(out, y, (size_t)m * sizeof(float));
    }
    if (s->n == 0) {
        memcpy(dx, g, (size_t)m * sizeof(float));
        return 0;
    }
    return backward(s, X, n, dx);
}
