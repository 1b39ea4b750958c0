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
    void nnc_pool_set_test_delay(int64_t us)
    void nnc_pool_set_spin_us(double us)
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
    /* build metadata (setup.py defines the NNCORE_BUILD_* strings; the compiler names itself) */
    #define NNC_STR2(x) #x
    #define NNC_STR(x) NNC_STR2(x)
    #if defined(__clang__)
    #define NNC_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #define NNC_COMPILER "gcc " __VERSION__
    #elif defined(_MSC_VER)
    #define NNC_COMPILER "msvc " NNC_STR(_MSC_FULL_VER)
    #else
    #define NNC_COMPILER "unknown"
    #endif
    #ifndef NNCORE_BUILD_DATE
    #define NNCORE_BUILD_DATE "unknown"
    #endif
    #ifndef NNCORE_BUILD_NUMPY
    #define NNCORE_BUILD_NUMPY "unknown"
    #endif
    #ifndef NNCORE_BUILD_CYTHON
    #define NNCORE_BUILD_CYTHON "unknown"
    #endif
    static const char *nnc_build_compiler = NNC_COMPILER;
    static const char *nnc_build_date = NNCORE_BUILD_DATE;
    static const char *nnc_build_numpy = NNCORE_BUILD_NUMPY;
    static const char *nnc_build_cython = NNCORE_BUILD_CYTHON;
    """
    const char *nnc_openmp_how
    const char *nnc_build_compiler
    const char *nnc_build_date
    const char *nnc_build_numpy
    const char *nnc_build_cython

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


def build_info():
    """Compiler, build date and the NumPy/Cython versions the extension was built with."""
    return {"compiler": nnc_build_compiler.decode(errors="replace").strip(),
            "build_date": nnc_build_date.decode(), "built_with_numpy": nnc_build_numpy.decode(),
            "built_with_cython": nnc_build_cython.decode()}


def set_num_threads(int n):
    nnc_set_num_threads(n)


def get_num_threads():
    return nnc_get_num_threads()


def default_num_threads():
    return nnc_default_num_threads()


def _pool_set_test_delay(int64_t us):
    """Tests: every pool worker sleeps `us` microseconds before claiming each task."""
    nnc_pool_set_test_delay(us)


def _pool_set_spin_us(double us):
    """Benchmarks: how long pool threads spin before sleeping (NNCORE_SPIN_US)."""
    nnc_pool_set_spin_us(us)
