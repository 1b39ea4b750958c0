# Layer nodes of nnc_layers.h: Dropout & noise, BatchNormalization, LayerNormalization,
# Normalization, Embedding. Shapes and arguments are validated by the Python layers; the checks
# here only keep a wrong call from reaching C.
from libc.stdint cimport uint64_t, int32_t

cdef extern from "nncore/nnc.h" nogil:
    int NNC_E_INDEX
    nnc_node *nnc_dropout_node_new(int64_t size, float rate, uint64_t seed, int ndim,
                                   const int64_t *dims, const int *bcast, int batch_bcast)
    nnc_node *nnc_gaussian_noise_node_new(int64_t size, float stddev, uint64_t seed, int mult)
    nnc_node *nnc_batchnorm_node_new(int64_t size, int64_t channels, float momentum, float eps,
                                     int center, int scale, const int32_t *frozen, float *params,
                                     float *grads)
    nnc_node *nnc_layernorm_node_new(int64_t size, int64_t channels, float eps, int center,
                                     int scale, float *params, float *grads)
    nnc_node *nnc_normalization_node_new(int64_t size, int64_t channels, int invert,
                                         const float *mean, const float *var, float *params,
                                         float *grads, int64_t n_params)
    nnc_node *nnc_embedding_node_new(int64_t length, int64_t input_dim, int64_t output_dim,
                                     int mask_zero, float *params, float *grads)
    nnc_node *nnc_masking_node_new(int64_t steps, int64_t features, float mask_value)
    int nnc_lyr_node_forward(nnc_node *node, const float *x, int64_t batch, int training,
                             float *y)
    int nnc_lyr_node_backward(nnc_node *node, const float *x, const float *dy, float *dx,
                              int64_t batch)


cdef _lyr_block(cnp.ndarray params, cnp.ndarray grads, int64_t n, str what):
    need_f32(params, what + " params")
    need_f32(grads, what + " grads")
    if params.size != n or grads.size != n:
        raise ValueError(f"{what}: parameter block has {params.size} floats, expected {n}")


cdef int _lyr_check(int status) except -1:
    if status == NNC_E_INDEX:
        raise ValueError("Embedding: an input index is out of range [0, input_dim) or NaN")
    return check_status(status)


def dropout_node(int64_t size, float rate, uint64_t seed, dims=None, bcast=None,
                 bint batch_bcast=False):
    """Dropout over `size` floats per sample; dims/bcast: the sample shape and which of its
    axes share the mask (Keras's noise_shape), batch_bcast: one mask for the whole batch."""
    cdef int64_t cdims[16]
    cdef int cb[16]
    cdef int nd = 0, i
    if not (0.0 <= rate < 1.0):
        raise ValueError(f"dropout_node: rate must be in [0, 1), got {rate}")
    if dims is not None:
        nd = len(dims)
        if nd > 16 or bcast is None or len(bcast) != nd:
            raise ValueError("dropout_node: dims/bcast must have the same length (<= 16)")
        for i in range(nd):
            cdims[i] = dims[i]
            cb[i] = 1 if bcast[i] else 0
    p = nnc_dropout_node_new(size, rate, seed, nd, cdims, cb, batch_bcast)
    if p == NULL:
        raise ValueError("dropout_node: bad geometry (dims must multiply to size)")
    return wrap_node(p, None)


def gaussian_noise_node(int64_t size, float stddev, uint64_t seed, bint mult=False):
    if not (stddev >= 0.0) or stddev == float("inf"):
        raise ValueError(f"gaussian_noise_node: stddev must be finite and >= 0, got {stddev}")
    return wrap_node(nnc_gaussian_noise_node_new(size, stddev, seed, mult), None)


def batchnorm_node(int64_t size, int64_t channels, float momentum, float eps, bint center,
                   bint scale, cnp.ndarray frozen, cnp.ndarray params, cnp.ndarray grads):
    """frozen: int32 array of one element, read at every forward (nonzero: moving stats)."""
    if channels < 1 or size < 1 or size % channels:
        raise ValueError("batchnorm_node: size must be a positive multiple of channels")
    if cnp.PyArray_TYPE(frozen) != cnp.NPY_INT32 or frozen.size != 1:
        raise TypeError("batchnorm_node: frozen must be an int32 array of one element")
    _lyr_block(params, grads, channels * (2 + center + scale), "batchnorm_node")
    return wrap_node(nnc_batchnorm_node_new(size, channels, momentum, eps, center, scale,
                                            <int32_t *>cnp.PyArray_DATA(frozen), fptr(params),
                                            fptr(grads)), (params, grads, frozen))


def layernorm_node(int64_t size, int64_t channels, float eps, bint center, bint scale,
                   cnp.ndarray params, cnp.ndarray grads):
    if channels < 1 or size < 1 or size % channels:
        raise ValueError("layernorm_node: size must be a positive multiple of channels")
    cdef int64_t n = channels * (center + scale)
    if n:
        _lyr_block(params, grads, n, "layernorm_node")
        return wrap_node(nnc_layernorm_node_new(size, channels, eps, center, scale, fptr(params),
                                                fptr(grads)), (params, grads))
    return wrap_node(nnc_layernorm_node_new(size, channels, eps, 0, 0, NULL, NULL), None)


def normalization_node(int64_t size, int64_t channels, bint invert, cnp.ndarray params=None,
                       cnp.ndarray grads=None, cnp.ndarray mean=None, cnp.ndarray variance=None):
    """With params/grads (2C+1 floats: mean, variance, count) the statistics are the layer's
    weights; otherwise mean/variance (C floats each) are constants kept by the node."""
    if channels < 1 or size < 1 or size % channels:
        raise ValueError("normalization_node: size must be a positive multiple of channels")
    if params is not None:
        _lyr_block(params, grads, 2 * channels + 1, "normalization_node")
        return wrap_node(nnc_normalization_node_new(size, channels, invert, fptr(params),
                                                    fptr(params) + channels, fptr(params),
                                                    fptr(grads), 2 * channels + 1),
                         (params, grads))
    need_f32(mean, "mean")
    need_f32(variance, "variance")
    if mean.size != channels or variance.size != channels:
        raise ValueError("normalization_node: mean/variance must hold `channels` floats")
    return wrap_node(nnc_normalization_node_new(size, channels, invert, fptr(mean),
                                                fptr(variance), NULL, NULL, 0),
                     (mean, variance))


def embedding_node(int64_t length, int64_t input_dim, int64_t output_dim, cnp.ndarray params,
                   cnp.ndarray grads, bint mask_zero=False):
    if length < 1 or input_dim < 1 or output_dim < 1:
        raise ValueError("embedding_node: sizes must be positive")
    if input_dim > (1 << 24):
        raise ValueError("embedding_node: input_dim above 2^24 cannot be indexed exactly "
                         "through float32 inputs")
    _lyr_block(params, grads, input_dim * output_dim, "embedding_node")
    return wrap_node(nnc_embedding_node_new(length, input_dim, output_dim, mask_zero,
                                            fptr(params), fptr(grads)), (params, grads))


def masking_node(int64_t steps, int64_t features, float mask_value):
    if steps < 1 or features < 1:
        raise ValueError("masking_node: sizes must be positive")
    return wrap_node(nnc_masking_node_new(steps, features, mask_value), None)


def node_forward(Node node, cnp.ndarray x, int training):
    """Runs one node outside a model (tests): x float32 (batch, in_size) -> y copy."""
    cdef int st
    need_f32(x, "x")
    if node.ptr == NULL:
        raise ValueError("node already owned by a model")
    if x.ndim != 2 or x.shape[1] != node.ptr.in_size or x.shape[0] < 1:
        raise ValueError("node_forward: x must be (batch, in_size)")
    cdef int64_t b = x.shape[0]
    y = np.empty((b, node.ptr.out_size), dtype=np.float32)
    cdef cnp.ndarray ya = y
    cdef const float *xp = fptr(x)
    cdef float *yp = fptr(ya)
    with nogil:
        st = nnc_lyr_node_forward(node.ptr, xp, b, training, yp)
    _lyr_check(st)
    return y


def node_backward(Node node, cnp.ndarray x, cnp.ndarray dy, bint want_dx=True):
    """Backward of the node's last forward (tests): returns dx (or None); grads are written into
    the node's gradient block."""
    cdef int st
    need_f32(x, "x")
    need_f32(dy, "dy")
    if node.ptr == NULL:
        raise ValueError("node already owned by a model")
    cdef int64_t b = x.shape[0]
    if dy.shape[0] != b or dy.size != b * node.ptr.out_size or x.size != b * node.ptr.in_size:
        raise ValueError("node_backward: x/dy shapes do not match the node")
    dx = np.empty((b, node.ptr.in_size), dtype=np.float32) if want_dx else None
    cdef float *dp = fptr(dx) if want_dx else NULL
    cdef const float *xp = fptr(x)
    cdef const float *gp = fptr(dy)
    with nogil:
        st = nnc_lyr_node_backward(node.ptr, xp, gp, dp, b)
    _lyr_check(st)
    return dx
