/* Layer nodes of the finance issue: Dropout (and the other noise layers), BatchNormalization,
 * LayerNormalization, Normalization and Embedding. Keras semantics; see nnc_engine.h for the
 * node contract. Normalisation layers work on [rows x C] with C = the last axis (channels
 * last): a sample of `size` floats is size/C rows. */
#ifndef NNCORE_LAYERS_H
#define NNCORE_LAYERS_H
#include "nncore/nnc_core.h"
#include "nncore/nnc_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An Embedding input holds a value that is not an index in [0, input_dim) (or NaN). */
#ifndef NNC_E_INDEX
#define NNC_E_INDEX (-4)
#endif

/* Dropout: in training y = x * keep / (1 - rate), keep ~ Bernoulli(1 - rate) from a stateless
 * counter hash of (seed, step, sample, element), so masks do not depend on threads or ISA; the
 * node counts its training forwards (step). Identity at inference and in training mode 2
 * (inference behaviour with a backward, for explanations): only mode 1 drops.
 * Noise shape (Keras's noise_shape): the sample is an ndim-array of dims[]; bcast[i] != 0 shares
 * the mask along axis i; batch_bcast != 0 shares one mask across the batch. ndim = 0: no
 * broadcast (size = the sample size). */
nnc_node *nnc_dropout_node_new(int64_t size, float rate, uint64_t seed, int ndim,
                               const int64_t *dims, const int *bcast, int batch_bcast);
/* GaussianNoise (mult = 0: y = x + stddev*n) and GaussianDropout (mult = 1: y = x * (1 + s*n),
 * s = sqrt(rate/(1-rate))), n ~ N(0, 1) from the same counter hash; identity at inference. */
nnc_node *nnc_gaussian_noise_node_new(int64_t size, float stddev, uint64_t seed, int mult);

/* BatchNormalization over the last axis (C channels). params: [gamma if scale][beta if center]
 * moving_mean, moving_variance (C each, Keras order). Training (mode 1, not frozen): batch mean
 * and biased variance (double accumulation over fixed row chunks), y = gamma*(x-mean)/
 * sqrt(var+eps) + beta, and moving = moving*momentum + batch*(1-momentum) is written into
 * params. Inference, training mode 2, or frozen (Keras's trainable=False): moving statistics.
 * frozen points to a caller-kept flag read at every forward (NULL: never frozen), so setting
 * layer.trainable takes effect without rebuilding. Backward writes 0 for the moving stats (and
 * for gamma/beta when the forward used the moving statistics). */
nnc_node *nnc_batchnorm_node_new(int64_t size, int64_t channels, float momentum, float eps,
                                 int center, int scale, const int32_t *frozen, float *params,
                                 float *grads);
/* LayerNormalization over the last axis (C values per row); params [gamma if scale][beta if
 * center]. */
nnc_node *nnc_layernorm_node_new(int64_t size, int64_t channels, float eps, int center, int scale,
                                 float *params, float *grads);
/* Keras's Normalization: y = (x - mean) / max(sqrt(var), 1e-7) per channel (invert: y = mean +
 * x * max(sqrt(var), 1e-7)). mean/var point to C floats: into params when the layer has
 * weights (mean, variance, count: n_params = 2C+1, never trained: backward zeroes grads), or to
 * caller-kept constants (params = grads = NULL, n_params = 0). channels = 1 with size values
 * per sample normalises with one scalar mean/var (axis=None). */
nnc_node *nnc_normalization_node_new(int64_t size, int64_t channels, int invert, const float *mean,
                                     const float *var, float *params, float *grads,
                                     int64_t n_params);
/* Embedding: each sample is `length` float-encoded indices (truncated toward zero, as Keras's
 * cast); y = rows of the table params [input_dim x output_dim]. An index outside [0,
 * input_dim) or NaN returns NNC_E_INDEX (nothing is read out of bounds). Backward: the table
 * gradient is zeroed and dy rows scatter-added in sample order (deterministic, split over
 * columns); dx (if asked) is zero. */
nnc_node *nnc_embedding_node_new(int64_t length, int64_t input_dim, int64_t output_dim,
                                 int mask_zero, float *params, float *grads);
/* mask_zero: index 0 marks a masked step (node->smask, for the recurrent nodes after it). */

/* Keras's Masking over samples of `steps` x `features`: a step whose features all equal
 * mask_value is masked (node->smask) and comes out as zeros. */
nnc_node *nnc_masking_node_new(int64_t steps, int64_t features, float mask_value);

/* For tests: run one node outside a model. y [batch x out_size] receives the output; the node
 * reserves capacity as needed (not a hot path). */
int nnc_lyr_node_forward(nnc_node *node, const float *x, int64_t batch, int training, float *y);
/* dy is copied first (nodes may overwrite it); dx may be NULL. */
int nnc_lyr_node_backward(nnc_node *node, const float *x, const float *dy, float *dx,
                          int64_t batch);

#ifdef __cplusplus
}
#endif
#endif
