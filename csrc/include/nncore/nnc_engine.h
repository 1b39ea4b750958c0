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
/* steps > 1: samples are (steps, in) and the layer applies to the last axis (Keras's Dense on
 * rank-3 input, TimeDistributed(Dense)). */
nnc_node *nnc_dense_node_new(int64_t in, int64_t out, int64_t steps, int use_bias, int act,
                             float alpha, float *params, float *grads);
/* y[i] = x[map[i]] for i < out_size, per sample (Permute, RepeatVector); the gradient of an
 * input value is the sum over the outputs that copy it. */
nnc_node *nnc_gather_node_new(int64_t in_size, int64_t out_size, const int64_t *map);
/* Activation layer on its own (softmax is over the last `cols` values of each sample). */
nnc_node *nnc_act_node_new(int64_t size, int64_t cols, int act, float alpha);

/* ---- the model graph ---- */
typedef struct nnc_graph nnc_graph;

/* Op kinds: a layer node, or a merge of several values. */
enum {
    NNC_OP_NODE = 0,
    NNC_OP_CONCAT, /* ip = {outer}: concatenation of each sample viewed as [outer x inner_j] */
    NNC_OP_ADD, NNC_OP_SUB, NNC_OP_MUL, NNC_OP_AVG, NNC_OP_MAX, NNC_OP_MIN,
    NNC_OP_DOT     /* ip = {a1, b1, axis1, a2, b2, axis2, normalize}: samples as a x b */
};

/* A graph with n_inputs inputs (values 0..n_inputs-1) of in_sizes floats per sample. */
nnc_graph *nnc_graph_new(int n_inputs, const int64_t *in_sizes);
void nnc_graph_free(nnc_graph *g);
/* Appends a node reading value `in` (takes ownership); returns the id of the value it makes,
 * or < 0 (NNC_E_ARG: unknown value or size mismatch). */
int nnc_graph_add_node(nnc_graph *g, nnc_node *node, int in);
/* Appends a merge of n_in values; returns the new value's id or < 0. */
int nnc_graph_add_merge(nnc_graph *g, int kind, int n_in, const int *ins, const int64_t *ip,
                        int n_ip);
/* After each backward, dst[0:n] += src[0:n]: the weight gradients of a second call of a shared
 * layer (its node writes them to src) added into the first call's block. */
int nnc_graph_add_grad_fold(nnc_graph *g, float *dst, const float *src, int64_t n);
/* Ends construction: the outputs (distinct values), the activation split off each (applied
 * on predict, merged into a matching loss) and its last-axis size. */
int nnc_graph_set_outputs(nnc_graph *g, int n_out, const int *values, const int *acts,
                          const int64_t *cols);
int nnc_graph_n_ops(const nnc_graph *g);
int64_t nnc_graph_value_size(const nnc_graph *g, int v);
/* Size of the parameter arena given to nnc_graph_compile (0 before). */
int64_t nnc_graph_num_params(const nnc_graph *g);
/* The node of op i (still owned by the graph), NULL for merges or out of range. */
nnc_node *nnc_graph_node(nnc_graph *g, int i);
/* Gradient buffers the graph keeps (a chain needs 2). */
int nnc_graph_num_buffers(const nnc_graph *g);

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
int nnc_graph_set_param_ranges(nnc_graph *g, int n_ranges, const int64_t *offsets,
                               const int64_t *sizes, const float *l1, const float *l2);

int nnc_graph_compile(nnc_graph *g, float *params, float *grads, int64_t n_params,
                      const nnc_optimizer *opt, float *slot0, float *slot1, float *slot2);
/* Loss of output k (-1: none), its NNC_LOSS_NPARAMS parameters and its weight in the total. */
int nnc_graph_set_loss(nnc_graph *g, int k, int loss, int from_logits, const float *params,
                       float weight);
void nnc_graph_set_step(nnc_graph *g, int64_t t);
int64_t nnc_graph_get_step(const nnc_graph *g);
/* Tell every node its parameters changed (after set_weights). */
int nnc_graph_params_changed(nnc_graph *g);

/* Arrays are per input (X, dx) or per output (Y, SW, preds, out, upstream); sample-major.
 * Y[k] is float [n x size] or int32 labels [n x steps] for sparse losses. SW[k] (SW or its
 * entries may be NULL) holds one weight per sample. */

/* Inference: out[k] = output k (after its activation) in batches of batch_size.
 * Returns NNC_E_NONFINITE if an input holds NaN/inf (checked in C). */
int nnc_graph_predict(nnc_graph *g, const float *const *X, int64_t n, int64_t batch_size,
                      float *const *out);
/* Training: for each of the n_idx / batch_size (rounded up) batches, gather rows idx[...],
 * run forward, the losses, backward and one optimizer step with learning rate lrs[batch].
 * batch_loss[b * (n_out + 1)] receives the total (weighted, with penalties) and then each
 * output's mean loss; preds (may be NULL) receives the outputs in idx order. */
int nnc_graph_train(nnc_graph *g, const float *const *X, const void *const *Y,
                    const float *const *SW, const int64_t *idx, int64_t n_idx, int64_t batch_size,
                    const float *lrs, double *batch_loss, float *const *preds);
/* Like predict, plus each output's summed (sample-weighted, unscaled) loss. */
int nnc_graph_evaluate(nnc_graph *g, const float *const *X, const void *const *Y,
                       const float *const *SW, int64_t n, int64_t batch_size, double *loss_sums,
                       float *const *preds);
/* Gradients of one batch's loss w.r.t. the params (into grads) and the inputs (dx, may be
 * NULL or hold NULLs), without an update: for explanations and gradient checks. */
int nnc_graph_gradients(nnc_graph *g, const float *const *X, const void *const *Y,
                        const float *const *SW, int64_t n, double *loss_sums, float *const *dx);
/* d(sum_k sum(upstream[k] * output_k(X)))/dX, with inference behaviour (training mode 2);
 * upstream[k] NULL: no gradient from output k. out[k] (may be NULL) receives the outputs. */
int nnc_graph_output_gradients(nnc_graph *g, const float *const *X, int64_t n,
                               const float *const *upstream, float *const *dx, float *const *out);

#ifdef __cplusplus
}
#endif
#endif
