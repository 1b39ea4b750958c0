# Elementwise area: activations, losses, optimizer updates, reductions (csrc/elem/).
# Inputs are converted (np.ascontiguousarray(x, np.float32)); outputs and in-place buffers must
# already be C-contiguous, writable float32 arrays of the right shape (ValueError otherwise).
# Shapes are checked here; the C calls run without the GIL.
from libc.stdint cimport int32_t

cdef extern from "nncore/nnc.h" nogil:
    float NNC_FOCAL_GAMMA
    float NNC_FOCAL_ALPHA
    int NNC_REDUCE_CHUNK
    int nnc_act_forward(int act, float alpha, const float *x, float *y, int64_t rows, int64_t cols,
                        int nthreads)
    int nnc_act_backward(int act, float alpha, const float *x, const float *y, const float *dy,
                         float *dx, int64_t rows, int64_t cols, float *db, int nthreads)
    int nnc_colsum(const float *x, int64_t rows, int64_t cols, int64_t ldx, float *out,
                   int accumulate, int nthreads)
    int nnc_all_finite(const float *x, int64_t n)
    int nnc_loss(int loss, int from_logits, float param, const float *pred, const void *target,
                 const float *w, int64_t rows, int64_t cols, float scale, double *loss_sum,
                 float *grad, int nthreads)
    int nnc_loss_ex(int loss, int from_logits, const float *params, const float *pred,
                    const void *target, const float *w, int64_t rows, int64_t cols, float scale,
                    double *loss_sum, float *grad, int nthreads)
    int nnc_sgd_update(float *p, const float *g, float *m, int64_t n, float lr, float momentum,
                       int nesterov, float wd, int nthreads)
    int nnc_adam_update(float *p, const float *g, float *m, float *v, float *vmax, int64_t n,
                        float lr, float beta1, float beta2, float eps, int64_t t, float wd,
                        int nthreads)
    int nnc_rmsprop_update(float *p, const float *g, float *v, float *m, float *mg, int64_t n,
                           float lr, float rho, float momentum, float eps, int centered, float wd,
                           int nthreads)

cdef extern from "elem/vmath.h" nogil:
    void nnc_vexp(const float *x, float *y, int64_t n)
    void nnc_vsigmoid(const float *x, float *y, int64_t n)
    void nnc_vtanh(const float *x, float *y, int64_t n)

# Activation ids (nnc_core.h) under their Keras names, with the usual aliases.
ACTIVATIONS = {
    "linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "softmax": 4, "leaky_relu": 5, "elu": 6,
    "gelu": 7, "swish": 8, "silu": 8, "softplus": 9, "selu": 10, "relu6": 11,
    "hard_sigmoid": 12, "softsign": 13,
}
ACTIVATION_NAMES = {v: k for k, v in ACTIVATIONS.items() if k != "silu"}
# Keras's default extra parameter of the activations that take one (leaky_relu, elu).
ACTIVATION_DEFAULT_ALPHA = {5: 0.2, 6: 1.0}
# Loss ids (nnc_elem.h) under their Keras names and aliases.
LOSSES = {
    "mean_squared_error": 0, "mse": 0, "mean_absolute_error": 1, "mae": 1, "huber": 2,
    "huber_loss": 2, "binary_crossentropy": 3, "categorical_crossentropy": 4,
    "sparse_categorical_crossentropy": 5, "binary_focal_crossentropy": 6,
}
LOSS_NAMES = {0: "mean_squared_error", 1: "mean_absolute_error", 2: "huber",
              3: "binary_crossentropy", 4: "categorical_crossentropy",
              5: "sparse_categorical_crossentropy"}
REDUCE_CHUNK = NNC_REDUCE_CHUNK


cdef inline float *_wptr(object a, str name) except NULL:
    """Pointer into a writable, C-contiguous float32 ndarray (raises otherwise)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != np.float32 or not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name} must be a writable C-contiguous float32 array "
                         f"(got dtype {a.dtype}, contiguous={a.flags.c_contiguous}, "
                         f"writeable={a.flags.writeable})")
    return <float *>cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline const float *_rptr(cnp.ndarray a):
    return <const float *>cnp.PyArray_DATA(a)


cdef inline object _f32(object x, str name):
    a = np.ascontiguousarray(x, dtype=np.float32)
    if a.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a scalar")
    return a


cdef inline int _check_act(int act) except -1:
    if act < 0 or act >= 14:
        raise ValueError(f"unknown activation id {act}; expected 0..13 (see ACTIVATIONS)")
    return 0


def act_forward(int act, float alpha, x, out=None):
    """out = f(x) for activation id `act` (softmax over the last axis). Returns out."""
    _check_act(act)
    xa = _f32(x, "x")
    if out is None:
        out = np.empty(xa.shape, np.float32)
    cdef float *y = _wptr(out, "out")
    if out.shape != xa.shape:
        raise ValueError(f"out has shape {out.shape}, expected {xa.shape} (the shape of x)")
    cdef int64_t cols = xa.shape[xa.ndim - 1]
    cdef int64_t rows = (xa.size // cols) if cols > 0 else 0
    cdef const float *px = _rptr(xa)
    cdef int st
    with nogil:
        st = nnc_act_forward(act, alpha, px, y, rows, cols, 0)
    check_status(st)
    return out


def act_backward(int act, float alpha, x, y, dy, dx=None, db=None):
    """dx = dy * f'(.) (x needed only by gelu and swish, else may be None); if db is given it
    receives the column sums of dx (sum over all leading axes). Returns dx."""
    _check_act(act)
    ya = _f32(y, "y")
    dya = _f32(dy, "dy")
    if dya.shape != ya.shape:
        raise ValueError(f"dy has shape {dya.shape}, expected {ya.shape} (the shape of y)")
    cdef const float *px = NULL
    if act == 7 or act == 8:
        if x is None:
            raise ValueError(f"activation {ACTIVATION_NAMES[act]} needs x for its backward pass")
    if x is not None:
        xa = _f32(x, "x")
        if xa.shape != ya.shape:
            raise ValueError(f"x has shape {xa.shape}, expected {ya.shape} (the shape of y)")
        px = _rptr(xa)
    if dx is None:
        dx = np.empty(ya.shape, np.float32)
    cdef float *pdx = _wptr(dx, "dx")
    if dx.shape != ya.shape:
        raise ValueError(f"dx has shape {dx.shape}, expected {ya.shape} (the shape of y)")
    cdef int64_t cols = ya.shape[ya.ndim - 1]
    cdef int64_t rows = (ya.size // cols) if cols > 0 else 0
    cdef float *pdb = NULL
    if db is not None:
        pdb = _wptr(db, "db")
        if db.shape != (cols,):
            raise ValueError(f"db has shape {db.shape}, expected ({cols},)")
    cdef const float *py = _rptr(ya)
    cdef const float *pdy = _rptr(dya)
    cdef int st
    with nogil:
        st = nnc_act_backward(act, alpha, px, py, pdy, pdx, rows, cols, pdb, 0)
    check_status(st)
    return dx


def colsum(x, out=None, bint accumulate=False):
    """Column sums of a 2-D array in the fixed chunk order (NNC_REDUCE_CHUNK rows)."""
    xa = _f32(x, "x")
    if xa.ndim != 2:
        raise ValueError(f"x must be 2-D, got shape {xa.shape}")
    cdef int64_t rows = xa.shape[0], cols = xa.shape[1]
    if out is None:
        if accumulate:
            raise ValueError("accumulate=True needs an out array")
        out = np.empty(cols, np.float32)
    cdef float *po = _wptr(out, "out")
    if out.shape != (cols,):
        raise ValueError(f"out has shape {out.shape}, expected ({cols},)")
    cdef const float *px = _rptr(xa)
    cdef int st
    with nogil:
        st = nnc_colsum(px, rows, cols, cols, po, accumulate, 0)
    check_status(st)
    return out


def all_finite(x):
    """True if no value of x is NaN or infinite."""
    xa = np.ascontiguousarray(x, dtype=np.float32)
    cdef const float *px = _rptr(xa)
    cdef int64_t n = xa.size
    cdef int r
    with nogil:
        r = nnc_all_finite(px, n)
    return bool(r)


def vmath(str fn, x, out=None):
    """Array vector math on the current ISA: fn in ('exp', 'sigmoid', 'tanh')."""
    xa = _f32(x, "x")
    if out is None:
        out = np.empty(xa.shape, np.float32)
    cdef float *po = _wptr(out, "out")
    if out.shape != xa.shape:
        raise ValueError(f"out has shape {out.shape}, expected {xa.shape}")
    cdef const float *px = _rptr(xa)
    cdef int64_t n = xa.size
    cdef int which
    if fn == "exp":
        which = 0
    elif fn == "sigmoid":
        which = 1
    elif fn == "tanh":
        which = 2
    else:
        raise ValueError(f"unknown vector function {fn!r}; expected 'exp', 'sigmoid' or 'tanh'")
    with nogil:
        if which == 0:
            nnc_vexp(px, po, n)
        elif which == 1:
            nnc_vsigmoid(px, po, n)
        else:
            nnc_vtanh(px, po, n)
    return out


cdef int _loss_params(object param, float *out) except -1:
    """param: a number (huber delta / label smoothing) or up to 4 numbers (nnc_loss_ex's
    params: label_smoothing, gamma, alpha, apply_class_balancing for the focal loss)."""
    cdef int i
    vals = [0.0, NNC_FOCAL_GAMMA, NNC_FOCAL_ALPHA, 0.0]
    if isinstance(param, (tuple, list)):
        if not 1 <= len(param) <= 4:
            raise ValueError(f"loss parameters: expected 1 to 4 numbers, got {len(param)}")
        for i in range(len(param)):
            vals[i] = float(param[i])
    else:
        vals[0] = float(param)
    for i in range(4):
        out[i] = vals[i]
    return 0


def loss(int loss_id, pred, target, sample_weight=None, bint from_logits=False,
         param=0.0, float scale=1.0, grad=None, bint compute_grad=True):
    """Keras loss over a [rows, cols] batch.

    Returns (loss_sum, grad): loss_sum = sum_i w_i * loss_i (float), grad = scale * d loss_sum /
    d pred (d logits when from_logits) or None when compute_grad is False. param is huber's delta
    or the label smoothing of the cross-entropies. sparse_categorical_crossentropy takes integer
    labels of shape (rows,) or (rows, 1) in [0, cols)."""
    if loss_id < 0 or loss_id >= 7:
        raise ValueError(f"unknown loss id {loss_id}; expected 0..6 (see LOSSES)")
    cdef float lparams[4]
    _loss_params(param, lparams)
    pa = _f32(pred, "pred")
    if pa.ndim == 1:
        pa = pa.reshape(-1, 1)
    if pa.ndim != 2:
        raise ValueError(f"pred must be 2-D (batch, values), got shape {pa.shape}")
    cdef int64_t rows = pa.shape[0], cols = pa.shape[1]
    if cols < 1:
        raise ValueError(f"pred has shape {pa.shape}: no values per sample")
    if loss_id == 5:
        ta = np.asarray(target)
        if ta.ndim == 2 and ta.shape[1] == 1:
            ta = ta.reshape(-1)
        if ta.shape != (rows,):
            raise ValueError(f"sparse labels have shape {ta.shape}, expected ({rows},) "
                             f"for predictions of shape {pa.shape}")
        if ta.dtype.kind == "f":
            if ta.size and not np.all(np.isfinite(ta)) or ta.size and np.any(ta != np.floor(ta)):
                raise ValueError("sparse labels must be integers")
        elif ta.dtype.kind not in "iub":
            raise TypeError(f"sparse labels must be integers, got dtype {ta.dtype}")
        ta = np.ascontiguousarray(ta, dtype=np.int32)
        if not _labels_in_range(ta, cols):
            raise ValueError(f"sparse labels must lie in [0, {cols}), got values in "
                             f"[{ta.min()}, {ta.max()}]")
    else:
        ta = _f32(target, "target")
        if ta.ndim == 1 and cols == 1:
            ta = ta.reshape(-1, 1)
        if ta.shape != pa.shape:
            raise ValueError(f"target has shape {ta.shape}, expected {pa.shape} "
                             f"(the shape of pred)")
    cdef const float *pw = NULL
    if sample_weight is not None:
        wa = _f32(sample_weight, "sample_weight").reshape(-1)
        if wa.shape != (rows,):
            raise ValueError(f"sample_weight has shape {np.shape(sample_weight)}, "
                             f"expected ({rows},)")
        pw = _rptr(wa)
    cdef float *pg = NULL
    if compute_grad:
        if grad is None:
            grad = np.empty((rows, cols), np.float32)
        pg = _wptr(grad, "grad")
        if grad.size != rows * cols:
            raise ValueError(f"grad has shape {grad.shape}, expected {(rows, cols)}")
    else:
        grad = None
    cdef const float *pp = _rptr(pa)
    cdef const void *pt = cnp.PyArray_DATA(<cnp.ndarray>ta)
    cdef double total = 0.0
    cdef int st
    with nogil:
        st = nnc_loss_ex(loss_id, from_logits, lparams, pp, pt, pw, rows, cols, scale, &total, pg, 0)
    check_status(st)
    return total, grad


cdef bint _labels_in_range(const int32_t[::1] lab, int64_t cols) noexcept:
    cdef Py_ssize_t i
    cdef int32_t v
    for i in range(lab.shape[0]):
        v = lab[i]
        if v < 0 or v >= cols:
            return False
    return True


cdef inline int64_t _same_n(object a, int64_t n, str name) except -1:
    if a.size != n:
        raise ValueError(f"{name} has {a.size} values (shape {a.shape}), expected {n} "
                         f"(the size of the parameters)")
    return 0


def sgd_update(p, g, m, float lr, float momentum=0.0, bint nesterov=False,
               float weight_decay=0.0):
    """Keras SGD step in place on flat float32 buffers (m may be None when momentum == 0)."""
    cdef float *pp = _wptr(p, "p")
    cdef int64_t n = p.size
    ga = _f32(g, "g")
    _same_n(ga, n, "g")
    cdef float *pm = NULL
    if momentum != 0.0:
        if m is None:
            raise ValueError("momentum != 0 needs a momentum buffer m")
        pm = _wptr(m, "m")
        _same_n(m, n, "m")
    cdef const float *pg = _rptr(ga)
    cdef int st
    with nogil:
        st = nnc_sgd_update(pp, pg, pm, n, lr, momentum, nesterov, weight_decay, 0)
    check_status(st)


def adam_update(p, g, m, v, vmax, float lr, float beta1, float beta2, float eps, int64_t t,
                float weight_decay=0.0):
    """Keras Adam/AdamW step t (1-based) in place; vmax is the amsgrad slot or None."""
    if t < 1:
        raise ValueError(f"step t must be >= 1, got {t}")
    cdef float *pp = _wptr(p, "p")
    cdef int64_t n = p.size
    ga = _f32(g, "g")
    _same_n(ga, n, "g")
    cdef float *pm = _wptr(m, "m")
    _same_n(m, n, "m")
    cdef float *pv = _wptr(v, "v")
    _same_n(v, n, "v")
    cdef float *pvm = NULL
    if vmax is not None:
        pvm = _wptr(vmax, "vmax")
        _same_n(vmax, n, "vmax")
    cdef const float *pg = _rptr(ga)
    cdef int st
    with nogil:
        st = nnc_adam_update(pp, pg, pm, pv, pvm, n, lr, beta1, beta2, eps, t, weight_decay, 0)
    check_status(st)


def rmsprop_update(p, g, v, m, mg, float lr, float rho=0.9, float momentum=0.0, float eps=1e-7,
                   bint centered=False, float weight_decay=0.0):
    """Keras RMSprop step in place (m needed when momentum > 0, mg when centered)."""
    cdef float *pp = _wptr(p, "p")
    cdef int64_t n = p.size
    ga = _f32(g, "g")
    _same_n(ga, n, "g")
    cdef float *pv = _wptr(v, "v")
    _same_n(v, n, "v")
    cdef float *pm = NULL
    cdef float *pmg = NULL
    if momentum > 0.0:
        if m is None:
            raise ValueError("momentum > 0 needs a momentum buffer m")
        pm = _wptr(m, "m")
        _same_n(m, n, "m")
    if centered:
        if mg is None:
            raise ValueError("centered=True needs an average-gradient buffer mg")
        pmg = _wptr(mg, "mg")
        _same_n(mg, n, "mg")
    cdef const float *pg = _rptr(ga)
    cdef int st
    with nogil:
        st = nnc_rmsprop_update(pp, pg, pv, pm, pmg, n, lr, rho, momentum, eps, centered,
                                weight_decay, 0)
    check_status(st)
