/* The engine: a model is a chain of nodes run entirely in C, so one training step (or a whole
 * run of steps) and one predict are a single call from Python.
 *
 * A node is one layer's computation on flat per-sample vectors (NHWC images and batch-major
 * sequences are just in_size floats per sample). Python builds the nodes once per model, passes
 * them views of the model's parameter and gradient arenas, and the engine owns them from then. */
#ifndef NNCORE_ENGINE_H
#define NNCORE_ENGINE_H
#include "nncore/nnc_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nnc_node nnc_node;

typedef struct {
    const char *name;
    /* Make room for `batch` samples: (re)allocate self->y (batch x out_size, 64-byte aligned)
     * and any workspace. Called only when the batch capacity grows, never per step. */
    int (*reserve)(nnc_node *self, int64_t batch);
    /* self->y[0 : batch*out_size] = f(x). training: 0 inference; 1 training (dropout active,
     * batch statistics); 2 inference behaviour but keep what backward needs (explanations,
     * input gradients). Any training != 0 must keep what backward needs. */
    int (*forward)(nnc_node *self, const float *x, int64_t batch, int training);
    /* dy: [batch x out_size] gradient of the loss w.r.t. self->y; the node may overwrite it.
     * Writes the parameter gradients into self->grads (overwrite, never accumulate) and, when
     * dx != NULL, dx [batch x in_size]. x is the input the last training forward saw. */
    int (*backward)(nnc_node *self, const float *x, float *dy, float *dx, int64_t batch);
    /* Parameters changed (optimizer step, set_weights): refresh packed copies. May be NULL. */
    int (*params_changed)(nnc_node *self);
    /* Free impl, y and workspaces (not the node struct itself, nor params/grads). */
    void (*destroy)(nnc_node *self);
} nnc_node_ops;

struct nnc_node {
    const nnc_node_ops *ops;
    int64_t in_size, out_size; /* floats per sample */
    float *params, *grads;     /* this node's block in the model arenas (NULL if none) */
    int64_t n_params;
    float *y;                  /* output, cap x out_size, owned by the node */
    int64_t cap;               /* batch capacity of y and workspaces */
    void *impl;                /* node-specific state */
    /* Keras step mask made by the last forward (Masking, Embedding with mask_zero): [batch x
     * mask_steps] bytes, nonzero = a real step; NULL for nodes that make none. Recurrent nodes
     * downstream read it (nnc_rnn_node_set_mask_source). */
    uint8_t *smask;
    int64_t mask_steps;
};

/* Helpers for node implementations. */
nnc_node *nnc_node_alloc(const nnc_node_ops *ops, int64_t in_size, int64_t out_size, float *params,
                         float *grads, int64_t n_params, size_t impl_bytes);
/* Grow self->y to cap x out_size (no-op if big enough). */
int nnc_node_reserve_y(nnc_node *self, int64_t batch);
void nnc_node_free(nnc_node *node); /* destroy + free the struct */

/* Dense: y = act(x W + b), W [in x out] (Keras layout), b [out]; params = W then b. */
nnc_node *nnc_dense_node_new(int64_t in, int64_t out, int use_bias, int act, float alpha,
                             float *params, float *grads);
/* Activation layer on its own (softmax is over the last `cols` values of each sample). */
nnc_node *nnc_act_node_new(int64_t size, int64_t cols, int act, float alpha);

/* ---- the sequential model ---- */
typedef struct nnc_seq nnc_seq;

/* Takes ownership of the nodes. out_act is applied to the last node's output on predict and is
 * merged into the loss while training (softmax/sigmoid + cross-entropy on logits). */
nnc_seq *nnc_seq_new(nnc_node **nodes, int n_nodes, int64_t in_size, int out_act);
void nnc_seq_free(nnc_seq *s);
int64_t nnc_seq_out_size(const nnc_seq *s);
/* Size of the parameter arena given to nnc_seq_compile (0 before). */
int64_t nnc_seq_num_params(const nnc_seq *s);
/* Node i of the chain (still owned by the model), NULL if out of range. */
nnc_node *nnc_seq_node(nnc_seq *s, int i);

/* Optimizer kinds; slots are caller-owned arrays of n_params floats (NULL where unused). */
enum { NNC_OPT_SGD = 0, NNC_OPT_ADAM, NNC_OPT_RMSPROP };
typedef struct {
    int kind;
    float beta1, beta2, eps;   /* adam */
    float momentum;            /* sgd, rmsprop */
    int nesterov, amsgrad, centered;
    float rho;                 /* rmsprop */
    float weight_decay;        /* decoupled (AdamW, and Keras's weight_decay on any optimizer) */
    float clipnorm, clipvalue, global_clipnorm; /* 0 = off */
} nnc_optimizer;

/* Which parts of the parameter arena the optimizer updates (trainable weights of trainable
 * layers), one range per weight tensor, with optional L1/L2 penalties (Keras regularizers:
 * l1*sum|w| + l2*sum w^2 added to the loss and its gradient). Until this is called, the whole
 * arena is one trainable range. clipnorm applies per range (per variable, as Keras). Ranges
 * must lie inside the arena, in increasing order, without overlap (else NNC_E_ARG). */
int nnc_seq_set_param_ranges(nnc_seq *s, int n_ranges, const int64_t *offsets,
                             const int64_t *sizes, const float *l1, const float *l2);

int nnc_seq_compile(nnc_seq *s, float *params, float *grads, int64_t n_params, int loss,
                    int from_logits, float loss_param, const nnc_optimizer *opt, float *slot0,
                    float *slot1, float *slot2);
/* All NNC_LOSS_NPARAMS loss parameters (after compile, which sets params[0] = loss_param). */
int nnc_seq_set_loss_params(nnc_seq *s, const float *params);
void nnc_seq_set_step(nnc_seq *s, int64_t t);
int64_t nnc_seq_get_step(const nnc_seq *s);
/* Tell every node its parameters changed (after set_weights). */
int nnc_seq_params_changed(nnc_seq *s);

/* Inference: out [n x out_size] = model(X [n x in_size]) in batches of batch_size.
 * Returns NNC_E_NONFINITE if X holds NaN/inf (checked in C, cheap next to the forward). */
int nnc_seq_predict(nnc_seq *s, const float *X, int64_t n, int64_t batch_size, float *out);

/* Training: for each of the n_idx / batch_size (rounded up) batches, gather rows idx[...] of
 * X, Y (float [rows x out] or int32 labels) and sw (sample weights or NULL), run forward, loss,
 * backward and one optimizer step with learning rate lrs[batch]. batch_loss[b] receives the
 * weighted mean loss of batch b; preds (if not NULL) receives the outputs in idx order. */
int nnc_seq_train(nnc_seq *s, const float *X, const void *Y, const float *sw, const int64_t *idx,
                  int64_t n_idx, int64_t batch_size, const float *lrs, double *batch_loss,
                  float *preds);
/* Like predict, plus the summed weighted loss (no backward, no update). */
int nnc_seq_evaluate(nnc_seq *s, const float *X, const void *Y, const float *sw, int64_t n,
                     int64_t batch_size, double *loss_sum, float *preds);
/* Gradients of the loss of one batch w.r.t. the params (into grads) and the input (dx, may be
 * NULL), without an update: for explanations and gradient checks. */
int nnc_seq_gradients(nnc_seq *s, const float *X, const void *Y, const float *sw, int64_t n,
                      double *loss_sum, float *dx);

/* d(sum(upstream * model(X)))/dX: backward from a given gradient on the model's outputs (after
 * out_act), with inference behaviour (training mode 2). For explanations. n <= any batch. */
int nnc_seq_output_gradients(nnc_seq *s, const float *X, int64_t n, const float *upstream,
                             float *dx, float *out);

#ifdef __cplusplus
}
#endif
#endif
