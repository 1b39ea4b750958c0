# Engine: nodes and the sequential program. The Python model builds nodes once, hands them to a
# Seq, and then every fit chunk / predict / evaluate is one call here with raw pointers.
from libc.stdint cimport int32_t

cdef extern from "nncore/nnc.h" nogil:
    ctypedef struct nnc_node_ops:
        const char *name
    ctypedef struct nnc_node:
        const nnc_node_ops *ops
        int64_t in_size
        int64_t out_size
        int64_t n_params
    ctypedef struct nnc_seq:
        pass
    ctypedef struct nnc_optimizer:
        int kind
        float beta1, beta2, eps, momentum
        int nesterov, amsgrad, centered
        float rho, weight_decay, clipnorm, clipvalue, global_clipnorm
    void nnc_node_free(nnc_node *node)
    nnc_node *nnc_dense_node_new(int64_t inp, int64_t out, int use_bias, int act, float alpha,
                                 float *params, float *grads)
    nnc_node *nnc_act_node_new(int64_t size, int64_t cols, int act, float alpha)
    nnc_seq *nnc_seq_new(nnc_node **nodes, int n_nodes, int64_t in_size, int out_act)
    void nnc_seq_free(nnc_seq *s)
    int64_t nnc_seq_out_size(const nnc_seq *s)
    int nnc_seq_compile(nnc_seq *s, float *params, float *grads, int64_t n_params, int loss,
                        int from_logits, float loss_param, const nnc_optimizer *opt, float *slot0,
                        float *slot1, float *slot2)
    int nnc_seq_set_loss_params(nnc_seq *s, const float *params)
    void nnc_seq_set_step(nnc_seq *s, int64_t t)
    int64_t nnc_seq_get_step(const nnc_seq *s)
    int nnc_seq_params_changed(nnc_seq *s)
    int nnc_seq_predict(nnc_seq *s, const float *X, int64_t n, int64_t batch_size, float *out)
    int nnc_seq_train(nnc_seq *s, const float *X, const void *Y, const float *sw,
                      const int64_t *idx, int64_t n_idx, int64_t batch_size, const float *lrs,
                      double *batch_loss, float *preds)
    int nnc_seq_evaluate(nnc_seq *s, const float *X, const void *Y, const float *sw, int64_t n,
                         int64_t batch_size, double *loss_sum, float *preds)
    int nnc_seq_gradients(nnc_seq *s, const float *X, const void *Y, const float *sw, int64_t n,
                          double *loss_sum, float *dx)
    int64_t nnc_seq_num_params(const nnc_seq *s)
    int nnc_seq_set_param_ranges(nnc_seq *s, int n_ranges, const int64_t *offsets,
                                 const int64_t *sizes, const float *l1, const float *l2)
    int nnc_seq_output_gradients(nnc_seq *s, const float *X, int64_t n, const float *upstream,
                                 float *dx, float *out)


cdef class Node:
    """Owns one C node until a Seq takes it over."""
    cdef nnc_node *ptr
    cdef object keep

    def __dealloc__(self):
        if self.ptr != NULL:
            nnc_node_free(self.ptr)
            self.ptr = NULL

    @property
    def name(self):
        return self.ptr.ops.name.decode() if self.ptr != NULL else None

    @property
    def in_size(self):
        return self.ptr.in_size

    @property
    def out_size(self):
        return self.ptr.out_size


cdef object wrap_node(nnc_node *p, object keep):
    """Wraps a freshly made node; NULL means the constructor failed (allocation)."""
    if p == NULL:
        raise MemoryError("nncore: could not create a layer node (out of memory or bad geometry)")
    cdef Node n = Node.__new__(Node)
    n.ptr = p
    n.keep = keep
    return n


cdef inline float *fptr(cnp.ndarray a):
    return <float *>cnp.PyArray_DATA(a)


cdef inline void need_f32(cnp.ndarray a, str what) except *:
    if cnp.PyArray_TYPE(a) != cnp.NPY_FLOAT32 or not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise TypeError(f"{what} must be a C-contiguous float32 array")


def dense_node(int64_t n_in, int64_t n_out, bint use_bias, int act, float alpha,
               cnp.ndarray params, cnp.ndarray grads):
    need_f32(params, "params")
    need_f32(grads, "grads")
    if params.size != n_in * n_out + (n_out if use_bias else 0) or grads.size != params.size:
        raise ValueError("dense_node: parameter block has the wrong size")
    return wrap_node(nnc_dense_node_new(n_in, n_out, use_bias, act, alpha, fptr(params), fptr(grads)),
                     (params, grads))


def act_node(int64_t size, int64_t cols, int act, float alpha):
    if size < 1 or cols < 1 or size % cols:
        raise ValueError("act_node: size must be a positive multiple of cols")
    return wrap_node(nnc_act_node_new(size, cols, act, alpha), None)


OPTIMIZER_KINDS = {"sgd": 0, "adam": 1, "rmsprop": 2}


cdef class Seq:
    """A compiled chain of nodes. Not thread-safe by itself: the Python model holds a lock."""
    cdef nnc_seq *ptr
    cdef readonly int64_t in_size, out_size
    cdef object keep

    def __cinit__(self, list nodes, int64_t in_size, int out_act):
        cdef int n = len(nodes), i
        cdef nnc_node **arr = <nnc_node **>nnc_malloc(sizeof(nnc_node *) * (n if n > 0 else 1))
        cdef Node nd
        if arr == NULL:
            raise MemoryError()
        for i in range(n):
            nd = nodes[i]
            if nd.ptr == NULL:
                nnc_free(arr)
                raise ValueError("node already used by another model")
            arr[i] = nd.ptr
        self.ptr = nnc_seq_new(arr, n, in_size, out_act)
        nnc_free(arr)
        if self.ptr == NULL:
            raise MemoryError()
        self.keep = [nd.keep for nd in nodes]
        for nd in nodes:  # the Seq owns them now
            nd.ptr = NULL
        self.in_size = in_size
        self.out_size = nnc_seq_out_size(self.ptr)

    def __dealloc__(self):
        if self.ptr != NULL:
            nnc_seq_free(self.ptr)
            self.ptr = NULL

    def compile(self, cnp.ndarray params, cnp.ndarray grads, int loss, bint from_logits,
                object loss_param, dict opt, cnp.ndarray slot0=None, cnp.ndarray slot1=None,
                cnp.ndarray slot2=None):
        cdef nnc_optimizer o
        need_f32(params, "params")
        need_f32(grads, "grads")
        for s in (slot0, slot1, slot2):
            if s is not None:
                need_f32(s, "optimizer slot")
                if s.size != params.size:
                    raise ValueError("optimizer slot has the wrong size")
        o.kind = OPTIMIZER_KINDS[opt["kind"]]
        o.beta1 = opt.get("beta_1", 0.9)
        o.beta2 = opt.get("beta_2", 0.999)
        o.eps = opt.get("epsilon", 1e-7)
        o.momentum = opt.get("momentum", 0.0)
        o.nesterov = opt.get("nesterov", False)
        o.amsgrad = opt.get("amsgrad", False)
        o.centered = opt.get("centered", False)
        o.rho = opt.get("rho", 0.9)
        o.weight_decay = opt.get("weight_decay") or 0.0
        o.clipnorm = opt.get("clipnorm") or 0.0
        o.clipvalue = opt.get("clipvalue") or 0.0
        o.global_clipnorm = opt.get("global_clipnorm") or 0.0
        self.keep = self.keep + [params, grads, slot0, slot1, slot2]
        cdef float lparams[4]
        _loss_params(loss_param, lparams)  # a number, or (label_smoothing, gamma, alpha, balance)
        check_status(nnc_seq_compile(self.ptr, fptr(params), fptr(grads), params.size, loss,
                                     from_logits, lparams[0], &o,
                                     fptr(slot0) if slot0 is not None else NULL,
                                     fptr(slot1) if slot1 is not None else NULL,
                                     fptr(slot2) if slot2 is not None else NULL))
        check_status(nnc_seq_set_loss_params(self.ptr, lparams))

    @property
    def step(self):
        return nnc_seq_get_step(self.ptr)

    @step.setter
    def step(self, int64_t t):
        nnc_seq_set_step(self.ptr, t)

    def params_changed(self):
        check_status(nnc_seq_params_changed(self.ptr))

    def predict(self, cnp.ndarray X, int64_t batch_size, cnp.ndarray out):
        """X: C-contiguous float32 (n, in_size); out: float32 (n, out_size). Checked by caller."""
        cdef int st
        cdef int64_t n = X.shape[0]
        cdef const float *xp = fptr(X)
        cdef float *op = fptr(out)
        with nogil:
            st = nnc_seq_predict(self.ptr, xp, n, batch_size, op)
        check_status(st)
        return out

    def train(self, cnp.ndarray X, cnp.ndarray Y, cnp.ndarray sw, cnp.ndarray idx,
              int64_t batch_size, cnp.ndarray lrs, cnp.ndarray batch_loss, cnp.ndarray preds):
        """Runs ceil(len(idx)/batch_size) steps. Arrays are prepared by the model (contiguous,
        float32 X/Y/sw, int32 Y for sparse losses, int64 idx, float32 lrs, float64 batch_loss)."""
        cdef int st
        cdef const float *xp = fptr(X)
        cdef const void *yp = cnp.PyArray_DATA(Y)
        cdef const float *swp = fptr(sw) if sw is not None else NULL
        cdef const int64_t *ip = <int64_t *>cnp.PyArray_DATA(idx)
        cdef int64_t n_idx = idx.shape[0]
        cdef const float *lp = fptr(lrs)
        cdef double *bl = <double *>cnp.PyArray_DATA(batch_loss)
        cdef float *pp = fptr(preds) if preds is not None else NULL
        if lrs.shape[0] * batch_size < n_idx or batch_loss.shape[0] * batch_size < n_idx:
            raise ValueError("train: lrs/batch_loss too short for the number of batches")
        with nogil:
            st = nnc_seq_train(self.ptr, xp, yp, swp, ip, n_idx, batch_size, lp, bl, pp)
        check_status(st)

    def evaluate(self, cnp.ndarray X, cnp.ndarray Y, cnp.ndarray sw, int64_t batch_size,
                 cnp.ndarray preds):
        cdef int st
        cdef double loss_sum = 0.0
        cdef const float *xp = fptr(X)
        cdef const void *yp = cnp.PyArray_DATA(Y)
        cdef const float *swp = fptr(sw) if sw is not None else NULL
        cdef float *pp = fptr(preds) if preds is not None else NULL
        cdef int64_t n = X.shape[0]
        with nogil:
            st = nnc_seq_evaluate(self.ptr, xp, yp, swp, n, batch_size, &loss_sum, pp)
        check_status(st)
        return loss_sum

    def gradients(self, cnp.ndarray X, cnp.ndarray Y, cnp.ndarray sw, cnp.ndarray dx):
        cdef int st
        cdef double loss_sum = 0.0
        cdef const float *xp = fptr(X)
        cdef const void *yp = cnp.PyArray_DATA(Y)
        cdef const float *swp = fptr(sw) if sw is not None else NULL
        cdef float *dp = fptr(dx) if dx is not None else NULL
        cdef int64_t n = X.shape[0]
        with nogil:
            st = nnc_seq_gradients(self.ptr, xp, yp, swp, n, &loss_sum, dp)
        check_status(st)
        return loss_sum


def seq_set_param_ranges(Seq seq, offsets, sizes, l1, l2):
    """Trainable ranges of the parameter arena (one per weight tensor) and their L1/L2 factors."""
    cdef cnp.ndarray o = np.ascontiguousarray(offsets, dtype=np.int64)
    cdef cnp.ndarray n = np.ascontiguousarray(sizes, dtype=np.int64)
    cdef cnp.ndarray a = np.ascontiguousarray(l1, dtype=np.float32)
    cdef cnp.ndarray b = np.ascontiguousarray(l2, dtype=np.float32)
    if not (o.shape[0] == n.shape[0] == a.shape[0] == b.shape[0]):
        raise ValueError("param ranges: arrays of different lengths")
    ends = o + n
    if o.shape[0] and ((o < 0).any() or (n < 0).any() or ends.max() > nnc_seq_num_params(seq.ptr)
                       or (o[1:] < ends[:o.shape[0] - 1]).any()):
        raise ValueError("param ranges: each must lie inside the parameter arena, in order, "
                         "without overlap")
    check_status(nnc_seq_set_param_ranges(seq.ptr, <int>o.shape[0], <int64_t *>cnp.PyArray_DATA(o),
                                          <int64_t *>cnp.PyArray_DATA(n), fptr(a), fptr(b)))


def seq_output_gradients(Seq seq, cnp.ndarray X, cnp.ndarray upstream, cnp.ndarray dx, cnp.ndarray out):
    """dx = d(sum(upstream * model(X)))/dX with inference behaviour; out = model(X)."""
    cdef int st
    cdef int64_t n = X.shape[0]
    need_f32(X, "x")
    need_f32(upstream, "upstream")
    need_f32(dx, "dx")
    need_f32(out, "out")
    if upstream.size != n * seq.out_size or dx.size != n * seq.in_size or out.size != n * seq.out_size:
        raise ValueError("output_gradients: array sizes do not match the model")
    cdef const float *xp = fptr(X)
    cdef const float *up = fptr(upstream)
    cdef float *dp = fptr(dx)
    cdef float *op = fptr(out)
    with nogil:
        st = nnc_seq_output_gradients(seq.ptr, xp, n, up, dp, op)
    check_status(st)
