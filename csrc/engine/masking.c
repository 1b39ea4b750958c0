/* Masking (Keras): a step whose features all equal mask_value is masked. The node passes the
 * other steps through, zeroes the masked ones (Keras multiplies by the mask) and leaves the step
 * mask in node->smask for the recurrent nodes after it. Plain per-step loops: this is a copy,
 * next to the recurrent work it feeds. */
#include "../common/internal.h"

#include <string.h>

typedef struct {
    int64_t T, F;
    float value;
    int64_t mcap;
} mask_impl;

static int mask_reserve(nnc_node *self, int64_t batch) {
    mask_impl *d = (mask_impl *)self->impl;
    int st = nnc_node_reserve_y(self, batch);
    if (st || batch <= d->mcap) return st;
    uint8_t *p = (uint8_t *)nnc_malloc((size_t)(batch * d->T));
    if (!p) return NNC_E_NOMEM;
    nnc_free(self->smask);
    self->smask = p;
    d->mcap = batch;
    return 0;
}

static int mask_forward(nnc_node *self, const float *x, int64_t batch, int training) {
    mask_impl *d = (mask_impl *)self->impl;
    (void)training;
    int st = mask_reserve(self, batch);
    if (st) return st;
    const int64_t F = d->F;
    for (int64_t s = 0; s < batch * d->T; s++) {
        const float *xs = x + s * F;
        uint8_t keep = 0;
        for (int64_t f = 0; f < F; f++) keep |= xs[f] != d->value;
        self->smask[s] = keep;
        if (keep) memcpy(self->y + s * F, xs, (size_t)F * sizeof(float));
        else memset(self->y + s * F, 0, (size_t)F * sizeof(float));
    }
    return 0;
}

static int mask_backward(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch) {
    mask_impl *d = (mask_impl *)self->impl;
    (void)x;
    if (!dx) return 0;
    const int64_t F = d->F;
    for (int64_t s = 0; s < batch * d->T; s++) {
        if (self->smask[s]) memcpy(dx + s * F, dy + s * F, (size_t)F * sizeof(float));
        else memset(dx + s * F, 0, (size_t)F * sizeof(float));
    }
    return 0;
}

static void mask_destroy(nnc_node *self) {
    nnc_free(self->smask);
    self->smask = NULL;
    nnc_free(self->y);
    self->y = NULL;
}

static const nnc_node_ops mask_ops = {"masking", mask_reserve, mask_forward, mask_backward, NULL,
                                      mask_destroy};

nnc_node *nnc_masking_node_new(int64_t steps, int64_t features, float mask_value) {
    if (steps < 1 || features < 1) return NULL;
    nnc_node *n = nnc_node_alloc(&mask_ops, steps * features, steps * features, NULL, NULL, 0,
                                 sizeof(mask_impl));
    if (!n) return NULL;
    mask_impl *d = (mask_impl *)n->impl;
    d->T = steps;
    d->F = features;
    d->value = mask_value;
    n->mask_steps = steps;
    return n;
}
