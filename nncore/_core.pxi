# Core: init, ISA, threads, error mapping.
from libc.stdint cimport int64_t

cdef extern from "nncore/nnc.h" nogil:
    int NNC_OK, NNC_E_NOMEM, NNC_E_ARG, NNC_E_NONFINITE
    int nnc_init()
    int nnc_isa()
    const char *nnc_isa_name(int isa)
    int nnc_isa_supported(int isa)
    int nnc_openmp_enabled()
    void nnc_set_num_threads(int n)
    int nnc_get_num_threads()
    int nnc_default_num_threads()
    int nnc_forked_child()
    double nnc_set_parallel_threshold(double flops)
    int nnc_set_isa(int isa)
    void *nnc_malloc(size_t bytes)
    void nnc_free(void *p)

cdef extern from *:
    """
    #ifndef NNCORE_OPENMP_HOW
    #define NNCORE_OPENMP_HOW "unknown"
    #endif
    static const char *nnc_openmp_how = NNCORE_OPENMP_HOW;
    """
    const char *nnc_openmp_how

nnc_init()


cdef inline int check_status(int status) except -1:
    """Map a C status code to a Python exception (after the GIL is back)."""
    if status == 0:
        return 0
    if status == NNC_E_NOMEM:
        raise MemoryError("nncore: out of memory")
    if status == NNC_E_NONFINITE:
        raise ValueError("input contains NaN or infinity")
    if status == -4:  # NNC_E_INDEX (nnc_layers.h)
        raise ValueError("Embedding: an input index is out of range [0, input_dim) or NaN")
    raise RuntimeError(f"nncore: internal error (status {status})")


def isa_name():
    return nnc_isa_name(nnc_isa()).decode()


def isa_supported(name):
    ids = {"generic": 0, "avx2": 1, "avx512": 2}
    if name not in ids:
        raise ValueError(f"unknown ISA {name!r}; expected one of {sorted(ids)}")
    return bool(nnc_isa_supported(ids[name]))


_ISA_IDS = {"generic": 0, "avx2": 1, "avx512": 2}


def set_isa(name):
    """Switch kernels to another ISA at run time (for tests); returns the name now in use."""
    if name not in _ISA_IDS:
        raise ValueError(f"unknown ISA {name!r}; expected one of {sorted(_ISA_IDS)}")
    return nnc_isa_name(nnc_set_isa(_ISA_IDS[name])).decode()


def set_parallel_threshold(double flops):
    """Minimum flops for a region to use threads; returns the old value (tests set 0)."""
    return nnc_set_parallel_threshold(flops)


def openmp_enabled():
    return bool(nnc_openmp_enabled())


def openmp_how():
    return nnc_openmp_how.decode()


def set_num_threads(int n):
    nnc_set_num_threads(n)


def get_num_threads():
    return nnc_get_num_threads()


def default_num_threads():
    return nnc_default_num_threads()


def forked_child():
    return bool(nnc_forked_child())
