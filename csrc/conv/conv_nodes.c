/* Engine nodes for Conv1D/Conv2D, pooling, global pooling, zero padding and the
 * channels_first transpose. Per-sample vectors are NHWC. Workspaces (y, z, argmax bytes, conv
 * scratch) grow in reserve only; forward/backward never allocate. The conv weights are packed
 * in params_changed (forward form) and lazily in the first backward after it (dx form). */
#include "../common/internal.h"

#include <string.h>

static int fused_act(int act) {
    return act == NNC_ACT_LINEAR || act == NNC_ACT_RELU || act == NNC_ACT_LEAKY_RELU ||
           act == NNC_ACT_RELU6;
}

/* ---------------- Conv2D ---------------- */

typedef struct {
    nnc_conv2d_geom g;
    nnc_conv2d *plan;
    int use_bias, act, fused, keep_z;
    float alpha;
    float *z;
    int64_t zcap;
} conv_impl;

static int conv_reserve(nnc_node *self, int64_t batch) {
    conv_impl *c = (conv_impl *)self->impl;
    int st = nnc_node_reserve_y(self, batch);
    if (st) return st;
    if (c->keep_z && batch > c->zcap) {
        float *z = (float *)nnc_malloc((size_t)(batch * self->out_size) * sizeof(float));
        if (!z) return NNC_E_NOMEM;
        nnc_free(c->z);
        c->z = z;
        c->zcap = batch;
    }
    return nnc_conv2d_reserve(c->plan, batch);
}

static int conv_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    conv_impl *c = (conv_impl *)self->impl;
    (void)training;
    const float *b = c->use_bias ? self->params + c->g.KH * c->g.KW * c->g.C * c->g.F : NULL;
    float *dst = c->keep_z ? c->z : self->y;
    int st = nnc_conv2d_forward(c->plan, x, batch, b, c->fused ? c->act : NNC_ACT_LINEAR, c->alpha,
                                dst, 0);
    if (st || c->fused) return st;
    return nnc_act_forward(c->act, c->alpha, dst, self->y, batch * c->g.OH * c->g.OW, c->g.F, 0);
}

static int conv_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    conv_impl *c = (conv_impl *)self->impl;
    const int64_t P = batch * c->g.OH * c->g.OW, F = c->g.F;
    float *gW = self->grads, *gb = c->use_bias ? self->grads + c->g.KH * c->g.KW * c->g.C * F : NULL;
    int st = c->fused ? nnc_conv_act_backward(c->act, c->alpha, self->y, dy, P, F, gb, 0)
                      : nnc_act_backward(c->act, c->alpha, c->z, self->y, dy, dy, P, F, gb, 0);
    if (st) return st;
    st = nnc_conv2d_backward_weights(c->plan, x, dy, batch, gW, NULL, 0);
    if (st || !dx) return st;
    return nnc_conv2d_backward_data(c->plan, dy, batch, dx, 0);
}

static int conv_params_changed(nnc_node *self) {
    conv_impl *c = (conv_impl *)self->impl;
    return nnc_conv2d_set_weights(c->plan, self->params);
}

static void conv_destroy(nnc_node *self) {
    conv_impl *c = (conv_impl *)self->impl;
    if (c) {
        nnc_conv2d_free(c->plan);
        c->plan = NULL;
        nnc_free(c->z);
        c->z = NULL;
    }
    nnc_free(self->y);
    self->y = NULL;
}

static const nnc_node_ops conv_ops = {"conv2d", conv_reserve, conv_forward, conv_backward,
                                      conv_params_changed, conv_destroy};

nnc_node *nnc_conv2d_node_new(const nnc_conv2d_geom *g, int use_bias, int act, float alpha,
                              float *params, float *grads) {
    if (g->H < 1 || g->W < 1 || g->C < 1 || g->KH < 1 || g->KW < 1 || g->F < 1 || g->OH < 1 ||
        g->OW < 1 || g->sh < 1 || g->sw < 1 || g->dh < 1 || g->dw < 1 || act < 0 ||
        act >= NNC_ACT_COUNT || act == NNC_ACT_SOFTMAX)
        return NULL;
    const int64_t nw = g->KH * g->KW * g->C * g->F;
    nnc_node *n = nnc_node_alloc(&conv_ops, g->H * g->W * g->C, g->OH * g->OW * g->F, params,
                                 grads, nw + (use_bias ? g->F : 0), sizeof(conv_impl));
    if (!n) return NULL;
    conv_impl *c = (conv_impl *)n->impl;
    c->g = *g;
    c->use_bias = use_bias;
    c->act = act;
    c->alpha = alpha;
    c->fused = fused_act(act);
    c->keep_z = !c->fused;
    c->plan = nnc_conv2d_new(g);
    if (!c->plan || conv_params_changed(n)) {
        nnc_node_free(n);
        return NULL;
    }
    return n;
}

/* ---------------- pooling ---------------- */

typedef struct {
    nnc_pool2d_geom g;
    int is_max;
    uint8_t *argmax;
    int64_t acap;
    int have_argmax; /* the last forward was a training one */
} pool_impl;

static int pool_reserve(nnc_node *self, int64_t batch) {
    pool_impl *p = (pool_impl *)self->impl;
    int st = nnc_node_reserve_y(self, batch);
    if (st) return st;
    if (p->is_max && batch > p->acap) {
        uint8_t *a = (uint8_t *)nnc_malloc((size_t)(batch * self->out_size));
        if (!a) return NNC_E_NOMEM;
        nnc_free(p->argmax);
        p->argmax = a;
        p->acap = batch;
    }
    return 0;
}

static int pool_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    pool_impl *p = (pool_impl *)self->impl;
    if (p->is_max) {
        p->have_argmax = training != 0;
        return nnc_maxpool2d_forward(&p->g, x, batch, self->y, training ? p->argmax : NULL, 0);
    }
    return nnc_avgpool2d_forward(&p->g, x, batch, self->y, 0);
}

static int pool_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    pool_impl *p = (pool_impl *)self->impl;
    if (!dx) return 0;
    if (p->is_max) {
        if (!p->have_argmax) { /* backward after an inference forward: recompute the argmax */
            int st = nnc_maxpool2d_forward(&p->g, x, batch, self->y, p->argmax, 0);
            if (st) return st;
            p->have_argmax = 1;
        }
        return nnc_maxpool2d_backward(&p->g, dy, p->argmax, batch, dx, 0);
    }
    return nnc_avgpool2d_backward(&p->g, dy, batch, dx, 0);
}

static void pool_destroy(nnc_node *self) {
    pool_impl *p = (pool_impl *)self->impl;
    if (p) {
        nnc_free(p->argmax);
        p->argmax = NULL;
    }
    nnc_free(self->y);
    self->y = NULL;
}

static const nnc_node_ops pool_ops = {"pool2d", pool_reserve, pool_forward, pool_backward, NULL,
                                      pool_destroy};

nnc_node *nnc_pool2d_node_new(const nnc_pool2d_geom *g, int is_max) {
    if (g->H < 1 || g->W < 1 || g->C < 1 || g->PH < 1 || g->PW < 1 || g->PH * g->PW > 256 ||
        g->sh < 1 || g->sw < 1 || g->OH < 1 || g->OW < 1)
        return NULL;
    nnc_node *n = nnc_node_alloc(&pool_ops, g->H * g->W * g->C, g->OH * g->OW * g->C, NULL, NULL,
                                 0, sizeof(pool_impl));
    if (!n) return NULL;
    pool_impl *p = (pool_impl *)n->impl;
    p->g = *g;
    p->is_max = is_max;
    return n;
}

/* ---------------- global pooling ---------------- */

typedef struct {
    int64_t S, C;
    int is_max;
} gpool_impl;

static int gpool_reserve(nnc_node *self, int64_t batch) { return nnc_node_reserve_y(self, batch); }

static int gpool_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    gpool_impl *p = (gpool_impl *)self->impl;
    (void)training;
    return p->is_max ? nnc_global_maxpool_forward(x, batch, p->S, p->C, self->y, 0)
                     : nnc_global_avgpool_forward(x, batch, p->S, p->C, self->y, 0);
}

static int gpool_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    gpool_impl *p = (gpool_impl *)self->impl;
    if (!dx) return 0;
    return p->is_max ? nnc_global_maxpool_backward(x, self->y, dy, batch, p->S, p->C, dx, 0)
                     : nnc_global_avgpool_backward(dy, batch, p->S, p->C, dx, 0);
}

static void plain_destroy(nnc_node *self) {
    nnc_free(self->y);
    self->y = NULL;
}

static const nnc_node_ops gpool_ops = {"global_pool", gpool_reserve, gpool_forward,
                                       gpool_backward, NULL, plain_destroy};

nnc_node *nnc_global_pool_node_new(int64_t S, int64_t C, int is_max) {
    if (S < 1 || C < 1) return NULL;
    nnc_node *n = nnc_node_alloc(&gpool_ops, S * C, C, NULL, NULL, 0, sizeof(gpool_impl));
    if (!n) return NULL;
    gpool_impl *p = (gpool_impl *)n->impl;
    p->S = S;
    p->C = C;
    p->is_max = is_max;
    return n;
}

/* ---------------- zero padding ---------------- */

typedef struct {
    int64_t H, W, C, t, b, l, r;
} zpad_impl;

static int zpad_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    zpad_impl *z = (zpad_impl *)self->impl;
    (void)training;
    return nnc_zeropad2d_forward(x, batch, z->H, z->W, z->C, z->t, z->b, z->l, z->r, self->y, 0);
}

static int zpad_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    zpad_impl *z = (zpad_impl *)self->impl;
    (void)x;
    if (!dx) return 0;
    return nnc_zeropad2d_backward(dy, batch, z->H, z->W, z->C, z->t, z->b, z->l, z->r, dx, 0);
}

static const nnc_node_ops zpad_ops = {"zero_padding", gpool_reserve, zpad_forward, zpad_backward,
                                      NULL, plain_destroy};

nnc_node *nnc_zeropad2d_node_new(int64_t H, int64_t W, int64_t C, int64_t t, int64_t b, int64_t l,
                                 int64_t r) {
    if (H < 1 || W < 1 || C < 1 || t < 0 || b < 0 || l < 0 || r < 0) return NULL;
    nnc_node *n = nnc_node_alloc(&zpad_ops, H * W * C, (H + t + b) * (W + l + r) * C, NULL, NULL,
                                 0, sizeof(zpad_impl));
    if (!n) return NULL;
    zpad_impl *z = (zpad_impl *)n->impl;
    z->H = H; z->W = W; z->C = C; z->t = t; z->b = b; z->l = l; z->r = r;
    return n;
}

/* ---------------- transpose (channels_first boundary) ---------------- */

typedef struct {
    int64_t A, B, inner;
} tr_impl;

typedef struct {
    const float *x;
    float *y;
    int64_t A, B, inner;
} tr_job;

static void transpose_range(void *p, int64_t n0, int64_t n1) {
    const tr_job *j = (const tr_job *)p;
    const int64_t A = j->A, B = j->B, inner = j->inner, S = A * B * inner;
    for (int64_t n = n0; n < n1; n++) {
        const float *xn = j->x + n * S;
        float *yn = j->y + n * S;
        if (inner == 1) { /* single floats: 16 x 16 tiles, not a memcpy call per element */
            for (int64_t a0 = 0; a0 < A; a0 += 16)
                for (int64_t b0 = 0; b0 < B; b0 += 16)
                    for (int64_t a = a0; a < NNC_MIN(A, a0 + 16); a++)
                        for (int64_t b = b0; b < NNC_MIN(B, b0 + 16); b++) yn[b * A + a] = xn[a * B + b];
            continue;
        }
        for (int64_t a = 0; a < A; a++)
            for (int64_t b = 0; b < B; b++)
                memcpy(yn + (b * A + a) * inner, xn + (a * B + b) * inner,
                       (size_t)inner * sizeof(float));
    }
}

static void transpose_batch(const float *x, float *y, int64_t batch, int64_t A, int64_t B,
                            int64_t inner) {
    tr_job j = {x, y, A, B, inner};
    nnc_parallel_ranges(batch, 1, nnc_threads_for(1.0 * batch * A * B * inner, batch),
                        transpose_range, &j);
}

static int tr_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    tr_impl *t = (tr_impl *)self->impl;
    (void)training;
    transpose_batch(x, self->y, batch, t->A, t->B, t->inner);
    return 0;
}

static int tr_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    tr_impl *t = (tr_impl *)self->impl;
    (void)x;
    if (dx) transpose_batch(dy, dx, batch, t->B, t->A, t->inner);
    return 0;
}

static const nnc_node_ops tr_ops = {"transpose", gpool_reserve, tr_forward, tr_backward, NULL,
                                    plain_destroy};

nnc_node *nnc_transpose_node_new(int64_t A, int64_t B, int64_t inner) {
    if (A < 1 || B < 1 || inner < 1) return NULL;
    nnc_node *n = nnc_node_alloc(&tr_ops, A * B * inner, A * B * inner, NULL, NULL, 0,
                                 sizeof(tr_impl));
    if (!n) return NULL;
    tr_impl *t = (tr_impl *)n->impl;
    t->A = A;
    t->B = B;
    t->inner = inner;
    return n;
}
