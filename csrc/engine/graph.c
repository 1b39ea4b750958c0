/* The model engine: a graph of layer nodes and merges run in topological order, with forward,
 * the loss of every output, backward and the optimizer step of whole runs of batches in one
 * call, so Python pays a handful of calls per chunk of steps, not per layer. A Sequential is
 * the one-path case (inputs -> nodes -> one output).
 *
 * Values: 0..n_in-1 are the model inputs; every op (a layer node or a merge) makes one more.
 * Ops may only read values made before them, so the op list is a topological order.
 * Gradients: each value that needs one gets a buffer from a small pool when backward first
 * reaches it (its last consumer) and gives it back after its producer's backward; a value read
 * by several ops gets the later contributions added through a scratch buffer. The plan is
 * computed per call (a few integer passes, no allocation); a chain ping-pongs two buffers.
 * Shared layers: every call of a layer is its own node over the same weights; the nodes after
 * the first write their weight gradients to their own blocks, which are added into the first
 * block after backward ("folds").
 *
 * Buffers are sized for the largest batch seen (grow-only); a step allocates nothing.
 * Losses: Keras's sum_over_batch_size, sum_i w_i*loss_i / rows, per output, summed with the
 * loss weights. When an output ends in softmax/sigmoid and its loss is the matching
 * cross-entropy, the last node runs linear and the loss works on logits (stable, one pass);
 * the activation is then applied only to what is returned. */
#include "../common/internal.h"

#include <math.h>
#include <string.h>

typedef struct {
    int kind;        /* NNC_OP_NODE or NNC_OP_* */
    nnc_node *node;  /* NNC_OP_NODE */
    int n_in, in0;   /* inputs are g->opin[in0 .. in0+n_in) */
    int out;         /* value made */
    int64_t ip[8];   /* merge parameters */
    float *y, *ws;   /* merge output (cap x size) and workspace (dot normalize) */
    int has_params;
} g_op;

typedef struct {
    int v;               /* value */
    int act;             /* activation split off the last node (linear: none) */
    int64_t cols, steps; /* loss/activation rows are (sample, step) pairs of `cols` values */
    int loss, from_logits, fused;
    float lp[NNC_LOSS_NPARAMS], weight;
    float *tbuf, *wbuf, *pbuf;
    int32_t *lbuf;
} g_out;

struct nnc_graph {
    int n_in, n_ops, n_out, cap_ops, cap_opin, n_opin;
    g_op *ops;
    int *opin;
    int64_t *vsize;   /* floats per sample, per value */
    int *dep;         /* value depends on weights */
    const float **vp; /* value pointers of the current batch */
    g_out *outs;
    int64_t max_size, cap;
    float **xbuf;     /* gathered inputs, per input */
    int nbuf;
    float **pool;     /* gradient buffers, cap x max_size each */
    /* plan of the current call */
    int *vbuf, *free_stack, nfree;
    int *run, *inbuf, *inacc, *hg;
    /* folds of shared-layer weight gradients: dst[i] += src[i] */
    int nfold;
    float **fdst;
    const float **fsrc;
    int64_t *flen;
    /* compile state */
    int compiled;
    float *P, *G, *s0, *s1, *s2;
    int64_t np;
    nnc_optimizer opt;
    int64_t t;
    int nr, ns;
    int64_t *roff, *rlen, *soff, *slen;
    float *rl1, *rl2;
};

static int grow(float **p, int64_t n) {
    float *q = (float *)nnc_malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!q) return NNC_E_NOMEM;
    nnc_free(*p);
    *p = q;
    return 0;
}

static void *zalloc(size_t bytes) {
    void *p = nnc_malloc(bytes ? bytes : 1);
    if (p) memset(p, 0, bytes ? bytes : 1);
    return p;
}

nnc_graph *nnc_graph_new(int n_inputs, const int64_t *in_sizes) {
    if (n_inputs < 1 || !in_sizes) return NULL;
    nnc_graph *g = (nnc_graph *)zalloc(sizeof(nnc_graph));
    if (!g) return NULL;
    g->n_in = n_inputs;
    g->vsize = (int64_t *)zalloc(sizeof(int64_t) * (size_t)n_inputs);
    g->dep = (int *)zalloc(sizeof(int) * (size_t)n_inputs);
    g->xbuf = (float **)zalloc(sizeof(float *) * (size_t)n_inputs);
    if (!g->vsize || !g->dep || !g->xbuf) {
        nnc_graph_free(g);
        return NULL;
    }
    for (int k = 0; k < n_inputs; k++) {
        if (in_sizes[k] < 1) {
            nnc_graph_free(g);
            return NULL;
        }
        g->vsize[k] = in_sizes[k];
        g->max_size = NNC_MAX(g->max_size, in_sizes[k]);
    }
    return g;
}

void nnc_graph_free(nnc_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_ops; i++) {
        nnc_node_free(g->ops[i].node);
        nnc_free(g->ops[i].y);
        nnc_free(g->ops[i].ws);
    }
    for (int k = 0; k < g->n_out; k++) {
        nnc_free(g->outs[k].tbuf);
        nnc_free(g->outs[k].wbuf);
        nnc_free(g->outs[k].pbuf);
        nnc_free(g->outs[k].lbuf);
    }
    for (int k = 0; k < g->n_in && g->xbuf; k++) nnc_free(g->xbuf[k]);
    for (int b = 0; b < g->nbuf && g->pool; b++) nnc_free(g->pool[b]);
    void *blocks[] = {g->ops, g->opin, g->vsize, g->dep, g->vp, g->outs, g->xbuf, g->pool,
                      g->vbuf, g->free_stack, g->run, g->inbuf, g->inacc, g->hg, g->fdst, g->fsrc,
                      g->flen, g->roff};
    for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) nnc_free(blocks[i]);
    nnc_free(g);
}

/* Room for one more op reading n_in values; returns its index or < 0. */
static int push_op(nnc_graph *g, int n_in, const int *ins) {
    if (g->n_out) return NNC_E_ARG; /* finalised */
    for (int j = 0; j < n_in; j++)
        if (ins[j] < 0 || ins[j] >= g->n_in + g->n_ops) return NNC_E_ARG;
    if (g->n_ops == g->cap_ops) {
        int cap = g->cap_ops ? 2 * g->cap_ops : 16;
        g_op *o = (g_op *)zalloc(sizeof(g_op) * (size_t)cap);
        int64_t *vs = (int64_t *)zalloc(sizeof(int64_t) * (size_t)(g->n_in + cap));
        int *dp = (int *)zalloc(sizeof(int) * (size_t)(g->n_in + cap));
        if (!o || !vs || !dp) {
            nnc_free(o), nnc_free(vs), nnc_free(dp);
            return NNC_E_NOMEM;
        }
        if (g->n_ops) memcpy(o, g->ops, sizeof(g_op) * (size_t)g->n_ops);
        memcpy(vs, g->vsize, sizeof(int64_t) * (size_t)(g->n_in + g->n_ops));
        memcpy(dp, g->dep, sizeof(int) * (size_t)(g->n_in + g->n_ops));
        nnc_free(g->ops), nnc_free(g->vsize), nnc_free(g->dep);
        g->ops = o, g->vsize = vs, g->dep = dp, g->cap_ops = cap;
    }
    if (g->n_opin + n_in > g->cap_opin) {
        int cap = NNC_MAX(2 * g->cap_opin, g->n_opin + n_in + 16);
        int *p = (int *)zalloc(sizeof(int) * (size_t)cap);
        if (!p) return NNC_E_NOMEM;
        if (g->n_opin) memcpy(p, g->opin, sizeof(int) * (size_t)g->n_opin);
        nnc_free(g->opin);
        g->opin = p, g->cap_opin = cap;
    }
    g_op *op = &g->ops[g->n_ops];
    memset(op, 0, sizeof(*op));
    op->n_in = n_in;
    op->in0 = g->n_opin;
    memcpy(g->opin + g->n_opin, ins, sizeof(int) * (size_t)n_in);
    g->n_opin += n_in;
    op->out = g->n_in + g->n_ops;
    for (int j = 0; j < n_in; j++) g->dep[op->out] |= g->dep[ins[j]];
    return g->n_ops;
}

static void commit_op(nnc_graph *g, int64_t size) {
    g_op *op = &g->ops[g->n_ops];
    g->vsize[op->out] = size;
    g->dep[op->out] |= op->has_params;
    g->max_size = NNC_MAX(g->max_size, size);
    g->n_ops++;
}

int nnc_graph_add_node(nnc_graph *g, nnc_node *node, int in) {
    if (!node) return NNC_E_ARG;
    int i = push_op(g, 1, &in);
    if (i < 0) return i;
    if (node->in_size != g->vsize[in]) return NNC_E_ARG;
    g_op *op = &g->ops[i];
    op->kind = NNC_OP_NODE;
    op->node = node;
    op->has_params = node->n_params > 0;
    commit_op(g, node->out_size);
    return op->out;
}

int nnc_graph_add_merge(nnc_graph *g, int kind, int n_in, const int *ins, const int64_t *ip,
                        int n_ip) {
    if (kind <= NNC_OP_NODE || kind > NNC_OP_DOT || n_in < 1 || n_ip < 0 || n_ip > 8 ||
        (n_ip && !ip))
        return NNC_E_ARG;
    int i = push_op(g, n_in, ins);
    if (i < 0) return i;
    g_op *op = &g->ops[i];
    op->kind = kind;
    for (int k = 0; k < n_ip; k++) op->ip[k] = ip[k];
    const int64_t s0 = g->vsize[ins[0]];
    int64_t size = s0;
    switch (kind) {
    case NNC_OP_CONCAT: { /* ip: outer (product of the dims before the axis) */
        int64_t outer = op->ip[0];
        size = 0;
        for (int j = 0; j < n_in; j++) {
            if (outer < 1 || g->vsize[ins[j]] % outer) return NNC_E_ARG;
            size += g->vsize[ins[j]];
        }
        break;
    }
    case NNC_OP_SUB:
        if (n_in != 2) return NNC_E_ARG;
        /* fall through */
    case NNC_OP_ADD: case NNC_OP_MUL: case NNC_OP_AVG: case NNC_OP_MAX:
    case NNC_OP_MIN:
        for (int j = 1; j < n_in; j++)
            if (g->vsize[ins[j]] != s0) return NNC_E_ARG;
        break;
    case NNC_OP_DOT: { /* ip: a1, b1, axis1, a2, b2, axis2, normalize */
        int64_t *p = op->ip;
        if (n_in != 2 || p[0] * p[1] != s0 || p[3] * p[4] != g->vsize[ins[1]] ||
            (p[2] != 0 && p[2] != 1) || (p[5] != 0 && p[5] != 1) ||
            (p[2] ? p[1] : p[0]) != (p[5] ? p[4] : p[3]))
            return NNC_E_ARG;
        size = (p[2] ? p[0] : p[1]) * (p[5] ? p[3] : p[4]);
        break;
    }
    default: return NNC_E_ARG;
    }
    commit_op(g, size);
    return op->out;
}

int nnc_graph_add_grad_fold(nnc_graph *g, float *dst, const float *src, int64_t n) {
    if (!dst || !src || n < 0) return NNC_E_ARG;
    float **d = (float **)zalloc(sizeof(float *) * (size_t)(g->nfold + 1));
    const float **s = (const float **)zalloc(sizeof(float *) * (size_t)(g->nfold + 1));
    int64_t *l = (int64_t *)zalloc(sizeof(int64_t) * (size_t)(g->nfold + 1));
    if (!d || !s || !l) {
        nnc_free(d), nnc_free((void *)s), nnc_free(l);
        return NNC_E_NOMEM;
    }
    if (g->nfold) {
        memcpy(d, g->fdst, sizeof(float *) * (size_t)g->nfold);
        memcpy((void *)s, (const void *)g->fsrc, sizeof(float *) * (size_t)g->nfold);
        memcpy(l, g->flen, sizeof(int64_t) * (size_t)g->nfold);
    }
    nnc_free(g->fdst), nnc_free((void *)g->fsrc), nnc_free(g->flen);
    g->fdst = d, g->fsrc = s, g->flen = l;
    d[g->nfold] = dst, s[g->nfold] = src, l[g->nfold] = n;
    g->nfold++;
    return 0;
}

/* Gradient plan for one call. has_grad: per output, whether a gradient arrives there;
 * want_dx: the model inputs need gradients. Fills run/inbuf/inacc/vbuf; returns the number of
 * pool buffers it used at most. */
static int plan(nnc_graph *g, const int *has_grad, int want_dx) {
    const int nv = g->n_in + g->n_ops;
    int used = 0, peak = 0;
    g->nfree = 0;
    for (int v = 0; v < nv; v++) g->vbuf[v] = -1;
#define NEED(v) (want_dx || g->dep[v]) /* every value leads back to an input */
#define ALLOC() (g->nfree ? g->free_stack[--g->nfree] : used++)
#define FREE(b) (g->free_stack[g->nfree++] = (b))
    for (int k = 0; k < g->n_out; k++)
        if (has_grad[k] && NEED(g->outs[k].v)) g->vbuf[g->outs[k].v] = ALLOC();
    peak = used;
    for (int i = g->n_ops - 1; i >= 0; i--) {
        g_op *op = &g->ops[i];
        int need_in = 0;
        for (int j = 0; j < op->n_in; j++) need_in |= NEED(g->opin[op->in0 + j]);
        g->run[i] = g->vbuf[op->out] >= 0 && (op->has_params || need_in);
        for (int j = 0; j < op->n_in; j++) {
            int v = g->opin[op->in0 + j];
            g->inbuf[op->in0 + j] = g->inacc[op->in0 + j] = -1;
            if (!g->run[i] || !NEED(v)) continue;
            if (g->vbuf[v] < 0) {
                g->vbuf[v] = g->inbuf[op->in0 + j] = ALLOC();
            } else {
                g->inbuf[op->in0 + j] = g->vbuf[v];
                g->inacc[op->in0 + j] = ALLOC();
                FREE(g->inacc[op->in0 + j]); /* scratch: free again right after use */
            }
            peak = NNC_MAX(peak, used);
        }
        peak = NNC_MAX(peak, used);
        if (g->vbuf[op->out] >= 0) FREE(g->vbuf[op->out]);
    }
#undef NEED
#undef ALLOC
#undef FREE
    return peak;
}

int nnc_graph_set_outputs(nnc_graph *g, int n_out, const int *values, const int *acts,
                          const int64_t *cols) {
    if (g->n_out || n_out < 1 || !values || !acts || !cols) return NNC_E_ARG;
    const int nv = g->n_in + g->n_ops;
    for (int k = 0; k < n_out; k++) {
        if (values[k] < 0 || values[k] >= nv || acts[k] < 0 || acts[k] >= NNC_ACT_COUNT ||
            cols[k] < 1 || g->vsize[values[k]] % cols[k])
            return NNC_E_ARG;
        for (int j = 0; j < k; j++)
            if (values[j] == values[k]) return NNC_E_ARG;
    }
    g->outs = (g_out *)zalloc(sizeof(g_out) * (size_t)n_out);
    g->vp = (const float **)zalloc(sizeof(float *) * (size_t)nv);
    g->vbuf = (int *)zalloc(sizeof(int) * (size_t)nv);
    g->free_stack = (int *)zalloc(sizeof(int) * (size_t)(nv + g->n_opin + 1));
    g->run = (int *)zalloc(sizeof(int) * (size_t)(g->n_ops + 1));
    g->inbuf = (int *)zalloc(sizeof(int) * (size_t)(g->n_opin + 1));
    g->inacc = (int *)zalloc(sizeof(int) * (size_t)(g->n_opin + 1));
    g->hg = (int *)zalloc(sizeof(int) * (size_t)n_out);
    if (!g->outs || !g->vp || !g->vbuf || !g->free_stack || !g->run || !g->inbuf || !g->inacc ||
        !g->hg)
        return NNC_E_NOMEM;
    g->n_out = n_out;
    for (int k = 0; k < n_out; k++) {
        g_out *o = &g->outs[k];
        o->v = values[k];
        o->act = acts[k];
        o->cols = cols[k];
        o->steps = g->vsize[values[k]] / cols[k];
        o->loss = -1;
        o->weight = 1.f;
    }
    /* the pool: enough for the largest plan (every output, input gradients too); a plan for
     * fewer gradients frees and takes buffers at the same points, so it never needs more */
    for (int k = 0; k < n_out; k++) g->hg[k] = 1;
    g->nbuf = plan(g, g->hg, 1);
    g->pool = (float **)zalloc(sizeof(float *) * (size_t)(g->nbuf + 1));
    return g->pool ? 0 : NNC_E_NOMEM;
}

int nnc_graph_n_ops(const nnc_graph *g) { return g->n_ops; }
int64_t nnc_graph_value_size(const nnc_graph *g, int v) {
    return (v >= 0 && v < g->n_in + g->n_ops) ? g->vsize[v] : -1;
}
int64_t nnc_graph_num_params(const nnc_graph *g) { return g->np; }
nnc_node *nnc_graph_node(nnc_graph *g, int i) {
    return (i >= 0 && i < g->n_ops) ? g->ops[i].node : NULL;
}
int nnc_graph_num_buffers(const nnc_graph *g) { return g->nbuf; }
void nnc_graph_set_step(nnc_graph *g, int64_t t) { g->t = t; }
int64_t nnc_graph_get_step(const nnc_graph *g) { return g->t; }

int nnc_graph_set_param_ranges(nnc_graph *g, int n_ranges, const int64_t *offsets,
                               const int64_t *sizes, const float *l1, const float *l2) {
    if (n_ranges < 0 || (n_ranges > 0 && (!offsets || !sizes))) return NNC_E_ARG;
    /* in arena order, inside the arena, no overlap: the optimizer writes through them */
    for (int i = 0; i < n_ranges; i++)
        if (offsets[i] < 0 || sizes[i] < 0 || offsets[i] + sizes[i] > g->np ||
            (i > 0 && offsets[i] < offsets[i - 1] + sizes[i - 1]))
            return NNC_E_ARG;
    /* one block: offsets, lengths, span offsets, span lengths, l1, l2 */
    const size_t cap = (size_t)(n_ranges > 0 ? n_ranges : 1);
    char *blk = (char *)nnc_malloc(cap * (4 * sizeof(int64_t) + 2 * sizeof(float)));
    if (!blk) return NNC_E_NOMEM;
    nnc_free(g->roff);
    g->roff = (int64_t *)blk;
    g->rlen = g->roff + cap;
    g->soff = g->rlen + cap;
    g->slen = g->soff + cap;
    g->rl1 = (float *)(g->slen + cap);
    g->rl2 = g->rl1 + cap;
    g->ns = 0;
    for (int i = 0; i < n_ranges; i++) {
        g->roff[i] = offsets[i];
        g->rlen[i] = sizes[i];
        g->rl1[i] = l1 ? l1[i] : 0.f;
        g->rl2[i] = l2 ? l2[i] : 0.f;
        /* adjacent ranges merge into one span for the elementwise passes (one update call
         * over all trainable weights in the usual case) */
        if (g->ns > 0 && g->soff[g->ns - 1] + g->slen[g->ns - 1] == offsets[i])
            g->slen[g->ns - 1] += sizes[i];
        else {
            g->soff[g->ns] = offsets[i];
            g->slen[g->ns++] = sizes[i];
        }
    }
    g->nr = n_ranges;
    return 0;
}

static int reserve(nnc_graph *g, int64_t batch) {
    if (!g->n_out) return NNC_E_ARG;
    if (batch <= g->cap) return 0;
    int st = 0;
    for (int i = 0; i < g->n_ops && !st; i++) {
        g_op *op = &g->ops[i];
        if (op->kind == NNC_OP_NODE) {
            st = op->node->ops->reserve(op->node, batch);
            continue;
        }
        st = grow(&op->y, batch * g->vsize[op->out]);
        if (!st && op->kind == NNC_OP_DOT && op->ip[6]) /* u1, u2, 1/|x1|, 1/|x2| */
            st = grow(&op->ws, batch * (g->vsize[g->opin[op->in0]] +
                                        g->vsize[g->opin[op->in0 + 1]] + op->ip[0] + op->ip[1] +
                                        op->ip[3] + op->ip[4]));
    }
    for (int k = 0; k < g->n_in && !st; k++) st = grow(&g->xbuf[k], batch * g->vsize[k]);
    for (int k = 0; k < g->n_out && !st; k++) {
        g_out *o = &g->outs[k];
        int64_t size = g->vsize[o->v];
        st = grow(&o->tbuf, batch * size);
        if (!st) st = grow((float **)&o->lbuf, batch * o->steps);
        if (!st) st = grow(&o->wbuf, batch * o->steps);
        if (!st) st = grow(&o->pbuf, batch * size);
    }
    for (int b = 0; b < g->nbuf && !st; b++) st = grow(&g->pool[b], batch * g->max_size);
    if (!st) g->cap = batch;
    return st;
}

/* ---------------- merges ---------------- */

#define DOT_EPS 1e-12 /* Keras's l2_normalize epsilon (on the squared norm) */

static void dot_dims(const int64_t *p, int64_t *f1, int64_t *f2, int64_t *k) {
    *f1 = p[2] ? p[0] : p[1];
    *f2 = p[5] ? p[3] : p[4];
    *k = p[2] ? p[1] : p[0];
}

/* Element (free index i, contracted index k) of an (a x b) sample contracted along axis ax. */
static inline int64_t dot_at(int64_t b, int64_t ax, int64_t i, int64_t k) {
    return ax ? i * b + k : k * b + i;
}

/* u = x normalised along its contracted axis, inv[i] = 1/|x[i, :]|. */
static void dot_normalize(const float *x, float *u, float *inv, int64_t b, int64_t ax, int64_t f,
                          int64_t kk) {
    for (int64_t i = 0; i < f; i++) {
        double ss = 0.0;
        for (int64_t k = 0; k < kk; k++) {
            double v = x[dot_at(b, ax, i, k)];
            ss += v * v;
        }
        float r = (float)(1.0 / sqrt(ss > DOT_EPS ? ss : DOT_EPS));
        inv[i] = ss > DOT_EPS ? r : -r; /* sign marks the clamped (linear) case */
        for (int64_t k = 0; k < kk; k++) u[dot_at(b, ax, i, k)] = x[dot_at(b, ax, i, k)] * r;
    }
}

static void merge_forward(nnc_graph *g, g_op *op, int64_t rows) {
    const int n = op->n_in;
    const int *in = g->opin + op->in0;
    const int64_t size = g->vsize[op->out];
    float *y = op->y;
    switch (op->kind) {
    case NNC_OP_CONCAT: {
        const int64_t outer = op->ip[0], inner = size / outer;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t o = 0, off = 0; o < outer; o++, off = 0)
                for (int j = 0; j < n; j++) {
                    int64_t ij = g->vsize[in[j]] / outer;
                    memcpy(y + r * size + o * inner + off, g->vp[in[j]] + r * g->vsize[in[j]] + o * ij,
                           (size_t)ij * sizeof(float));
                    off += ij;
                }
        return;
    }
    case NNC_OP_DOT: {
        const int64_t *p = op->ip;
        int64_t f1, f2, kk;
        dot_dims(p, &f1, &f2, &kk);
        const int64_t s1 = g->vsize[in[0]], s2 = g->vsize[in[1]];
        for (int64_t r = 0; r < rows; r++) {
            const float *a = g->vp[in[0]] + r * s1, *b = g->vp[in[1]] + r * s2;
            if (p[6]) {
                float *u1 = op->ws + r * (s1 + s2), *u2 = u1 + s1;
                float *i1 = op->ws + rows * (s1 + s2) + r * (f1 + f2), *i2 = i1 + f1;
                dot_normalize(a, u1, i1, p[1], p[2], f1, kk);
                dot_normalize(b, u2, i2, p[4], p[5], f2, kk);
                a = u1, b = u2;
            }
            for (int64_t i = 0; i < f1; i++)
                for (int64_t j = 0; j < f2; j++) {
                    double acc = 0.0;
                    for (int64_t k = 0; k < kk; k++)
                        acc += (double)a[dot_at(p[1], p[2], i, k)] * b[dot_at(p[4], p[5], j, k)];
                    y[r * size + i * f2 + j] = (float)acc;
                }
        }
        return;
    }
    default: break;
    }
    const int64_t m = rows * size;
    memcpy(y, g->vp[in[0]], (size_t)m * sizeof(float));
    for (int j = 1; j < n; j++) {
        const float *x = g->vp[in[j]];
        switch (op->kind) {
        case NNC_OP_ADD: case NNC_OP_AVG:
            for (int64_t e = 0; e < m; e++) y[e] += x[e];
            break;
        case NNC_OP_SUB:
            for (int64_t e = 0; e < m; e++) y[e] -= x[e];
            break;
        case NNC_OP_MUL:
            for (int64_t e = 0; e < m; e++) y[e] *= x[e];
            break;
        case NNC_OP_MAX: /* NaN wins, as in the pooling kernels */
            for (int64_t e = 0; e < m; e++) y[e] = (x[e] > y[e] || x[e] != x[e]) ? x[e] : y[e];
            break;
        case NNC_OP_MIN:
            for (int64_t e = 0; e < m; e++) y[e] = (x[e] < y[e] || x[e] != x[e]) ? x[e] : y[e];
            break;
        }
    }
    if (op->kind == NNC_OP_AVG)
        for (int64_t e = 0; e < m; e++) y[e] /= (float)n;
}

/* dx = d loss / d (input slot jj) from dy (not modified). */
static void merge_backward(nnc_graph *g, g_op *op, int jj, const float *dy, float *dx,
                           int64_t rows) {
    const int n = op->n_in;
    const int *in = g->opin + op->in0;
    const int64_t size = g->vsize[op->out], sj = g->vsize[in[jj]], m = rows * sj;
    switch (op->kind) {
    case NNC_OP_CONCAT: {
        const int64_t outer = op->ip[0], inner = size / outer, ij = sj / outer;
        int64_t off = 0;
        for (int j = 0; j < jj; j++) off += g->vsize[in[j]] / outer;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t o = 0; o < outer; o++)
                memcpy(dx + r * sj + o * ij, dy + r * size + o * inner + off, (size_t)ij * sizeof(float));
        return;
    }
    case NNC_OP_ADD: memcpy(dx, dy, (size_t)m * sizeof(float)); return;
    case NNC_OP_AVG:
        for (int64_t e = 0; e < m; e++) dx[e] = dy[e] / (float)n;
        return;
    case NNC_OP_SUB:
        if (jj == 0) memcpy(dx, dy, (size_t)m * sizeof(float));
        else for (int64_t e = 0; e < m; e++) dx[e] = -dy[e];
        return;
    case NNC_OP_MUL:
        for (int64_t e = 0; e < m; e++) {
            float v = dy[e];
            for (int j = 0; j < n; j++)
                if (j != jj) v *= g->vp[in[j]][e];
            dx[e] = v;
        }
        return;
    case NNC_OP_MAX: case NNC_OP_MIN:
        /* the gradient goes to the first input that holds the result */
        for (int64_t e = 0; e < m; e++) {
            float yv = op->y[e];
            int w = 0;
            for (int j = 0; j < n; j++) {
                float xv = g->vp[in[j]][e];
                if (xv == yv || (xv != xv && yv != yv)) {
                    w = j;
                    break;
                }
            }
            dx[e] = w == jj ? dy[e] : 0.f;
        }
        return;
    case NNC_OP_DOT: {
        const int64_t *p = op->ip;
        int64_t f1, f2, kk;
        dot_dims(p, &f1, &f2, &kk);
        const int64_t s1 = g->vsize[in[0]], s2 = g->vsize[in[1]];
        /* the other operand, free size of this one, layouts */
        const int64_t fo = jj ? f1 : f2, fs = jj ? f2 : f1;
        const int64_t bs = jj ? p[4] : p[1], axs = jj ? p[5] : p[2];
        const int64_t bo = jj ? p[1] : p[4], axo = jj ? p[2] : p[5];
        for (int64_t r = 0; r < rows; r++) {
            const float *other = g->vp[in[1 - jj]] + r * (jj ? s1 : s2);
            const float *u = NULL, *inv = NULL;
            if (p[6]) {
                const float *u1 = op->ws + r * (s1 + s2);
                const float *i1 = op->ws + rows * (s1 + s2) + r * (f1 + f2);
                other = jj ? u1 : u1 + s1;
                u = jj ? u1 + s1 : u1;
                inv = jj ? i1 + f1 : i1;
            }
            const float *d = dy + r * size;
            float *o = dx + r * sj;
            for (int64_t i = 0; i < fs; i++)
                for (int64_t k = 0; k < kk; k++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < fo; j++)
                        acc += (double)(jj ? d[j * f2 + i] : d[i * f2 + j]) * other[dot_at(bo, axo, j, k)];
                    o[dot_at(bs, axs, i, k)] = (float)acc;
                }
            if (p[6]) /* back through x / |x|: dx = (du - u (u . du)) / |x| */
                for (int64_t i = 0; i < fs; i++) {
                    float iv = inv[i];
                    if (iv < 0.f) { /* clamped norm: the map was linear */
                        for (int64_t k = 0; k < kk; k++) o[dot_at(bs, axs, i, k)] *= -iv;
                        continue;
                    }
                    double ud = 0.0;
                    for (int64_t k = 0; k < kk; k++)
                        ud += (double)u[dot_at(bs, axs, i, k)] * o[dot_at(bs, axs, i, k)];
                    for (int64_t k = 0; k < kk; k++) {
                        int64_t at = dot_at(bs, axs, i, k);
                        o[at] = (float)((o[at] - u[at] * ud) * iv);
                    }
                }
        }
        return;
    }
    }
}

/* ---------------- forward, loss, backward ---------------- */

/* Runs every op on rows of the inputs in g->vp[0 .. n_in). */
static int forward(nnc_graph *g, int64_t rows, int training) {
    for (int i = 0; i < g->n_ops; i++) {
        g_op *op = &g->ops[i];
        if (op->kind == NNC_OP_NODE) {
            int st = op->node->ops->forward(op->node, g->vp[g->opin[op->in0]], rows, training);
            if (st) return st;
            g->vp[op->out] = op->node->y;
        } else {
            merge_forward(g, op, rows);
            g->vp[op->out] = op->y;
        }
    }
    return 0;
}

int nnc_graph_params_changed(nnc_graph *g) {
    for (int i = 0; i < g->n_ops; i++) {
        nnc_node *nd = g->ops[i].node;
        if (nd && nd->ops->params_changed) {
            int st = nd->ops->params_changed(nd);
            if (st) return st;
        }
    }
    return 0;
}

/* out_act(y) of output k into dst (rows samples). */
static int out_act(const nnc_graph *g, const g_out *o, const float *y, float *dst, int64_t rows) {
    int64_t m = rows * g->vsize[o->v];
    if (o->act == NNC_ACT_LINEAR) {
        if (dst != y) memcpy(dst, y, (size_t)m * sizeof(float));
        return 0;
    }
    return nnc_act_forward(o->act, 0.f, y, dst, rows * o->steps, o->cols, 0);
}

int nnc_graph_predict(nnc_graph *g, const float *const *X, int64_t n, int64_t batch_size,
                      float *const *out) {
    for (int k = 0; k < g->n_in; k++)
        if (!nnc_all_finite(X[k], n * g->vsize[k])) return NNC_E_NONFINITE;
    if (batch_size < 1) batch_size = 32;
    int64_t bs = NNC_MIN(batch_size, n);
    int st = reserve(g, bs);
    for (int64_t r0 = 0; r0 < n && !st; r0 += bs) {
        int64_t rows = NNC_MIN(bs, n - r0);
        for (int k = 0; k < g->n_in; k++) g->vp[k] = X[k] + r0 * g->vsize[k];
        st = forward(g, rows, 0);
        for (int k = 0; k < g->n_out && !st; k++) {
            const g_out *o = &g->outs[k];
            st = out_act(g, o, g->vp[o->v], out[k] + r0 * g->vsize[o->v], rows);
        }
    }
    return st;
}

int nnc_graph_compile(nnc_graph *g, float *params, float *grads, int64_t n_params,
                      const nnc_optimizer *opt, float *slot0, float *slot1, float *slot2) {
    if (!opt || !g->n_out) return NNC_E_ARG;
    g->P = params;
    g->G = grads;
    g->np = n_params;
    g->opt = *opt;
    g->s0 = slot0;
    g->s1 = slot1;
    g->s2 = slot2;
    if (!g->roff) {
        int64_t off = 0;
        int st = nnc_graph_set_param_ranges(g, n_params > 0 ? 1 : 0, &off, &n_params, NULL, NULL);
        if (st) return st;
    }
    g->compiled = 1;
    return 0;
}

int nnc_graph_set_loss(nnc_graph *g, int k, int loss, int from_logits, const float *params,
                       float weight) {
    if (k < 0 || k >= g->n_out || loss < -1 || loss >= NNC_LOSS_COUNT || !params ||
        !(weight >= 0.f))
        return NNC_E_ARG;
    g_out *o = &g->outs[k];
    o->loss = loss;
    o->from_logits = from_logits;
    memcpy(o->lp, params, sizeof(o->lp));
    o->weight = weight;
    /* softmax/sigmoid + matching cross-entropy: the loss takes the logits. */
    o->fused = !from_logits &&
               ((o->act == NNC_ACT_SIGMOID &&
                 (loss == NNC_LOSS_BINARY_CE || loss == NNC_LOSS_BINARY_FOCAL_CE)) ||
                (o->act == NNC_ACT_SOFTMAX &&
                 (loss == NNC_LOSS_CATEGORICAL_CE || loss == NNC_LOSS_SPARSE_CATEGORICAL_CE)));
    return 0;
}

/* Loss of output k on `rows` samples against targets tgt and per-(sample, step) weights w;
 * the gradient (times the loss weight) into gr (may be NULL). Writes out_act(y) into pbuf
 * when the output has an activation. */
static int loss_and_grad(nnc_graph *g, g_out *o, int64_t rows, const void *tgt, const float *w,
                         double *lsum, float *gr) {
    const float *y = g->vp[o->v];
    const int64_t lr = rows * o->steps;
    const float scale = o->weight / (float)lr;
    if (o->act == NNC_ACT_LINEAR) /* no copy: the predictions are y itself */
        return nnc_loss_ex(o->loss, o->from_logits, o->lp, y, tgt, w, lr, o->cols, scale, lsum, gr, 0);
    int st = out_act(g, o, y, o->pbuf, rows);
    if (st) return st;
    if (o->fused)
        return nnc_loss_ex(o->loss, 1, o->lp, y, tgt, w, lr, o->cols, scale, lsum, gr, 0);
    /* Loss on out_act(y), then back through out_act. */
    st = nnc_loss_ex(o->loss, o->from_logits, o->lp, o->pbuf, tgt, w, lr, o->cols, scale, lsum,
                     gr, 0);
    if (st || !gr) return st;
    return nnc_act_backward(o->act, 0.f, y, o->pbuf, gr, gr, lr, o->cols, NULL, 0);
}

/* Backward from the gradients already in the outputs' buffers (per the current plan). */
static int backward(nnc_graph *g, int64_t rows) {
    for (int i = 0; i < g->n_ops; i++) /* weights whose gradient this pass does not reach */
        if (!g->run[i] && g->ops[i].has_params)
            memset(g->ops[i].node->grads, 0, (size_t)g->ops[i].node->n_params * sizeof(float));
    for (int i = g->n_ops - 1; i >= 0; i--) {
        if (!g->run[i]) continue;
        g_op *op = &g->ops[i];
        float *dy = g->pool[g->vbuf[op->out]];
        for (int j = 0; j < op->n_in; j++) {
            int b = g->inbuf[op->in0 + j], a = g->inacc[op->in0 + j];
            float *dx = b < 0 ? NULL : g->pool[a >= 0 ? a : b];
            if (op->kind == NNC_OP_NODE) {
                int st = op->node->ops->backward(op->node, g->vp[g->opin[op->in0]], dy, dx, rows);
                if (st) return st;
            } else if (dx) {
                merge_backward(g, op, j, dy, dx, rows);
            }
            if (a >= 0) {
                float *acc = g->pool[b];
                const int64_t m = rows * g->vsize[g->opin[op->in0 + j]];
                for (int64_t e = 0; e < m; e++) acc[e] += dx[e];
            }
        }
    }
    for (int f = 0; f < g->nfold; f++)
        for (int64_t e = 0; e < g->flen[f]; e++) g->fdst[f][e] += g->fsrc[f][e];
    return 0;
}

static double sumsq(const float *v, int64_t n) {
    /* Fixed-order double accumulation: independent of threads. */
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) acc += (double)v[i] * v[i];
    return acc;
}

static void scale(float *v, int64_t n, float f) {
    for (int64_t i = 0; i < n; i++) v[i] *= f;
}

/* Adds the regularizers' gradients (and returns their loss) for the current weights. */
static double regularize(nnc_graph *g) {
    double pen = 0.0;
    for (int r = 0; r < g->nr; r++) {
        float l1 = g->rl1[r], l2 = g->rl2[r];
        if (l1 == 0.f && l2 == 0.f) continue;
        const float *w = g->P + g->roff[r];
        float *gr = g->G + g->roff[r];
        double a1 = 0.0, a2 = 0.0;
        for (int64_t i = 0; i < g->rlen[r]; i++) {
            float v = w[i];
            a1 += fabsf(v);
            a2 += (double)v * v;
            gr[i] += l1 * (v > 0.f ? 1.f : (v < 0.f ? -1.f : 0.f)) + 2.f * l2 * v;
        }
        pen += l1 * a1 + l2 * a2;
    }
    return pen;
}

static int optimizer_step(nnc_graph *g, float lr) {
    const nnc_optimizer *o = &g->opt;
    if (g->nr == 0) return 0;
    if (o->clipvalue > 0.f)
        for (int r = 0; r < g->ns; r++) {
            float *v = g->G + g->soff[r], c = o->clipvalue;
            for (int64_t i = 0; i < g->slen[r]; i++) v[i] = v[i] > c ? c : (v[i] < -c ? -c : v[i]);
        }
    if (o->clipnorm > 0.f) /* per variable, as Keras */
        for (int r = 0; r < g->nr; r++) {
            double norm = sqrt(sumsq(g->G + g->roff[r], g->rlen[r]));
            if (norm > o->clipnorm) scale(g->G + g->roff[r], g->rlen[r], (float)(o->clipnorm / norm));
        }
    if (o->global_clipnorm > 0.f) {
        double tot = 0.0;
        for (int r = 0; r < g->nr; r++) tot += sumsq(g->G + g->roff[r], g->rlen[r]);
        double norm = sqrt(tot);
        if (norm > o->global_clipnorm)
            for (int r = 0; r < g->ns; r++)
                scale(g->G + g->soff[r], g->slen[r], (float)(o->global_clipnorm / norm));
    }
    g->t += 1;
    int st = 0;
    for (int r = 0; r < g->ns && !st; r++) {
        int64_t off = g->soff[r], n = g->slen[r];
        float *p = g->P + off, *gr = g->G + off;
        float *m0 = g->s0 ? g->s0 + off : NULL, *m1 = g->s1 ? g->s1 + off : NULL,
              *m2 = g->s2 ? g->s2 + off : NULL;
        switch (o->kind) {
        case NNC_OPT_SGD:
            st = nnc_sgd_update(p, gr, m0, n, lr, o->momentum, o->nesterov, o->weight_decay, 0);
            break;
        case NNC_OPT_ADAM:
            st = nnc_adam_update(p, gr, m0, m1, o->amsgrad ? m2 : NULL, n, lr, o->beta1, o->beta2,
                                 o->eps, g->t, o->weight_decay, 0);
            break;
        case NNC_OPT_RMSPROP:
            st = nnc_rmsprop_update(p, gr, m0, m1, m2, n, lr, o->rho, o->momentum, o->eps,
                                    o->centered, o->weight_decay, 0);
            break;
        default: st = NNC_E_ARG;
        }
    }
    return st;
}

static int is_sparse(const g_out *o) { return o->loss == NNC_LOSS_SPARSE_CATEGORICAL_CE; }

/* Rows idx of the inputs, targets and sample weights into the gather buffers. */
static void gather(nnc_graph *g, const float *const *X, const void *const *Y,
                   const float *const *SW, const int64_t *idx, int64_t rows) {
    for (int k = 0; k < g->n_in; k++) {
        const int64_t s = g->vsize[k];
        for (int64_t r = 0; r < rows; r++)
            memcpy(g->xbuf[k] + r * s, X[k] + idx[r] * s, (size_t)s * sizeof(float));
        g->vp[k] = g->xbuf[k];
    }
    for (int k = 0; k < g->n_out; k++) {
        g_out *o = &g->outs[k];
        if (o->loss < 0) continue;
        const int64_t s = g->vsize[o->v], st = o->steps;
        for (int64_t r = 0; r < rows; r++) {
            int64_t i = idx[r];
            if (is_sparse(o))
                memcpy(o->lbuf + r * st, (const int32_t *)Y[k] + i * st, (size_t)st * sizeof(int32_t));
            else
                memcpy(o->tbuf + r * s, (const float *)Y[k] + i * s, (size_t)s * sizeof(float));
            if (SW && SW[k])
                for (int64_t j = 0; j < st; j++) o->wbuf[r * st + j] = SW[k][i];
        }
    }
}

/* Per-(sample, step) weights of rows r0.. of SW[k] into wbuf (NULL without weights). */
static const float *weights_at(g_out *o, const float *const *SW, int k, int64_t r0, int64_t rows) {
    if (!SW || !SW[k]) return NULL;
    if (o->steps == 1) return SW[k] + r0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < o->steps; j++) o->wbuf[r * o->steps + j] = SW[k][r0 + r];
    return o->wbuf;
}

/* Losses of every output (into lsum[k], unweighted sums) with gradients into the plan's
 * buffers when grads != 0. tgt_at: gathered (r0 < 0) or rows from r0 of Y. */
static int all_losses(nnc_graph *g, const void *const *Y, const float *const *SW, int64_t r0,
                      int64_t rows, double *lsum, int grads) {
    for (int k = 0; k < g->n_out; k++) {
        g_out *o = &g->outs[k];
        if (o->loss < 0) continue;
        const void *tgt;
        const float *w;
        if (r0 < 0) {
            tgt = is_sparse(o) ? (const void *)o->lbuf : (const void *)o->tbuf;
            w = SW && SW[k] ? o->wbuf : NULL;
        } else {
            tgt = is_sparse(o) ? (const void *)((const int32_t *)Y[k] + r0 * o->steps)
                               : (const void *)((const float *)Y[k] + r0 * g->vsize[o->v]);
            w = weights_at(o, SW, k, r0, rows);
        }
        float *gr = grads && g->vbuf[o->v] >= 0 ? g->pool[g->vbuf[o->v]] : NULL;
        int st = loss_and_grad(g, o, rows, tgt, w, &lsum[k], gr);
        if (st) return st;
    }
    return 0;
}

/* The outputs (after out_act) of rows r0.. into preds[k] (entries may be NULL); the losses
 * have left out_act(y) in pbuf where there is an activation. */
static int copy_preds(nnc_graph *g, float *const *preds, int64_t r0, int64_t rows) {
    for (int k = 0; k < g->n_out; k++) {
        const g_out *o = &g->outs[k];
        if (!preds[k]) continue;
        float *dst = preds[k] + r0 * g->vsize[o->v];
        if (o->loss < 0 || o->act == NNC_ACT_LINEAR) {
            int st = out_act(g, o, g->vp[o->v], dst, rows);
            if (st) return st;
        } else {
            memcpy(dst, o->pbuf, (size_t)(rows * g->vsize[o->v]) * sizeof(float));
        }
    }
    return 0;
}

/* Plans a call in which every output with a loss gets a gradient. */
static int plan_losses(nnc_graph *g, int want_dx) {
    for (int k = 0; k < g->n_out; k++) g->hg[k] = g->outs[k].loss >= 0;
    return plan(g, g->hg, want_dx) > g->nbuf ? NNC_E_ARG : 0;
}

int nnc_graph_train(nnc_graph *g, const float *const *X, const void *const *Y,
                    const float *const *SW, const int64_t *idx, int64_t n_idx, int64_t batch_size,
                    const float *lrs, double *batch_loss, float *const *preds) {
    if (!g->compiled || batch_size < 1) return NNC_E_ARG;
    int64_t bs = NNC_MIN(batch_size, n_idx);
    int st = reserve(g, bs);
    if (st) return st;
    st = plan_losses(g, 0);
    if (st) return st;
    const int nl = g->n_out + 1;
    for (int64_t b = 0, r0 = 0; r0 < n_idx && !st; b++, r0 += bs) {
        int64_t rows = NNC_MIN(bs, n_idx - r0);
        gather(g, X, Y, SW, idx + r0, rows);
        st = forward(g, rows, 1);
        if (st) break;
        double *bl = batch_loss + b * nl, tot = 0.0;
        for (int k = 0; k < g->n_out; k++) bl[1 + k] = 0.0;
        st = all_losses(g, Y, SW, -1, rows, bl + 1, 1);
        if (st) break;
        for (int k = 0; k < g->n_out; k++) {
            bl[1 + k] /= (double)(rows * g->outs[k].steps);
            tot += g->outs[k].weight * bl[1 + k];
        }
        if (preds) st = copy_preds(g, preds, r0, rows);
        if (st) break;
        st = backward(g, rows);
        if (st) break;
        bl[0] = tot + regularize(g); /* Keras adds the penalties to the reported loss */
        st = optimizer_step(g, lrs[b]);
        if (!st) st = nnc_graph_params_changed(g);
    }
    return st;
}

int nnc_graph_evaluate(nnc_graph *g, const float *const *X, const void *const *Y,
                       const float *const *SW, int64_t n, int64_t batch_size, double *loss_sums,
                       float *const *preds) {
    if (!g->compiled || batch_size < 1) return NNC_E_ARG;
    int64_t bs = NNC_MIN(batch_size, n);
    int st = reserve(g, bs);
    for (int k = 0; k < g->n_out; k++) loss_sums[k] = 0.0;
    for (int64_t r0 = 0; r0 < n && !st; r0 += bs) {
        int64_t rows = NNC_MIN(bs, n - r0);
        for (int k = 0; k < g->n_in; k++) g->vp[k] = X[k] + r0 * g->vsize[k];
        st = forward(g, rows, 0);
        if (!st) st = all_losses(g, Y, SW, r0, rows, loss_sums, 0);
        if (!st && preds) st = copy_preds(g, preds, r0, rows);
    }
    return st;
}

/* Input gradients out of the pool (zeros where none reached an input). */
static void copy_dx(nnc_graph *g, int64_t n, float *const *dx) {
    for (int k = 0; k < g->n_in; k++) {
        if (!dx[k]) continue;
        size_t bytes = (size_t)(n * g->vsize[k]) * sizeof(float);
        if (g->vbuf[k] >= 0) memcpy(dx[k], g->pool[g->vbuf[k]], bytes);
        else memset(dx[k], 0, bytes);
    }
}

static int any_dx(const nnc_graph *g, float *const *dx) {
    if (!dx) return 0;
    for (int k = 0; k < g->n_in; k++)
        if (dx[k]) return 1;
    return 0;
}

int nnc_graph_gradients(nnc_graph *g, const float *const *X, const void *const *Y,
                        const float *const *SW, int64_t n, double *loss_sums, float *const *dx) {
    if (!g->compiled || n < 1) return NNC_E_ARG;
    int st = reserve(g, n);
    if (st) return st;
    const int want_dx = any_dx(g, dx);
    st = plan_losses(g, want_dx);
    if (st) return st;
    for (int k = 0; k < g->n_in; k++) g->vp[k] = X[k];
    st = forward(g, n, 1);
    for (int k = 0; k < g->n_out; k++) loss_sums[k] = 0.0;
    if (!st) st = all_losses(g, Y, SW, 0, n, loss_sums, 1);
    if (!st) st = backward(g, n);
    if (!st && want_dx) copy_dx(g, n, dx);
    return st;
}

int nnc_graph_output_gradients(nnc_graph *g, const float *const *X, int64_t n,
                               const float *const *upstream, float *const *dx, float *const *out) {
    if (n < 1) return NNC_E_ARG;
    int st = reserve(g, n);
    if (st) return st;
    for (int k = 0; k < g->n_out; k++) g->hg[k] = upstream[k] != NULL;
    if (plan(g, g->hg, 1) > g->nbuf) return NNC_E_ARG;
    for (int k = 0; k < g->n_in; k++) g->vp[k] = X[k];
    st = forward(g, n, 2);
    for (int k = 0; k < g->n_out && !st; k++) {
        g_out *o = &g->outs[k];
        const int64_t m = n * g->vsize[o->v];
        const float *y = g->vp[o->v];
        st = out_act(g, o, y, o->pbuf, n);
        if (!st && out && out[k]) memcpy(out[k], o->pbuf, (size_t)m * sizeof(float));
        if (st || !upstream[k] || g->vbuf[o->v] < 0) continue;
        float *gr = g->pool[g->vbuf[o->v]];
        memcpy(gr, upstream[k], (size_t)m * sizeof(float));
        if (o->act != NNC_ACT_LINEAR)
            st = nnc_act_backward(o->act, 0.f, y, o->pbuf, gr, gr, n * o->steps, o->cols, NULL, 0);
    }
    if (!st) st = backward(g, n);
    if (!st) copy_dx(g, n, dx);
    return st;
}
