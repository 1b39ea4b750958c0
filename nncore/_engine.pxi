# Engine: nodes and the model graph. The Python model builds nodes once, hands them to a Graph,
# and then every fit chunk / predict / evaluate is one call here with raw pointers.
from libc.stdint cimport int32_t

cdef extern from "nncore/nnc.h" nogil:
    ctypedef struct nnc_node_ops:
        const char *name
    ctypedef struct nnc_node:
        const nnc_node_ops *ops
        int64_t in_size
        int64_t out_size
        int64_t n_params
    ctypedef struct nnc_graph:
        pass
    ctypedef struct nnc_optimizer:
        int kind
        float beta1, beta2, eps, momentum
        int nesterov, amsgrad, centered
        float rho, weight_decay, clipnorm, clipvalue, global_clipnorm
    void nnc_node_free(nnc_node *node)
    nnc_node *nnc_dense_node_new(int64_t inp, int64_t out, int64_t steps, int use_bias, int act,
                                 float alpha, float *params, float *grads)
    nnc_node *nnc_act_node_new(int64_t size, int64_t cols, int act, float alpha)
    nnc_node *nnc_gather_node_new(int64_t in_size, int64_t out_size, const int64_t *map)
    nnc_graph *nnc_graph_new(int n_inputs, const int64_t *in_sizes)
    void nnc_graph_free(nnc_graph *g)
    int nnc_graph_add_node(nnc_graph *g, nnc_node *node, int inp)
    int nnc_graph_add_merge(nnc_graph *g, int kind, int n_in, const int *ins, const int64_t *ip,
                            int n_ip)
    int nnc_graph_add_grad_fold(nnc_graph *g, float *dst, const float *src, int64_t n)
    int nnc_graph_set_outputs(nnc_graph *g, int n_out, const int *values, const int *acts,
                              const int64_t *cols)
    int64_t nnc_graph_value_size(const nnc_graph *g, int v)
    int64_t nnc_graph_num_params(const nnc_graph *g)
    int nnc_graph_num_buffers(const nnc_graph *g)
    nnc_node *nnc_graph_node(nnc_graph *g, int i)
    int nnc_graph_set_param_ranges(nnc_graph *g, int n_ranges, const int64_t *offsets,
                                   const int64_t *sizes, const float *l1, const float *l2)
    int nnc_graph_compile(nnc_graph *g, float *params, float *grads, int64_t n_params,
                          const nnc_optimizer *opt, float *slot0, float *slot1, float *slot2)
    int nnc_graph_set_loss(nnc_graph *g, int k, int loss, int from_logits, const float *params,
                           float weight)
    void nnc_graph_set_step(nnc_graph *g, int64_t t)
    int64_t nnc_graph_get_step(const nnc_graph *g)
    int nnc_graph_params_changed(nnc_graph *g)
    int nnc_graph_predict(nnc_graph *g, const float *const *X, int64_t n, int64_t batch_size,
                          float *const *out)
    int nnc_graph_train(nnc_graph *g, const float *const *X, const void *const *Y,
                        const float *const *SW, const int64_t *idx, int64_t n_idx,
                        int64_t batch_size, const float *lrs, double *batch_loss,
                        float *const *preds)
    int nnc_graph_evaluate(nnc_graph *g, const float *const *X, const void *const *Y,
                           const float *const *SW, int64_t n, int64_t batch_size,
                           double *loss_sums, float *const *preds)
    int nnc_graph_gradients(nnc_graph *g, const float *const *X, const void *const *Y,
                            const float *const *SW, int64_t n, double *loss_sums,
                            float *const *dx)
    int nnc_graph_output_gradients(nnc_graph *g, const float *const *X, int64_t n,
                                   const float *const *upstream, float *const *dx,
                                   float *const *out)


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
               cnp.ndarray params, cnp.ndarray grads, int64_t steps=1):
    need_f32(params, "params")
    need_f32(grads, "grads")
    if params.size != n_in * n_out + (n_out if use_bias else 0) or grads.size != params.size:
        raise ValueError("dense_node: parameter block has the wrong size")
    return wrap_node(nnc_dense_node_new(n_in, n_out, steps, use_bias, act, alpha, fptr(params), fptr(grads)),
                     (params, grads))


def act_node(int64_t size, int64_t cols, int act, float alpha):
    if size < 1 or cols < 1 or size % cols:
        raise ValueError("act_node: size must be a positive multiple of cols")
    return wrap_node(nnc_act_node_new(size, cols, act, alpha), None)


def gather_node(int64_t in_size, map):
    """y[i] = x[map[i]] per sample (Permute, RepeatVector)."""
    cdef cnp.ndarray m = np.ascontiguousarray(map, dtype=np.int64)
    if m.ndim != 1 or m.shape[0] < 1 or m.min() < 0 or m.max() >= in_size:
        raise ValueError("gather_node: map entries must index the input")
    return wrap_node(nnc_gather_node_new(in_size, m.shape[0], <int64_t *>cnp.PyArray_DATA(m)), None)


OPTIMIZER_KINDS = {"sgd": 0, "adam": 1, "rmsprop": 2}


MERGE_KINDS = {"concat": 1, "add": 2, "subtract": 3, "multiply": 4, "average": 5,
               "maximum": 6, "minimum": 7, "dot": 8}


cdef class _Ptrs:
    """A C array of the data pointers of a list of arrays (None -> NULL), kept with the arrays."""
    cdef void **p
    cdef int n
    cdef list keep

    def __cinit__(self, list arrays):
        self.n = len(arrays)
        self.keep = arrays
        self.p = <void **>nnc_malloc(sizeof(void *) * (self.n if self.n > 0 else 1))
        if self.p == NULL:
            raise MemoryError()
        for i, a in enumerate(arrays):
            self.p[i] = NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)

    def __dealloc__(self):
        nnc_free(self.p)


cdef class Graph:
    """A compiled model graph. Not thread-safe by itself: the Python model holds a lock.
    Sizes are floats per sample; arrays are checked by the model before they get here."""
    cdef nnc_graph *ptr
    cdef readonly list in_sizes, out_sizes, out_steps
    cdef readonly int n_ops
    cdef list keep
    cdef list _sparse

    def __cinit__(self, in_sizes):
        cdef cnp.ndarray s = np.ascontiguousarray(in_sizes, dtype=np.int64)
        if s.shape[0] < 1 or (s < 1).any():
            raise ValueError("Graph: needs at least one input of positive size")
        self.ptr = nnc_graph_new(<int>s.shape[0], <int64_t *>cnp.PyArray_DATA(s))
        if self.ptr == NULL:
            raise MemoryError()
        self.in_sizes = [int(v) for v in s]
        self.out_sizes = None
        self.keep = []
        self.n_ops = 0

    def __dealloc__(self):
        if self.ptr != NULL:
            nnc_graph_free(self.ptr)
            self.ptr = NULL

    def add_node(self, Node nd, int value):
        """Appends a node reading `value` (the Graph takes it over); returns its output value."""
        if nd.ptr == NULL:
            raise ValueError("node already used by another model")
        cdef int v = nnc_graph_add_node(self.ptr, nd.ptr, value)
        if v < 0:
            raise ValueError(f"Graph.add_node: value {value} does not exist or has "
                             f"{nnc_graph_value_size(self.ptr, value)} floats per sample, the node "
                             f"takes {nd.ptr.in_size}")
        nd.ptr = NULL
        self.keep.append(nd.keep)
        self.n_ops += 1
        return v

    def add_merge(self, str kind, values, params=()):
        cdef cnp.ndarray ins = np.ascontiguousarray(values, dtype=np.intc)
        cdef cnp.ndarray ip = np.ascontiguousarray(list(params) or [0], dtype=np.int64)
        cdef int v = nnc_graph_add_merge(self.ptr, MERGE_KINDS[kind], <int>ins.shape[0],
                                         <int *>cnp.PyArray_DATA(ins), <int64_t *>cnp.PyArray_DATA(ip),
                                         len(params))
        if v < 0:
            raise ValueError(f"Graph.add_merge({kind!r}): inputs {list(values)} do not fit")
        self.n_ops += 1
        return v

    def add_grad_fold(self, cnp.ndarray dst, cnp.ndarray src):
        need_f32(dst, "fold dst")
        need_f32(src, "fold src")
        if dst.size != src.size:
            raise ValueError("add_grad_fold: blocks of different sizes")
        check_status(nnc_graph_add_grad_fold(self.ptr, fptr(dst), fptr(src), dst.size))
        self.keep.append((dst, src))

    def set_outputs(self, values, acts, cols):
        cdef cnp.ndarray v = np.ascontiguousarray(values, dtype=np.intc)
        cdef cnp.ndarray a = np.ascontiguousarray(acts, dtype=np.intc)
        cdef cnp.ndarray c = np.ascontiguousarray(cols, dtype=np.int64)
        if not (v.shape[0] == a.shape[0] == c.shape[0]) or v.shape[0] < 1:
            raise ValueError("set_outputs: one value, activation and size per output")
        check_status(nnc_graph_set_outputs(self.ptr, <int>v.shape[0], <int *>cnp.PyArray_DATA(v),
                                           <int *>cnp.PyArray_DATA(a), <int64_t *>cnp.PyArray_DATA(c)))
        self.out_sizes = [int(nnc_graph_value_size(self.ptr, int(x))) for x in v]
        self.out_steps = [s // int(cc) for s, cc in zip(self.out_sizes, c)]
        self._sparse = [False] * len(self.out_sizes)

    @property
    def num_buffers(self):
        return nnc_graph_num_buffers(self.ptr)

    def value_size(self, int v):
        return nnc_graph_value_size(self.ptr, v)

    def compile(self, cnp.ndarray params, cnp.ndarray grads, dict opt, losses,
                cnp.ndarray slot0=None, cnp.ndarray slot1=None, cnp.ndarray slot2=None):
        """losses: per output None or (kind, from_logits, param, weight)."""
        cdef nnc_optimizer o
        cdef float lparams[4]
        need_f32(params, "params")
        need_f32(grads, "grads")
        if grads.size != params.size:
            raise ValueError("grads and params differ in size")
        for s in (slot0, slot1, slot2):
            if s is not None:
                need_f32(s, "optimizer slot")
                if s.size != params.size:
                    raise ValueError("optimizer slot has the wrong size")
        if self.out_sizes is None or len(losses) != len(self.out_sizes):
            raise ValueError("compile: one loss (or None) per output")
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
        check_status(nnc_graph_compile(self.ptr, fptr(params), fptr(grads), params.size, &o,
                                       fptr(slot0) if slot0 is not None else NULL,
                                       fptr(slot1) if slot1 is not None else NULL,
                                       fptr(slot2) if slot2 is not None else NULL))
        for k, l in enumerate(losses):
            if l is None:
                lparams[0] = lparams[1] = lparams[2] = lparams[3] = 0.0
                check_status(nnc_graph_set_loss(self.ptr, k, -1, 0, lparams, 0.0))
                self._sparse[k] = False
                continue
            kind, from_logits, param, weight = l
            _loss_params(param, lparams)
            check_status(nnc_graph_set_loss(self.ptr, k, kind, from_logits, lparams, weight))
            self._sparse[k] = kind == 5

    @property
    def step(self):
        return nnc_graph_get_step(self.ptr)

    @step.setter
    def step(self, int64_t t):
        nnc_graph_set_step(self.ptr, t)

    def params_changed(self):
        check_status(nnc_graph_params_changed(self.ptr))

    def num_params(self):
        return nnc_graph_num_params(self.ptr)

    cdef int _check_x(self, list X, int64_t n) except -1:
        cdef Py_ssize_t i
        if len(X) != len(self.in_sizes):
            raise ValueError(f"expected {len(self.in_sizes)} input arrays, got {len(X)}")
        for i in range(len(X)):
            need_f32(X[i], "x")
            if cnp.PyArray_SIZE(<cnp.ndarray>X[i]) != n * <int64_t>self.in_sizes[i]:
                raise ValueError("an input array does not match the model")
        return 0

    cdef int _check_out(self, list arrs, int64_t n, str what, bint allow_none) except -1:
        cdef Py_ssize_t i
        if len(arrs) != len(self.out_sizes):
            raise ValueError(f"expected {len(self.out_sizes)} {what} arrays, got {len(arrs)}")
        for i in range(len(arrs)):
            a = arrs[i]
            if a is None and allow_none:
                continue
            need_f32(a, what)
            if cnp.PyArray_SIZE(<cnp.ndarray>a) != n * <int64_t>self.out_sizes[i]:
                raise ValueError(f"a {what} array does not match the model")
        return 0

    cdef int _check_y(self, list Y, list SW, int64_t n) except -1:
        if len(Y) != len(self.out_sizes) or len(SW) != len(self.out_sizes):
            raise ValueError("one target and one sample-weight entry per output")
        for k in range(len(Y)):
            y, sw = Y[k], SW[k]
            if y is None:
                continue
            if self._sparse[k]:
                if cnp.PyArray_TYPE(<cnp.ndarray>y) != cnp.NPY_INT32 or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>y) \
                        or y.size != n * self.out_steps[k]:
                    raise ValueError("sparse targets must be C-contiguous int32, one label per sample and step")
            else:
                need_f32(y, "y")
                if y.size != n * self.out_sizes[k]:
                    raise ValueError("a target array does not match the model")
            if sw is not None:
                need_f32(sw, "sample_weight")
                if sw.size != n:
                    raise ValueError("a sample_weight array does not match the data")
        return 0

    def predict(self, list X, int64_t batch_size, list out):
        cdef int st
        cdef int64_t n = X[0].shape[0]
        cdef const float *x1
        cdef float *o1
        self._check_x(X, n)
        self._check_out(out, n, "output", False)
        if len(X) == 1 and len(out) == 1:  # the one-sample latency path: no pointer arrays
            x1, o1 = fptr(X[0]), fptr(out[0])
            with nogil:
                st = nnc_graph_predict(self.ptr, &x1, n, batch_size, &o1)
            check_status(st)
            return
        cdef _Ptrs xp = _Ptrs(X), op = _Ptrs(out)
        with nogil:
            st = nnc_graph_predict(self.ptr, <const float *const *>xp.p, n, batch_size,
                                   <float *const *>op.p)
        check_status(st)

    def train(self, list X, list Y, list SW, cnp.ndarray idx, int64_t batch_size,
              cnp.ndarray lrs, cnp.ndarray batch_loss, list preds):
        """Runs ceil(len(idx)/batch_size) steps; batch_loss: float64 (>= steps, 1 + n_out)."""
        cdef int st
        cdef int64_t n = X[0].shape[0]
        self._check_x(X, n)
        self._check_y(Y, SW, n)
        if preds is not None:
            self._check_out(preds, idx.shape[0], "prediction", True)
        if cnp.PyArray_TYPE(idx) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(idx):
            raise TypeError("idx must be C-contiguous int64")
        if idx.shape[0] and (idx.min() < 0 or idx.max() >= n):
            raise ValueError("train: sample index out of range")
        cdef int64_t n_idx = idx.shape[0]
        cdef int64_t nb = (n_idx + batch_size - 1) // batch_size
        need_f32(lrs, "lrs")
        if cnp.PyArray_TYPE(batch_loss) != cnp.NPY_FLOAT64 or not cnp.PyArray_IS_C_CONTIGUOUS(batch_loss) \
                or lrs.shape[0] < nb or batch_loss.size < nb * (1 + len(self.out_sizes)):
            raise ValueError("train: lrs/batch_loss too short for the number of batches")
        cdef _Ptrs xp = _Ptrs(X), yp = _Ptrs(Y), sp = _Ptrs(SW)
        cdef _Ptrs pp = _Ptrs(preds) if preds is not None else None
        cdef void **ppp = pp.p if pp is not None else NULL
        cdef const int64_t *ip = <int64_t *>cnp.PyArray_DATA(idx)
        cdef const float *lp = fptr(lrs)
        cdef double *bl = <double *>cnp.PyArray_DATA(batch_loss)
        with nogil:
            st = nnc_graph_train(self.ptr, <const float *const *>xp.p, <const void *const *>yp.p,
                                 <const float *const *>sp.p, ip, n_idx, batch_size, lp, bl,
                                 <float *const *>ppp)
        check_status(st)

    def evaluate(self, list X, list Y, list SW, int64_t batch_size, list preds):
        """Each output's summed loss (float64 array)."""
        cdef int st
        cdef int64_t n = X[0].shape[0]
        self._check_x(X, n)
        self._check_y(Y, SW, n)
        if preds is not None:
            self._check_out(preds, n, "prediction", True)
        cdef cnp.ndarray sums = np.zeros(len(self.out_sizes), np.float64)
        cdef _Ptrs xp = _Ptrs(X), yp = _Ptrs(Y), sp = _Ptrs(SW)
        cdef _Ptrs pp = _Ptrs(preds) if preds is not None else None
        cdef void **ppp = pp.p if pp is not None else NULL
        cdef double *sm = <double *>cnp.PyArray_DATA(sums)
        with nogil:
            st = nnc_graph_evaluate(self.ptr, <const float *const *>xp.p, <const void *const *>yp.p,
                                    <const float *const *>sp.p, n, batch_size, sm, <float *const *>ppp)
        check_status(st)
        return sums

    def gradients(self, list X, list Y, list SW, list dx):
        """Each output's summed loss; weight gradients into the grad arena, dx per input."""
        cdef int st
        cdef int64_t n = X[0].shape[0]
        self._check_x(X, n)
        self._check_y(Y, SW, n)
        if dx is None:
            dx = [None] * len(self.in_sizes)
        if len(dx) != len(self.in_sizes):
            raise ValueError("one dx entry per input")
        for d, s in zip(dx, self.in_sizes):
            if d is not None:
                need_f32(d, "dx")
                if d.size != n * s:
                    raise ValueError("a dx array does not match the model")
        cdef cnp.ndarray sums = np.zeros(len(self.out_sizes), np.float64)
        cdef _Ptrs xp = _Ptrs(X), yp = _Ptrs(Y), sp = _Ptrs(SW), dp = _Ptrs(dx)
        cdef double *sm = <double *>cnp.PyArray_DATA(sums)
        with nogil:
            st = nnc_graph_gradients(self.ptr, <const float *const *>xp.p, <const void *const *>yp.p,
                                     <const float *const *>sp.p, n, sm, <float *const *>dp.p)
        check_status(st)
        return sums

    def output_gradients(self, list X, list upstream, list dx, list out):
        """dx[k] = d(sum_j sum(upstream[j] * output_j))/dX[k], inference behaviour."""
        cdef int st
        cdef int64_t n = X[0].shape[0]
        self._check_x(X, n)
        self._check_out(upstream, n, "upstream", True)
        self._check_out(out, n, "output", False)
        if len(dx) != len(self.in_sizes):
            raise ValueError("one dx array per input")
        for d, s in zip(dx, self.in_sizes):
            need_f32(d, "dx")
            if d.size != n * s:
                raise ValueError("a dx array does not match the model")
        cdef _Ptrs xp = _Ptrs(X), up = _Ptrs(upstream), dp = _Ptrs(dx), op = _Ptrs(out)
        with nogil:
            st = nnc_graph_output_gradients(self.ptr, <const float *const *>xp.p, n,
                                            <const float *const *>up.p, <float *const *>dp.p,
                                            <float *const *>op.p)
        check_status(st)

    def set_param_ranges(self, offsets, sizes, l1, l2):
        """Trainable ranges of the parameter arena (one per weight tensor) and their L1/L2."""
        cdef cnp.ndarray o = np.ascontiguousarray(offsets, dtype=np.int64)
        cdef cnp.ndarray n = np.ascontiguousarray(sizes, dtype=np.int64)
        cdef cnp.ndarray a = np.ascontiguousarray(l1, dtype=np.float32)
        cdef cnp.ndarray b = np.ascontiguousarray(l2, dtype=np.float32)
        if not (o.shape[0] == n.shape[0] == a.shape[0] == b.shape[0]):
            raise ValueError("param ranges: arrays of different lengths")
        ends = o + n
        if o.shape[0] and ((o < 0).any() or (n < 0).any() or ends.max() > nnc_graph_num_params(self.ptr)
                           or (o[1:] < ends[:o.shape[0] - 1]).any()):
            raise ValueError("param ranges: each must lie inside the parameter arena, in order, "
                             "without overlap")
        check_status(nnc_graph_set_param_ranges(self.ptr, <int>o.shape[0], <int64_t *>cnp.PyArray_DATA(o),
                                                <int64_t *>cnp.PyArray_DATA(n), fptr(a), fptr(b)))
