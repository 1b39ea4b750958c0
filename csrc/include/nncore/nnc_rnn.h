/* Recurrent kernels and nodes: LSTM, GRU, SimpleRNN (time-major inside, Keras layouts).
 *
 * Weights (Keras): kernel W [I x G*H], recurrent_kernel U [H x G*H], bias b, with G = 4 (LSTM,
 * gates i, f, c, o; b [4H]), 3 (GRU, gates z, r, h; b [2 x 3H] = (input bias, recurrent bias)
 * when reset_after, else [3H]) or 1 (SimpleRNN, b [H]). Sequences are batch-major [B, T, .] at
 * the API; a context transposes to time-major once per call. A context keeps the forward
 * workspace (activated gates, states) for the backward of the same call. */
#ifndef NNCORE_RNN_H
#define NNCORE_RNN_H
#include "nncore/nnc_core.h"
#include "nncore/nnc_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { NNC_RNN_SIMPLE = 0, NNC_RNN_LSTM = 1, NNC_RNN_GRU = 2 };

typedef struct {
    int cell;             /* NNC_RNN_* */
    int64_t input_size;   /* I */
    int64_t units;        /* H */
    int act;              /* activation: NNC_ACT_{TANH,SIGMOID,RELU,LINEAR,HARD_SIGMOID} */
    int rec_act;          /* recurrent_activation (gates; unused by SimpleRNN) */
    int use_bias;
    int reset_after;      /* GRU only */
    int go_backwards;     /* process the sequence reversed (outputs stay in processing order) */
    int return_sequences; /* output [B, T, H] instead of [B, H] */
} nnc_rnn_desc;

typedef struct nnc_rnn nnc_rnn;

/* Gates G of a cell (4, 3, 1) and the float counts of its weights. */
int nnc_rnn_gates(int cell);
int64_t nnc_rnn_bias_size(const nnc_rnn_desc *d);
int64_t nnc_rnn_param_count(const nnc_rnn_desc *d); /* W, U and b (if use_bias) */

nnc_rnn *nnc_rnn_new(const nnc_rnn_desc *d);
void nnc_rnn_free(nnc_rnn *r);
/* Grow-only workspaces for batch B and T steps (with_backward: also the BPTT buffers).
 * forward/backward call it themselves; call it up front to keep allocation off the hot path. */
int nnc_rnn_reserve(nnc_rnn *r, int64_t B, int64_t T, int with_backward);
/* Remember W, U, b (not copied: they must stay valid until the backward) and pack U and U^T
 * for the step GEMMs. Call again after the weights change. b may be NULL when !use_bias. */
int nnc_rnn_set_weights(nnc_rnn *r, const float *W, const float *U, const float *b);

/* x [B, T, I]. h0, c0 [B, H] (NULL = zeros; c0 only for LSTM). imask [B, I] and rmask [B, H]:
 * dropout masks (already scaled, the same for every step; NULL = none), applied as Keras 3
 * does (inputs * imask; h_{t-1} * rmask wherever the cell reads h_{t-1}); they must stay valid
 * until the backward. y: [B, T, H] if return_sequences else [B, H]. hT, cT [B, H] may be NULL. */
int nnc_rnn_forward(nnc_rnn *r, const float *x, int64_t B, int64_t T, const float *h0,
                    const float *c0, const float *imask, const float *rmask, float *y, float *hT,
                    float *cT);
/* Backward of the last forward. dy: gradient w.r.t. y (NULL = zeros); dhT, dcT: w.r.t. hT, cT
 * (NULL = zeros). Writes (overwrites) dx [B, T, I], dW, dU, db and dh0, dc0 [B, H]; any output
 * pointer may be NULL to skip it (dW, dU, db are always computed if given). */
int nnc_rnn_backward(nnc_rnn *r, const float *dy, const float *dhT, const float *dcT, float *dx,
                     float *dW, float *dU, float *db, float *dh0, float *dc0);

/* Keras masking for the next forward: mask [B, T] (batch-major, input time order), nonzero = a
 * real step; NULL = none. A masked step leaves the state (h, c) as it was and gets no gradient.
 * Its output (return_sequences) is the previous output, which is 0 before the first real step
 * (Keras's default), or 0 with zero_output (Keras's Bidirectional with return_sequences); the
 * last output, when only that is returned, follows the same rule at step T-1. The mask must stay
 * valid until the backward. */
int nnc_rnn_set_mask(nnc_rnn *r, const uint8_t *mask, int zero_output);

/* Elementwise activation with the RNN kernels' own sigmoid/tanh (tests). */
int nnc_rnn_activation(int act, float *x, int64_t n);
/* Steps per time chunk of forward/backward (0 = automatic, from B and G*H); for tests, so that
 * small problems cross chunk boundaries. Returns the previous setting. Not thread-safe. */
int64_t nnc_rnn_set_time_chunk(int64_t steps);

/* Engine nodes. in_size = T*I, out_size = T*H (return_sequences) or H. params = W, U, b
 * (Keras order, C-contiguous). dropout / recurrent_dropout draw a fresh mask per training
 * forward from a generator seeded with `seed`. */
nnc_node *nnc_rnn_node_new(const nnc_rnn_desc *d, int64_t T, float dropout,
                           float recurrent_dropout, uint64_t seed, float *params, float *grads);
/* Bidirectional: forward layer `fw` and backward layer `bw` (bw->go_backwards set by the
 * caller), params = fw weights then bw weights. merge: 0 concat, 1 sum, 2 mul, 3 ave. With
 * return_sequences the backward output is reversed back to input order (Keras). */
enum { NNC_MERGE_CONCAT = 0, NNC_MERGE_SUM, NNC_MERGE_MUL, NNC_MERGE_AVE };
/* Masked steps for a recurrent node: every forward takes the step mask `src` made earlier in
 * the same pass (src->mask_steps must equal the node's T; NNC_E_ARG if not); zero_output as
 * for nnc_rnn_set_mask (Keras's Bidirectional sets it when it returns sequences). */
int nnc_rnn_node_set_mask_source(nnc_node *node, const nnc_node *src, int zero_output);
/* Keras's stateful=True: every forward must have `batch` samples (else NNC_E_ARG), starts from
 * the states the last forward ended with (zeros at first and after a reset) and keeps its final
 * states for the next one; no gradient flows into earlier batches. */
int nnc_rnn_node_set_stateful(nnc_node *node, int64_t batch);
int nnc_rnn_node_reset_state(nnc_node *node);
/* The kept states of direction dir (0, or 1 = Bidirectional's backward layer): h [batch x H]
 * and, for LSTM, c (may be NULL). NNC_E_ARG if the node is not stateful. */
int nnc_rnn_node_get_state(const nnc_node *node, int dir, float *h, float *c);
nnc_node *nnc_birnn_node_new(const nnc_rnn_desc *fw, const nnc_rnn_desc *bw, int64_t T, int merge,
                             float dropout, float recurrent_dropout, uint64_t seed, float *params,
                             float *grads);

#ifdef __cplusplus
}
#endif
#endif
