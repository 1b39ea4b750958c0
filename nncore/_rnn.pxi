# Recurrent kernels (csrc/rnn): a context object per layer call and the engine node constructors.
# Arrays reaching here are already validated and converted by nncore/ops/rnn.py and the layers
# (float32, C-contiguous, right shapes); this layer only maps status codes.
from libc.stdint cimport int64_t, uint64_t, uint8_t

cdef extern from "nncore/nnc.h" nogil:
    ctypedef struct nnc_rnn_desc:
        int cell
        int64_t input_size
        int64_t units
        int act
        int rec_act
        int use_bias
        int reset_after
        int go_backwards
        int return_sequences
    ctypedef struct nnc_rnn:
        pass
    int nnc_rnn_gates(int cell)
    int64_t nnc_rnn_bias_size(const nnc_rnn_desc *d)
    int64_t nnc_rnn_param_count(const nnc_rnn_desc *d)
    nnc_rnn *nnc_rnn_new(const nnc_rnn_desc *d)
    void nnc_rnn_free(nnc_rnn *r)
    int nnc_rnn_reserve(nnc_rnn *r, int64_t B, int64_t T, int with_backward)
    int nnc_rnn_set_weights(nnc_rnn *r, const float *W, const float *U, const float *b)
    int nnc_rnn_forward(nnc_rnn *r, const float *x, int64_t B, int64_t T, const float *h0,
                        const float *c0, const float *imask, const float *rmask, float *y,
                        float *hT, float *cT)
    int nnc_rnn_backward(nnc_rnn *r, const float *dy, const float *dhT, const float *dcT,
                         float *dx, float *dW, float *dU, float *db, float *dh0, float *dc0)
    int nnc_rnn_activation(int act, float *x, int64_t n)
    int nnc_rnn_set_mask(nnc_rnn *r, const uint8_t *mask, int zero_output)
    int nnc_rnn_node_set_mask_source(nnc_node *node, const nnc_node *src, int zero_output)
    int nnc_rnn_node_set_stateful(nnc_node *node, int64_t batch)
    int nnc_rnn_node_reset_state(nnc_node *node)
    int nnc_rnn_node_get_state(const nnc_node *node, int dir, float *h, float *c)


cdef inline float *_rnn_fp(object a):
    if a is None:
        return NULL
    return <float *>cnp.PyArray_DATA(<cnp.ndarray>a)


cdef nnc_rnn_desc _rnn_desc(int cell, int64_t input_size, int64_t units, int act, int rec_act,
                            bint use_bias, bint reset_after, bint go_backwards,
                            bint return_sequences):
    cdef nnc_rnn_desc d
    d.cell = cell
    d.input_size = input_size
    d.units = units
    d.act = act
    d.rec_act = rec_act
    d.use_bias = use_bias
    d.reset_after = reset_after
    d.go_backwards = go_backwards
    d.return_sequences = return_sequences
    return d


RNN_CELLS = {"simple_rnn": 0, "lstm": 1, "gru": 2}


cdef class RNNCore:
    """One recurrent computation (weights packed, workspace of the last forward kept for its
    backward). Owned by nncore.ops.rnn; arrays must be float32 C-contiguous and checked."""
    cdef nnc_rnn *r
    cdef object keep_w      # W, U, b kept alive while packed / used by backward
    cdef object keep_fwd    # masks of the last forward
    cdef readonly int cell
    cdef readonly int64_t input_size, units

    def __cinit__(self, int cell, int64_t input_size, int64_t units, int act, int rec_act,
                  bint use_bias, bint reset_after, bint go_backwards, bint return_sequences):
        cdef nnc_rnn_desc d = _rnn_desc(cell, input_size, units, act, rec_act, use_bias,
                                        reset_after, go_backwards, return_sequences)
        self.r = nnc_rnn_new(&d)
        if self.r == NULL:
            raise MemoryError("nncore: cannot allocate the recurrent context")
        self.cell = cell
        self.input_size = input_size
        self.units = units

    def __dealloc__(self):
        if self.r != NULL:
            nnc_rnn_free(self.r)
            self.r = NULL

    def set_weights(self, W, U, b):
        cdef float *pw = _rnn_fp(W)
        cdef float *pu = _rnn_fp(U)
        cdef float *pb = _rnn_fp(b)
        cdef int st
        with nogil:
            st = nnc_rnn_set_weights(self.r, pw, pu, pb)
        check_status(st)
        self.keep_w = (W, U, b)

    def forward(self, x, h0, c0, imask, rmask, y, hT, cT, mask=None, bint zero_output=False):
        """mask: None or a C-contiguous uint8 [B, T] step mask (nnc_rnn_set_mask)."""
        cdef int64_t B = x.shape[0], T = x.shape[1]
        cdef const uint8_t *pm = NULL
        if mask is not None:
            pm = <const uint8_t *>cnp.PyArray_DATA(<cnp.ndarray>mask)
        cdef float *px = _rnn_fp(x)
        cdef float *ph0 = _rnn_fp(h0)
        cdef float *pc0 = _rnn_fp(c0)
        cdef float *pim = _rnn_fp(imask)
        cdef float *prm = _rnn_fp(rmask)
        cdef float *py = _rnn_fp(y)
        cdef float *phT = _rnn_fp(hT)
        cdef float *pcT = _rnn_fp(cT)
        cdef int st
        with nogil:
            nnc_rnn_set_mask(self.r, pm, zero_output)
            st = nnc_rnn_forward(self.r, px, B, T, ph0, pc0, pim, prm, py, phT, pcT)
        check_status(st)
        self.keep_fwd = (imask, rmask, mask)

    def backward(self, dy, dhT, dcT, dx, dW, dU, db, dh0, dc0):
        cdef float *a0 = _rnn_fp(dy)
        cdef float *a1 = _rnn_fp(dhT)
        cdef float *a2 = _rnn_fp(dcT)
        cdef float *a3 = _rnn_fp(dx)
        cdef float *a4 = _rnn_fp(dW)
        cdef float *a5 = _rnn_fp(dU)
        cdef float *a6 = _rnn_fp(db)
        cdef float *a7 = _rnn_fp(dh0)
        cdef float *a8 = _rnn_fp(dc0)
        cdef int st
        with nogil:
            st = nnc_rnn_backward(self.r, a0, a1, a2, a3, a4, a5, a6, a7, a8)
        check_status(st)


def rnn_activation(int act, cnp.ndarray x):
    """x = act(x) in place with the recurrent kernels' own sigmoid/tanh (float32 contiguous)."""
    if x.dtype != np.float32 or not x.flags.c_contiguous or not x.flags.writeable:
        raise TypeError("rnn_activation needs a writeable C-contiguous float32 array")
    cdef float *p = <float *>cnp.PyArray_DATA(x)
    cdef int64_t n = x.size
    with nogil:
        nnc_rnn_activation(act, p, n)
    return x


cdef extern from "nncore/nnc.h" nogil:
    int64_t nnc_rnn_set_time_chunk(int64_t steps)


def rnn_set_time_chunk(int64_t steps):
    """Tests: steps per time chunk of the recurrent forward/backward (0 = automatic). Returns the
    previous setting."""
    return nnc_rnn_set_time_chunk(steps)


cdef extern from "nncore/nnc.h" nogil:
    nnc_node *nnc_rnn_node_new(const nnc_rnn_desc *d, int64_t T, float dropout,
                               float recurrent_dropout, uint64_t seed, float *params, float *grads)
    nnc_node *nnc_birnn_node_new(const nnc_rnn_desc *fw, const nnc_rnn_desc *bw, int64_t T,
                                 int merge, float dropout, float recurrent_dropout, uint64_t seed,
                                 float *params, float *grads)


def rnn_param_count(int cell, int64_t input_size, int64_t units, bint use_bias, bint reset_after):
    cdef nnc_rnn_desc d = _rnn_desc(cell, input_size, units, 0, 0, use_bias, reset_after, 0, 0)
    return nnc_rnn_param_count(&d)


def rnn_node(int cell, int64_t T, int64_t input_size, int64_t units, int act, int rec_act,
             bint use_bias, bint reset_after, bint go_backwards, bint return_sequences,
             float dropout, float recurrent_dropout, uint64_t seed, cnp.ndarray params,
             cnp.ndarray grads):
    """Engine node of one recurrent layer; params/grads: float32 views of its block (W, U, b)."""
    cdef nnc_rnn_desc d = _rnn_desc(cell, input_size, units, act, rec_act, use_bias,
                                    reset_after, go_backwards, return_sequences)
    if params.size < nnc_rnn_param_count(&d) or grads.size < nnc_rnn_param_count(&d):
        raise ValueError("rnn_node: parameter block too small")
    return wrap_node(nnc_rnn_node_new(&d, T, dropout, recurrent_dropout, seed,
                                      <float *>cnp.PyArray_DATA(params),
                                      <float *>cnp.PyArray_DATA(grads)), (params, grads))


RNN_MERGE_MODES = {"concat": 0, "sum": 1, "mul": 2, "ave": 3}


def birnn_node(int cell, int64_t T, int64_t input_size, int64_t units, int act, int rec_act,
               bint use_bias, bint reset_after, bint go_backwards, bint return_sequences,
               int merge, float dropout, float recurrent_dropout, uint64_t seed,
               cnp.ndarray params, cnp.ndarray grads):
    """Bidirectional node: forward layer (go_backwards as given) then its mirror."""
    cdef nnc_rnn_desc fw = _rnn_desc(cell, input_size, units, act, rec_act, use_bias,
                                     reset_after, go_backwards, return_sequences)
    cdef nnc_rnn_desc bw = _rnn_desc(cell, input_size, units, act, rec_act, use_bias,
                                     reset_after, not go_backwards, return_sequences)
    if params.size < 2 * nnc_rnn_param_count(&fw) or grads.size < 2 * nnc_rnn_param_count(&fw):
        raise ValueError("birnn_node: parameter block too small")
    return wrap_node(nnc_birnn_node_new(&fw, &bw, T, merge, dropout, recurrent_dropout, seed,
                                        <float *>cnp.PyArray_DATA(params),
                                        <float *>cnp.PyArray_DATA(grads)), (params, grads))


def rnn_set_mask_source(Node node, Node src, bint zero_output=False):
    """The recurrent node `node` takes its step mask from `src` (Masking, Embedding with
    mask_zero) on every forward; both must still be unowned (before the Seq is made)."""
    if node.ptr == NULL or src.ptr == NULL:
        raise ValueError("rnn_set_mask_source: node already handed to a model")
    if nnc_rnn_node_set_mask_source(node.ptr, src.ptr, zero_output) != 0:
        raise ValueError("rnn_set_mask_source: the mask's steps do not match the recurrent "
                         "node's timesteps")


def rnn_set_stateful(Node node, int64_t batch):
    """Keras stateful=True for a recurrent node not yet handed to a model: every forward takes
    `batch` samples and starts from the states the last one ended with."""
    if node.ptr == NULL:
        raise ValueError("rnn_set_stateful: node already handed to a model")
    if nnc_rnn_node_set_stateful(node.ptr, batch) != 0:
        raise ValueError(f"rnn_set_stateful: cannot make the node stateful with batch {batch}")


def rnn_reset_state(Graph seq, int i):
    """Zero the kept states of the stateful recurrent node i of a model."""
    if nnc_rnn_node_reset_state(nnc_graph_node(seq.ptr, i)) != 0:
        raise ValueError(f"node {i} is not a stateful recurrent node")


def rnn_get_state(Graph seq, int i, int direction, int64_t batch, int64_t units, bint lstm):
    """Copies of the kept states (h, c or None) of direction 0/1 of stateful node i."""
    cdef cnp.ndarray h = np.empty((batch, units), np.float32)
    cdef cnp.ndarray c = np.empty((batch, units), np.float32) if lstm else None
    if nnc_rnn_node_get_state(nnc_graph_node(seq.ptr, i), direction, _rnn_fp(h), _rnn_fp(c)) != 0:
        raise ValueError(f"node {i} is not a stateful recurrent node")
    return h, c
