/* Node helpers and the two layer nodes of the foundation: Dense and Activation.
 *
 * Dense keeps its weights packed twice (W for the forward, W^T for dx = dz W^T), refreshed by
 * params_changed once per optimizer step, so each step packs each weight once. The activation is
 * fused into the GEMM epilogue when the epilogue can do it (linear, relu, leaky_relu, relu6);
 * otherwise the GEMM writes z and one elementwise pass makes y (z is kept only for gelu and
 * swish, whose derivative needs it). */
#include "../common/internal.h"

#include <string.h>

nnc_node *nnc_node_alloc(const nnc_node_ops *ops, int64_t in_size, int64_t out_size, float *params,
                         float *grads, int64_t n_params, size_t impl_bytes) {
    nnc_node *n = (nnc_node *)nnc_malloc(sizeof(nnc_node));
    if (!n) return NULL;
    memset(n, 0, sizeof(*n));
    n->ops = ops;
    n->in_size = in_size;
    n->out_size = out_size;
    n->params = params;
    n->grads = grads;
    n->n_params = n_params;
    if (impl_bytes) {
        n->impl = nnc_malloc(impl_bytes);
        if (!n->impl) {
            nnc_free(n);
            return NULL;
        }
        memset(n->impl, 0, impl_bytes);
    }
    return n;
}

int nnc_node_reserve_y(nnc_node *self, int64_t batch) {
    if (batch <= self->cap && self->y) return 0;
    float *y = (float *)nnc_malloc((size_t)(batch * self->out_size) * sizeof(float));
    if (!y) return NNC_E_NOMEM;
    nnc_free(self->y);
    self->y = y;
    self->cap = batch;
    return 0;
}

void nnc_node_free(nnc_node *node) {
    if (!node) return;
    if (node->ops && node->ops->destroy) node->ops->destroy(node);
    nnc_free(node->impl);
    nnc_free(node);
}

/* ---------------- Dense ---------------- */

typedef struct {
    int64_t in, out, steps; /* steps > 1: rank-3 input (steps, in), Dense on the last axis */
    int use_bias, act;
    float alpha;
    int fused;           /* activation done in the GEMM epilogue */
    int keep_z;          /* act backward needs the pre-activation */
    nnc_packed *pw, *pwt; /* W (in x out) and W^T (out x in) */
    int pwt_stale;       /* W^T is packed lazily: the first layer never needs dx */
    float *z;            /* cap x out, only when keep_z */
    int64_t zcap;
} dense_impl;

static int epilogue_act(int act) {
    return act == NNC_ACT_LINEAR || act == NNC_ACT_RELU || act == NNC_ACT_LEAKY_RELU ||
           act == NNC_ACT_RELU6;
}

static int dense_reserve(nnc_node *self, int64_t batch) {
    dense_impl *d = (dense_impl *)self->impl;
    int st = nnc_node_reserve_y(self, batch);
    if (st) return st;
    if (d->keep_z && batch > d->zcap) {
        float *z = (float *)nnc_malloc((size_t)(batch * d->steps * d->out) * sizeof(float));
        if (!z) return NNC_E_NOMEM;
        nnc_free(d->z);
        d->z = z;
        d->zcap = batch;
    }
    return 0;
}

static int dense_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    dense_impl *d = (dense_impl *)self->impl;
    batch *= d->steps;
    const float *b = d->use_bias ? self->params + d->in * d->out : NULL;
    nnc_epilogue ep = {b, d->fused ? d->act : NNC_ACT_LINEAR, d->alpha};
    float *dst = d->keep_z ? d->z : self->y;
    int st = nnc_sgemm_packed(0, batch, d->out, d->in, 1.f, x, d->in, d->pw, 0.f, dst, d->out, &ep, 0);
    if (st || d->fused) return st;
    (void)training;
    return nnc_act_forward(d->act, d->alpha, dst, self->y, batch, d->out, 0);
}

static int dense_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    dense_impl *d = (dense_impl *)self->impl;
    batch *= d->steps;
    float *gW = self->grads, *gb = d->use_bias ? self->grads + d->in * d->out : NULL;
    int st;
    if (d->act != NNC_ACT_LINEAR)
        st = nnc_act_backward(d->act, d->alpha, d->z, self->y, dy, dy, batch, d->out, gb, 0);
    else
        st = gb ? nnc_colsum(dy, batch, d->out, d->out, gb, 0, 0) : 0;
    if (st) return st;
    /* dW = x^T dz (TN, K = batch), dx = dz W^T (packed W^T). */
    st = nnc_sgemm(1, 0, d->in, d->out, batch, 1.f, x, d->in, dy, d->out, 0.f, gW, d->out, NULL, 0);
    if (st || !dx) return st;
    if (d->pwt_stale) {
        st = nnc_pack_b(d->pwt, self->params, d->out, 1);
        if (st) return st;
        d->pwt_stale = 0;
    }
    return nnc_sgemm_packed(0, batch, d->in, d->out, 1.f, dy, d->out, d->pwt, 0.f, dx, d->in, NULL, 0);
}

static int dense_params_changed(nnc_node *self) {
    dense_impl *d = (dense_impl *)self->impl;
    d->pwt_stale = 1;
    return nnc_pack_b(d->pw, self->params, d->out, 0);
}

static void dense_destroy(nnc_node *self) {
    dense_impl *d = (dense_impl *)self->impl;
    if (d) {
        nnc_packed_free(d->pw);
        nnc_packed_free(d->pwt);
        nnc_free(d->z);
    }
    nnc_free(self->y);
    self->y = NULL;
}

static const nnc_node_ops dense_ops = {"dense", dense_reserve, dense_forward, dense_backward,
                                       dense_params_changed, dense_destroy};

nnc_node *nnc_dense_node_new(int64_t in, int64_t out, int64_t steps, int use_bias, int act,
                             float alpha, float *params, float *grads) {
    if (in < 1 || out < 1 || steps < 1 || act < 0 || act >= NNC_ACT_COUNT) return NULL;
    int64_t np = in * out + (use_bias ? out : 0);
    nnc_node *n = nnc_node_alloc(&dense_ops, steps * in, steps * out, params, grads, np,
                                 sizeof(dense_impl));
    if (!n) return NULL;
    dense_impl *d = (dense_impl *)n->impl;
    d->steps = steps;
    d->in = in;
    d->out = out;
    d->use_bias = use_bias;
    d->act = act;
    d->alpha = alpha;
    d->fused = epilogue_act(act);
    d->keep_z = !d->fused;
    d->pw = nnc_packed_new(in, out);
    d->pwt = nnc_packed_new(out, in);
    if (!d->pw || !d->pwt || dense_params_changed(n)) {
        nnc_node_free(n);
        return NULL;
    }
    return n;
}

/* ---------------- Activation ---------------- */

typedef struct {
    int act;
    float alpha;
    int64_t cols;
} act_impl;

static int act_reserve(nnc_node *self, int64_t batch) { return nnc_node_reserve_y(self, batch); }

static int act_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    act_impl *a = (act_impl *)self->impl;
    (void)training;
    int64_t rows = batch * self->out_size / a->cols;
    return nnc_act_forward(a->act, a->alpha, x, self->y, rows, a->cols, 0);
}

static int act_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    act_impl *a = (act_impl *)self->impl;
    if (!dx) return 0;
    int64_t rows = batch * self->out_size / a->cols;
    return nnc_act_backward(a->act, a->alpha, x, self->y, dy, dx, rows, a->cols, NULL, 0);
}

static void act_destroy(nnc_node *self) {
    nnc_free(self->y);
    self->y = NULL;
}

static const nnc_node_ops act_ops = {"activation", act_reserve, act_forward, act_backward, NULL,
                                     act_destroy};

nnc_node *nnc_act_node_new(int64_t size, int64_t cols, int act, float alpha) {
    if (size < 1 || cols < 1 || size % cols || act < 0 || act >= NNC_ACT_COUNT) return NULL;
    nnc_node *n = nnc_node_alloc(&act_ops, size, size, NULL, NULL, 0, sizeof(act_impl));
    if (!n) return NULL;
    act_impl *a = (act_impl *)n->impl;
    a->act = act;
    a->alpha = alpha;
    a->cols = cols;
    return n;
}

/* ---------------- Gather (Permute, RepeatVector) ---------------- */

/* y[i] = x[map[i]] per sample; backward dx[map[i]] += dy[i] in i order (map may repeat, as
 * for RepeatVector; a permutation makes it a plain scatter). */
typedef struct {
    int64_t *map;
} gather_impl;

static int gather_reserve(nnc_node *self, int64_t batch) { return nnc_node_reserve_y(self, batch); }

static int gather_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    const int64_t *map = ((gather_impl *)self->impl)->map;
    const int64_t in = self->in_size, out = self->out_size;
    (void)training;
    for (int64_t r = 0; r < batch; r++) {
        const float *xr = x + r * in;
        float *yr = self->y + r * out;
        for (int64_t i = 0; i < out; i++) yr[i] = xr[map[i]];
    }
    return 0;
}

static int gather_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    const int64_t *map = ((gather_impl *)self->impl)->map;
    const int64_t in = self->in_size, out = self->out_size;
    (void)x;
    if (!dx) return 0;
    memset(dx, 0, (size_t)(batch * in) * sizeof(float));
    for (int64_t r = 0; r < batch; r++) {
        float *dr = dx + r * in;
        const float *gr = dy + r * out;
        for (int64_t i = 0; i < out; i++) dr[map[i]] += gr[i];
    }
    return 0;
}

static void gather_destroy(nnc_node *self) {
    nnc_free(((gather_impl *)self->impl)->map);
    nnc_free(self->y);
    self->y = NULL;
}

static const nnc_node_ops gather_ops = {"gather", gather_reserve, gather_forward, gather_backward,
                                        NULL, gather_destroy};

nnc_node *nnc_gather_node_new(int64_t in_size, int64_t out_size, const int64_t *map) {
    if (in_size < 1 || out_size < 1 || !map) return NULL;
    for (int64_t i = 0; i < out_size; i++)
        if (map[i] < 0 || map[i] >= in_size) return NULL;
    nnc_node *n = nnc_node_alloc(&gather_ops, in_size, out_size, NULL, NULL, 0, sizeof(gather_impl));
    if (!n) return NULL;
    gather_impl *g = (gather_impl *)n->impl;
    g->map = (int64_t *)nnc_malloc((size_t)out_size * sizeof(int64_t));
    if (!g->map) {
        nnc_node_free(n);
        return NULL;
    }
    memcpy(g->map, map, (size_t)out_size * sizeof(int64_t));
    return n;
}
