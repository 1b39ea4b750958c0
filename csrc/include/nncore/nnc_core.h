/* Core: status codes, ISA dispatch, threads, aligned allocation. */
#ifndef NNCORE_CORE_H
#define NNCORE_CORE_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NNC_OK 0
#define NNC_E_NOMEM (-1)
#define NNC_E_ARG (-2)       /* bad argument that the Cython layer should have caught */
#define NNC_E_NONFINITE (-3) /* NaN or inf found in an input that is checked in C */

/* ISA ids, in dispatch order. */
enum { NNC_ISA_GENERIC = 0, NNC_ISA_AVX2 = 1, NNC_ISA_AVX512 = 2 };

/* Reads NNCORE_ISA (generic|avx2|avx512) once, checks the CPU, fills the dispatch table.
 * Idempotent; called at import. */
int nnc_init(void);
int nnc_isa(void);                /* the ISA in use */
const char *nnc_isa_name(int isa);
int nnc_isa_supported(int isa);   /* what the CPU and OS allow */
int nnc_openmp_enabled(void);     /* built with OpenMP? */

/* Threads (one OpenMP pool). The setting is process-wide; every parallel region uses
 * nnc_threads_for(work) = min(setting, omp_get_max_threads(), useful) so threadpoolctl
 * limits are honoured. After fork() the child is forced to 1 thread (libgomp is not fork-safe). */
void nnc_set_num_threads(int n);  /* n >= 1 */
int nnc_get_num_threads(void);
int nnc_default_num_threads(void);
int nnc_forked_child(void);       /* 1 if this process is a fork child of one that used threads */
/* Threads to use for a region doing `flops` worth of work split into `units` independent parts. */
int nnc_threads_for(double flops, int64_t units);

/* Activation ids shared by the GEMM epilogue, the elementwise kernels and the layers.
 * Keras names: linear, relu, sigmoid, tanh, softmax, leaky_relu, elu, gelu (erf form, Keras's
 * default approximate=False), swish (= silu), softplus, selu, relu6, hard_sigmoid, softsign. */
enum {
    NNC_ACT_LINEAR = 0, NNC_ACT_RELU, NNC_ACT_SIGMOID, NNC_ACT_TANH, NNC_ACT_SOFTMAX,
    NNC_ACT_LEAKY_RELU, NNC_ACT_ELU, NNC_ACT_GELU, NNC_ACT_SWISH, NNC_ACT_SOFTPLUS,
    NNC_ACT_SELU, NNC_ACT_RELU6, NNC_ACT_HARD_SIGMOID, NNC_ACT_SOFTSIGN, NNC_ACT_COUNT
};

/* Minimum flops for a region to use threads (default 4e5); tests set 0 to exercise the
 * parallel splits on small sizes. Returns the previous value. */
double nnc_set_parallel_threshold(double flops);
/* Switch the ISA at run time (tests): refills the dispatch tables. Packed operands remember the
 * ISA they were packed for. Returns the ISA now in use (lower if `isa` is unsupported). */
int nnc_set_isa(int isa);

/* 64-byte aligned allocation; free with nnc_free. */
void *nnc_malloc(size_t bytes);
void nnc_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
