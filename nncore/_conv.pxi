# Convolution and pooling wrappers (csrc/conv/). Geometry and shapes are validated in
# nncore/ops/conv.py (and the layers); here we only check buffer sizes so that a wrong call can
# never read or write out of bounds.
from libc.stdint cimport uint8_t

cdef extern from "nncore/nnc.h" nogil:
    ctypedef struct nnc_conv2d_geom:
        int64_t H, W, C, KH, KW, F, sh, sw, dh, dw, pt, pl, OH, OW
    ctypedef struct nnc_conv2d:
        pass
    nnc_conv2d *nnc_conv2d_new(const nnc_conv2d_geom *g)
    void nnc_conv2d_free(nnc_conv2d *c)
    int nnc_conv2d_reserve(nnc_conv2d *c, int64_t batch)
    int nnc_conv2d_set_weights(nnc_conv2d *c, const float *w)
    int nnc_conv2d_forward(nnc_conv2d *c, const float *x, int64_t N, const float *bias, int act,
                           float alpha, float *y, int nthreads)
    int nnc_conv2d_backward_data(nnc_conv2d *c, const float *dz, int64_t N, float *dx, int nthreads)
    int nnc_conv2d_backward_weights(nnc_conv2d *c, const float *x, const float *dz, int64_t N,
                                    float *dw, float *db, int nthreads)
    int nnc_conv_act_backward(int act, float alpha, const float *y, float *dy, int64_t rows,
                              int64_t cols, float *db, int nthreads)
    void nnc_conv2d_set_winograd(int on)
    int nnc_conv2d_get_winograd()

    ctypedef struct nnc_pool2d_geom:
        int64_t H, W, C, PH, PW, sh, sw, pt, pl, OH, OW
    int nnc_maxpool2d_forward(const nnc_pool2d_geom *g, const float *x, int64_t N, float *y,
                              uint8_t *argmax, int nthreads)
    int nnc_maxpool2d_backward(const nnc_pool2d_geom *g, const float *dy, const uint8_t *argmax,
                               int64_t N, float *dx, int nthreads)
    int nnc_avgpool2d_forward(const nnc_pool2d_geom *g, const float *x, int64_t N, float *y,
                              int nthreads)
    int nnc_avgpool2d_backward(const nnc_pool2d_geom *g, const float *dy, int64_t N, float *dx,
                               int nthreads)
    int nnc_global_avgpool_forward(const float *x, int64_t N, int64_t S, int64_t C, float *y,
                                   int nthreads)
    int nnc_global_avgpool_backward(const float *dy, int64_t N, int64_t S, int64_t C, float *dx,
                                    int nthreads)
    int nnc_global_maxpool_forward(const float *x, int64_t N, int64_t S, int64_t C, float *y,
                                   int nthreads)
    int nnc_global_maxpool_backward(const float *x, const float *y, const float *dy, int64_t N,
                                    int64_t S, int64_t C, float *dx, int nthreads)
    int nnc_zeropad2d_forward(const float *x, int64_t N, int64_t H, int64_t W, int64_t C,
                              int64_t t, int64_t b, int64_t l, int64_t r, float *y, int nthreads)
    int nnc_zeropad2d_backward(const float *dy, int64_t N, int64_t H, int64_t W, int64_t C,
                               int64_t t, int64_t b, int64_t l, int64_t r, float *dx, int nthreads)


cdef inline float *_fptr(cnp.ndarray a, Py_ssize_t need, str what) except NULL:
    """Pointer to a C-contiguous float32 array holding at least `need` floats."""
    if a.dtype != np.float32 or not a.flags.c_contiguous:
        raise TypeError(f"{what}: expected a C-contiguous float32 array")
    if a.size < need:
        raise ValueError(f"{what}: expected at least {need} values, got {a.size}")
    if need == 0:
        return <float *>cnp.PyArray_DATA(a) if a.size else <float *>&_dummy_float
    return <float *>cnp.PyArray_DATA(a)


cdef float _dummy_float = 0


cdef class Conv2DPlan:
    """A Conv2D plan (geometry, packed weights, grow-only scratch). geom is the tuple
    (H, W, C, KH, KW, F, sh, sw, dh, dw, pt, pl, OH, OW)."""
    cdef nnc_conv2d *p
    cdef nnc_conv2d_geom g
    cdef readonly object w  # keeps the weights set by set_weights alive (the plan reads them lazily)
    cdef readonly tuple geom

    def __cinit__(self, tuple geom):
        if len(geom) != 14 or any(int(v) < 0 for v in geom):
            raise ValueError(f"bad conv geometry {geom}")
        (self.g.H, self.g.W, self.g.C, self.g.KH, self.g.KW, self.g.F, self.g.sh, self.g.sw,
         self.g.dh, self.g.dw, self.g.pt, self.g.pl, self.g.OH, self.g.OW) = [int(v) for v in geom]
        self.geom = geom
        self.p = nnc_conv2d_new(&self.g)
        if self.p == NULL:
            raise MemoryError("nncore: out of memory")

    def __dealloc__(self):
        if self.p != NULL:
            nnc_conv2d_free(self.p)

    def set_weights(self, cnp.ndarray w):
        cdef float *wp = _fptr(w, self.g.KH * self.g.KW * self.g.C * self.g.F, "kernel")
        cdef int st
        self.w = w
        with nogil:
            st = nnc_conv2d_set_weights(self.p, wp)
        check_status(st)

    def forward(self, cnp.ndarray x, object bias, int act, float alpha, cnp.ndarray y):
        cdef int64_t N = x.shape[0]
        cdef float *xp = _fptr(x, N * self.g.H * self.g.W * self.g.C, "x")
        cdef float *yp = _fptr(y, N * self.g.OH * self.g.OW * self.g.F, "y")
        cdef float *bp = NULL
        cdef int st
        if self.w is None:
            raise RuntimeError("Conv2DPlan: set_weights first")
        if bias is not None:
            bp = _fptr(bias, self.g.F, "bias")
        with nogil:
            st = nnc_conv2d_forward(self.p, xp, N, bp, act, alpha, yp, 0)
        check_status(st)

    def backward_data(self, cnp.ndarray dz, cnp.ndarray dx):
        cdef int64_t N = dz.shape[0]
        cdef float *dzp = _fptr(dz, N * self.g.OH * self.g.OW * self.g.F, "dy")
        cdef float *dxp = _fptr(dx, N * self.g.H * self.g.W * self.g.C, "dx")
        cdef int st
        if self.w is None:
            raise RuntimeError("Conv2DPlan: set_weights first")
        with nogil:
            st = nnc_conv2d_backward_data(self.p, dzp, N, dxp, 0)
        check_status(st)

    def backward_weights(self, cnp.ndarray x, cnp.ndarray dz, cnp.ndarray dw, object db):
        cdef int64_t N = x.shape[0]
        cdef float *xp = _fptr(x, N * self.g.H * self.g.W * self.g.C, "x")
        cdef float *dzp = _fptr(dz, N * self.g.OH * self.g.OW * self.g.F, "dy")
        cdef float *dwp = _fptr(dw, self.g.KH * self.g.KW * self.g.C * self.g.F, "dkernel")
        cdef float *dbp = NULL
        cdef int st
        if db is not None:
            dbp = _fptr(db, self.g.F, "dbias")
        with nogil:
            st = nnc_conv2d_backward_weights(self.p, xp, dzp, N, dwp, dbp, 0)
        check_status(st)


def conv_winograd(object on=None):
    """Returns whether 3x3 stride-1 convs use the Winograd path; on=True/False switches it
    (process-wide; tests and benchmarks compare it with the im2col path)."""
    cdef int old = nnc_conv2d_get_winograd()
    if on is not None:
        nnc_conv2d_set_winograd(1 if on else 0)
    return bool(old)


def conv_act_backward(int act, float alpha, cnp.ndarray y, cnp.ndarray dy, object db):
    """In place dy *= f'(y) for linear/relu/leaky_relu/relu6, db = column sums (or None)."""
    cdef int64_t cols = y.shape[y.ndim - 1] if y.ndim else 1
    cdef int64_t rows = y.size // cols if cols else 0
    cdef float *yp = _fptr(y, rows * cols, "y")
    cdef float *dyp = _fptr(dy, rows * cols, "dy")
    cdef float *dbp = NULL
    cdef int st
    if db is not None:
        dbp = _fptr(db, cols, "dbias")
    with nogil:
        st = nnc_conv_act_backward(act, alpha, yp, dyp, rows, cols, dbp, 0)
    check_status(st)


cdef nnc_pool2d_geom _pool_geom(tuple geom) except *:
    cdef nnc_pool2d_geom g
    if len(geom) != 11:
        raise ValueError(f"bad pool geometry {geom}")
    (g.H, g.W, g.C, g.PH, g.PW, g.sh, g.sw, g.pt, g.pl, g.OH, g.OW) = [int(v) for v in geom]
    if g.PH * g.PW > 256:
        raise ValueError(f"pool window {g.PH}x{g.PW} has more than 256 positions")
    return g


def maxpool2d_forward(tuple geom, cnp.ndarray x, cnp.ndarray y, object argmax):
    """geom = (H, W, C, PH, PW, sh, sw, pt, pl, OH, OW); argmax: uint8 array or None."""
    cdef nnc_pool2d_geom g = _pool_geom(geom)
    cdef int64_t N = x.shape[0]
    cdef float *xp = _fptr(x, N * g.H * g.W * g.C, "x")
    cdef float *yp = _fptr(y, N * g.OH * g.OW * g.C, "y")
    cdef uint8_t *ap = NULL
    cdef cnp.ndarray a
    cdef int st
    if argmax is not None:
        a = argmax
        if a.dtype != np.uint8 or not a.flags.c_contiguous or a.size < N * g.OH * g.OW * g.C:
            raise ValueError("argmax: expected a C-contiguous uint8 array of the output's size")
        ap = <uint8_t *>cnp.PyArray_DATA(a)
    with nogil:
        st = nnc_maxpool2d_forward(&g, xp, N, yp, ap, 0)
    check_status(st)


def maxpool2d_backward(tuple geom, cnp.ndarray dy, cnp.ndarray argmax, cnp.ndarray dx):
    cdef nnc_pool2d_geom g = _pool_geom(geom)
    cdef int64_t N = dx.shape[0]
    cdef float *dyp = _fptr(dy, N * g.OH * g.OW * g.C, "dy")
    cdef float *dxp = _fptr(dx, N * g.H * g.W * g.C, "dx")
    cdef int st
    if argmax.dtype != np.uint8 or not argmax.flags.c_contiguous or argmax.size < N * g.OH * g.OW * g.C:
        raise ValueError("argmax: expected a C-contiguous uint8 array of the output's size")
    with nogil:
        st = nnc_maxpool2d_backward(&g, dyp, <const uint8_t *>cnp.PyArray_DATA(argmax), N, dxp, 0)
    check_status(st)


def avgpool2d_forward(tuple geom, cnp.ndarray x, cnp.ndarray y):
    cdef nnc_pool2d_geom g = _pool_geom(geom)
    cdef int64_t N = x.shape[0]
    cdef float *xp = _fptr(x, N * g.H * g.W * g.C, "x")
    cdef float *yp = _fptr(y, N * g.OH * g.OW * g.C, "y")
    cdef int st
    with nogil:
        st = nnc_avgpool2d_forward(&g, xp, N, yp, 0)
    check_status(st)


def avgpool2d_backward(tuple geom, cnp.ndarray dy, cnp.ndarray dx):
    cdef nnc_pool2d_geom g = _pool_geom(geom)
    cdef int64_t N = dx.shape[0]
    cdef float *dyp = _fptr(dy, N * g.OH * g.OW * g.C, "dy")
    cdef float *dxp = _fptr(dx, N * g.H * g.W * g.C, "dx")
    cdef int st
    with nogil:
        st = nnc_avgpool2d_backward(&g, dyp, N, dxp, 0)
    check_status(st)


def global_pool_forward(bint is_max, cnp.ndarray x, cnp.ndarray y):
    """x [N, S, C] -> y [N, C]."""
    cdef int64_t N = x.shape[0], S = x.shape[1], C = x.shape[2]
    cdef float *xp = _fptr(x, N * S * C, "x")
    cdef float *yp = _fptr(y, N * C, "y")
    cdef int st
    with nogil:
        if is_max:
            st = nnc_global_maxpool_forward(xp, N, S, C, yp, 0)
        else:
            st = nnc_global_avgpool_forward(xp, N, S, C, yp, 0)
    check_status(st)


def global_avgpool_backward(cnp.ndarray dy, cnp.ndarray dx):
    cdef int64_t N = dx.shape[0], S = dx.shape[1], C = dx.shape[2]
    cdef float *dyp = _fptr(dy, N * C, "dy")
    cdef float *dxp = _fptr(dx, N * S * C, "dx")
    cdef int st
    with nogil:
        st = nnc_global_avgpool_backward(dyp, N, S, C, dxp, 0)
    check_status(st)


def global_maxpool_backward(cnp.ndarray x, cnp.ndarray y, cnp.ndarray dy, cnp.ndarray dx):
    cdef int64_t N = dx.shape[0], S = dx.shape[1], C = dx.shape[2]
    cdef float *xp = _fptr(x, N * S * C, "x")
    cdef float *yp = _fptr(y, N * C, "y")
    cdef float *dyp = _fptr(dy, N * C, "dy")
    cdef float *dxp = _fptr(dx, N * S * C, "dx")
    cdef int st
    with nogil:
        st = nnc_global_maxpool_backward(xp, yp, dyp, N, S, C, dxp, 0)
    check_status(st)


def zeropad2d(cnp.ndarray x, int64_t t, int64_t b, int64_t l, int64_t r, cnp.ndarray y, bint backward=False):
    """Forward: x [N,H,W,C] -> y [N,t+H+b,l+W+r,C]. Backward: x is dy (padded), y is dx."""
    cdef int64_t N, H, W, C
    cdef float *xp
    cdef float *yp
    cdef int st
    if not backward:
        N, H, W, C = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
        xp = _fptr(x, N * H * W * C, "x")
        yp = _fptr(y, N * (H + t + b) * (W + l + r) * C, "y")
        with nogil:
            st = nnc_zeropad2d_forward(xp, N, H, W, C, t, b, l, r, yp, 0)
    else:
        N, H, W, C = y.shape[0], y.shape[1], y.shape[2], y.shape[3]
        xp = _fptr(x, N * (H + t + b) * (W + l + r) * C, "dy")
        yp = _fptr(y, N * H * W * C, "dx")
        with nogil:
            st = nnc_zeropad2d_backward(xp, N, H, W, C, t, b, l, r, yp, 0)
    check_status(st)


# ---- engine nodes (see nnc_conv.h); wrap_node comes from _engine.pxi ----
cdef extern from "nncore/nnc.h" nogil:
    nnc_node *nnc_conv2d_node_new(const nnc_conv2d_geom *g, int use_bias, int act, float alpha,
                                  float *params, float *grads)
    nnc_node *nnc_pool2d_node_new(const nnc_pool2d_geom *g, int is_max)
    nnc_node *nnc_global_pool_node_new(int64_t S, int64_t C, int is_max)
    nnc_node *nnc_zeropad2d_node_new(int64_t H, int64_t W, int64_t C, int64_t t, int64_t b,
                                     int64_t l, int64_t r)
    nnc_node *nnc_transpose_node_new(int64_t A, int64_t B, int64_t inner)


def conv2d_node(tuple geom, bint use_bias, int act, float alpha, cnp.ndarray params,
                cnp.ndarray grads):
    """geom = (H, W, C, KH, KW, F, sh, sw, dh, dw, pt, pl, OH, OW); params = kernel then bias."""
    cdef nnc_conv2d_geom g
    if len(geom) != 14:
        raise ValueError(f"bad conv geometry {geom}")
    (g.H, g.W, g.C, g.KH, g.KW, g.F, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, g.OH, g.OW) = [int(v) for v in geom]
    cdef int64_t n = g.KH * g.KW * g.C * g.F + (g.F if use_bias else 0)
    _fptr(params, n, "params")
    _fptr(grads, n, "grads")
    return wrap_node(nnc_conv2d_node_new(&g, use_bias, act, alpha, fptr(params), fptr(grads)),
                     (params, grads))


def pool2d_node(tuple geom, bint is_max):
    """geom = (H, W, C, PH, PW, sh, sw, pt, pl, OH, OW)."""
    cdef nnc_pool2d_geom g = _pool_geom(geom)
    return wrap_node(nnc_pool2d_node_new(&g, is_max), None)


def global_pool_node(int64_t S, int64_t C, bint is_max):
    return wrap_node(nnc_global_pool_node_new(S, C, is_max), None)


def zeropad2d_node(int64_t H, int64_t W, int64_t C, int64_t t, int64_t b, int64_t l, int64_t r):
    return wrap_node(nnc_zeropad2d_node_new(H, W, C, t, b, l, r), None)


def transpose_node(int64_t A, int64_t B, int64_t inner):
    """Per sample [A, B, inner] -> [B, A, inner]."""
    return wrap_node(nnc_transpose_node_new(A, B, inner), None)
