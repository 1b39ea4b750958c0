# GEMM wrappers (csrc/gemm, DESIGN.md section 2). These are the thin, checked entry points the
# ops and layers build on: arrays must already be float32 (float64 for dgemm), 2-D, with unit
# column stride; leading dimensions come from the row strides, so views of wider arrays work.
# User-facing conversion and messages live in nncore/ops/matmul.py.

cdef extern from "nncore/nnc.h" nogil:
    ctypedef struct nnc_epilogue:
        const float *bias
        int act
        float alpha
    ctypedef struct nnc_packed:
        pass
    int NNC_ACT_LINEAR, NNC_ACT_RELU, NNC_ACT_LEAKY_RELU, NNC_ACT_RELU6
    int nnc_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc, const nnc_epilogue *ep, int nthreads)
    nnc_packed *nnc_packed_new(int64_t K, int64_t N)
    void nnc_packed_free(nnc_packed *p)
    int nnc_pack_b(nnc_packed *p, const float *B, int64_t ldb, int transB)
    int nnc_sgemm_packed(int transA, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                         int64_t lda, const nnc_packed *Bp, float beta, float *C, int64_t ldc,
                         const nnc_epilogue *ep, int nthreads)
    int nnc_dgemm(int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
                  const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                  double *C, int64_t ldc)
    void nnc_gemm_blocking(int *mr, int *nr, int *kc)

# Epilogue activation ids accepted by the GEMM kernels (names as in Keras).
GEMM_ACTIVATIONS = {"linear": NNC_ACT_LINEAR, "relu": NNC_ACT_RELU,
                    "leaky_relu": NNC_ACT_LEAKY_RELU, "relu6": NNC_ACT_RELU6}

# Below this many flops the call is shorter than a GIL release/reacquire is worth.
DEF _NOGIL_FLOPS = 2.0e5


def gemm_blocking():
    """(MR, NR, KC) of the GEMM kernel in use."""
    cdef int mr, nr, kc
    nnc_gemm_blocking(&mr, &nr, &kc)
    return mr, nr, kc


cdef inline int64_t _ld(cnp.ndarray x, int itemsize, str name) except -2:
    """Leading dimension (elements) of a 2-D array with unit column stride."""
    cdef cnp.npy_intp *st = cnp.PyArray_STRIDES(x)
    cdef cnp.npy_intp *sh = cnp.PyArray_DIMS(x)
    if sh[0] == 0 or sh[1] == 0:
        return sh[1] if sh[1] > 0 else 1
    if sh[1] > 1 and st[1] != itemsize:
        raise ValueError(f"{name} must have unit column stride (got strides {(<object>x).strides})")
    if sh[0] <= 1:
        return sh[1] if sh[1] > 0 else 1
    if st[0] < 0 or st[0] % itemsize:
        raise ValueError(f"{name} must have a positive row stride that is a multiple of the item size")
    return st[0] // itemsize


cdef inline int _check2d(cnp.ndarray x, int typenum, str name) except -1:
    if x is None:
        raise TypeError(f"{name} must be an array, not None")
    if cnp.PyArray_NDIM(x) != 2:
        raise ValueError(f"{name} must be 2-D, got {cnp.PyArray_NDIM(x)}-D")
    if cnp.PyArray_TYPE(x) != typenum:
        raise TypeError(f"{name} must be {'float32' if typenum == cnp.NPY_FLOAT32 else 'float64'}, got {x.dtype}")
    return 0


cdef inline int _check_out(cnp.ndarray c, int64_t M, int64_t N, int64_t ldc) except -1:
    if c.shape[0] != M or c.shape[1] != N:
        raise ValueError(f"c has shape {(<object>c).shape}, expected ({M}, {N})")
    if not cnp.PyArray_ISWRITEABLE(c):
        raise ValueError("c must be writeable")
    if M > 1 and ldc < N:
        raise ValueError("c rows overlap (row stride smaller than its width)")
    return 0


cdef inline const float *_bias_ptr(object bias, int64_t N) except? NULL:
    cdef cnp.ndarray bb
    if bias is None:
        return NULL
    bb = <cnp.ndarray?>bias
    if cnp.PyArray_NDIM(bb) != 1 or bb.shape[0] != N:
        raise ValueError(f"bias must have shape ({N},), got {bias.shape}")
    if cnp.PyArray_TYPE(bb) != cnp.NPY_FLOAT32 or not cnp.PyArray_IS_C_CONTIGUOUS(bb):
        raise TypeError("bias must be a contiguous float32 array")
    return <const float *>cnp.PyArray_DATA(bb)


cdef inline int _gemm_check_act(int act) except -1:
    if act != NNC_ACT_LINEAR and act != NNC_ACT_RELU and act != NNC_ACT_LEAKY_RELU and act != NNC_ACT_RELU6:
        raise ValueError(f"unsupported GEMM epilogue activation id {act}")
    return 0


def sgemm(cnp.ndarray a, cnp.ndarray b, cnp.ndarray c, bint trans_a=False, bint trans_b=False,
          float alpha=1.0, float beta=0.0, bias=None, int act=0, float slope=0.2, int nthreads=0):
    """c = act(alpha * op(a) @ op(b) + beta * c + bias), float32, in place; returns c.

    Leading dimensions are taken from the row strides (views of wider arrays are fine).
    beta == 0 never reads c. act is an id from GEMM_ACTIVATIONS; slope is leaky_relu's."""
    _check2d(a, cnp.NPY_FLOAT32, "a")
    _check2d(b, cnp.NPY_FLOAT32, "b")
    _check2d(c, cnp.NPY_FLOAT32, "c")
    _gemm_check_act(act)
    cdef int64_t M = a.shape[1] if trans_a else a.shape[0]
    cdef int64_t K = a.shape[0] if trans_a else a.shape[1]
    cdef int64_t Kb = b.shape[1] if trans_b else b.shape[0]
    cdef int64_t N = b.shape[0] if trans_b else b.shape[1]
    if K != Kb:
        raise ValueError(f"inner dimensions differ: op(a) is ({M}, {K}), op(b) is ({Kb}, {N})")
    cdef int64_t lda = _ld(a, 4, "a"), ldb = _ld(b, 4, "b"), ldc = _ld(c, 4, "c")
    _check_out(c, M, N, ldc)
    cdef const float *pb = _bias_ptr(bias, N)
    cdef nnc_epilogue ep
    ep.bias = pb
    ep.act = act
    ep.alpha = slope
    cdef const float *A = <const float *>cnp.PyArray_DATA(a)
    cdef const float *B = <const float *>cnp.PyArray_DATA(b)
    cdef float *C = <float *>cnp.PyArray_DATA(c)
    cdef int st
    if 2.0 * M * N * K < _NOGIL_FLOPS:
        st = nnc_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &ep, nthreads)
    else:
        with nogil:
            st = nnc_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &ep, nthreads)
    check_status(st)
    return c


def dgemm(cnp.ndarray a, cnp.ndarray b, cnp.ndarray c, bint trans_a=False, bint trans_b=False,
          double alpha=1.0, double beta=0.0):
    """c = alpha * op(a) @ op(b) + beta * c in float64 (generic path), in place; returns c."""
    _check2d(a, cnp.NPY_FLOAT64, "a")
    _check2d(b, cnp.NPY_FLOAT64, "b")
    _check2d(c, cnp.NPY_FLOAT64, "c")
    cdef int64_t M = a.shape[1] if trans_a else a.shape[0]
    cdef int64_t K = a.shape[0] if trans_a else a.shape[1]
    cdef int64_t Kb = b.shape[1] if trans_b else b.shape[0]
    cdef int64_t N = b.shape[0] if trans_b else b.shape[1]
    if K != Kb:
        raise ValueError(f"inner dimensions differ: op(a) is ({M}, {K}), op(b) is ({Kb}, {N})")
    cdef int64_t lda = _ld(a, 8, "a"), ldb = _ld(b, 8, "b"), ldc = _ld(c, 8, "c")
    _check_out(c, M, N, ldc)
    cdef const double *A = <const double *>cnp.PyArray_DATA(a)
    cdef const double *B = <const double *>cnp.PyArray_DATA(b)
    cdef double *C = <double *>cnp.PyArray_DATA(c)
    cdef int st
    with nogil:
        st = nnc_dgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
    check_status(st)
    return c


cdef class PackedB:
    """A K x N right-hand operand packed once for the GEMM kernels (layer weights).

    The buffer is allocated once; pack() refills it (after each optimizer step) without
    allocating. It remembers the kernel it was packed for, so it stays valid if the ISA is
    switched afterwards."""
    cdef nnc_packed *p
    cdef readonly int64_t K, N
    cdef readonly bint packed

    def __cinit__(self, int64_t K, int64_t N):
        if K < 0 or N < 0:
            raise ValueError(f"PackedB needs K, N >= 0, got ({K}, {N})")
        self.p = nnc_packed_new(K, N)
        if self.p == NULL:
            raise MemoryError("nncore: out of memory")
        self.K = K
        self.N = N
        self.packed = False

    def __dealloc__(self):
        if self.p != NULL:
            nnc_packed_free(self.p)
            self.p = NULL

    def pack(self, cnp.ndarray b, bint trans=False):
        """Packs b (K x N), or b.T when trans (b is then N x K)."""
        _check2d(b, cnp.NPY_FLOAT32, "b")
        cdef int64_t r = b.shape[1] if trans else b.shape[0]
        cdef int64_t q = b.shape[0] if trans else b.shape[1]
        if r != self.K or q != self.N:
            raise ValueError(f"b has shape {(<object>b).shape}; expected {(self.N, self.K) if trans else (self.K, self.N)}")
        cdef int64_t ldb = _ld(b, 4, "b")
        cdef const float *B = <const float *>cnp.PyArray_DATA(b)
        cdef int st
        with nogil:
            st = nnc_pack_b(self.p, B, ldb, trans)
        check_status(st)
        self.packed = True
        return self

    def matmul(self, cnp.ndarray a, cnp.ndarray c, bint trans_a=False, float alpha=1.0,
               float beta=0.0, bias=None, int act=0, float slope=0.2, int nthreads=0):
        """c = act(alpha * op(a) @ B + beta * c + bias) in place; returns c."""
        if not self.packed:
            raise ValueError("PackedB.matmul called before pack()")
        _check2d(a, cnp.NPY_FLOAT32, "a")
        _check2d(c, cnp.NPY_FLOAT32, "c")
        _gemm_check_act(act)
        cdef int64_t M = a.shape[1] if trans_a else a.shape[0]
        cdef int64_t K = a.shape[0] if trans_a else a.shape[1]
        if K != self.K:
            raise ValueError(f"op(a) is ({M}, {K}) but the packed operand is ({self.K}, {self.N})")
        cdef int64_t N = self.N
        cdef int64_t lda = _ld(a, 4, "a"), ldc = _ld(c, 4, "c")
        _check_out(c, M, N, ldc)
        cdef nnc_epilogue ep
        ep.bias = _bias_ptr(bias, N)
        ep.act = act
        ep.alpha = slope
        cdef const float *A = <const float *>cnp.PyArray_DATA(a)
        cdef float *C = <float *>cnp.PyArray_DATA(c)
        cdef int st
        if 2.0 * M * N * K < _NOGIL_FLOPS:
            st = nnc_sgemm_packed(trans_a, M, N, K, alpha, A, lda, self.p, beta, C, ldc, &ep, nthreads)
        else:
            with nogil:
                st = nnc_sgemm_packed(trans_a, M, N, K, alpha, A, lda, self.p, beta, C, ldc, &ep, nthreads)
        check_status(st)
        return c
