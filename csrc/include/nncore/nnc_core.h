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

/* Threads (nncore's own pool, threads.c). The setting is process-wide; every parallel region uses
 * nnc_threads_for(work) = min(setting, omp_get_max_threads(), useful) so OMP_NUM_THREADS and
 * threadpoolctl limits are honoured. */
void nnc_set_num_threads(int n);  /* n >= 1 */
int nnc_get_num_threads(void);
int nnc_default_num_threads(void);
/* Threads to use for a region doing `flops` worth of work split into `units` independent parts. */
int nnc_threads_for(double flops, int64_t units);
/* Runs fn(ctx, task, thread) for every task in [0, ntasks) on up to nt threads, the caller being
 * thread 0; thread ids are < nt and unique among the tasks running at once (per-thread scratch).
 * Tasks are claimed by the threads that are running, so results must not depend on which thread
 * runs a task: fix task boundaries and the order partial results are combined by the problem. */
typedef void (*nnc_task_fn)(void *ctx, int64_t task, int thread);
void nnc_parallel_run(int nt, int64_t ntasks, nnc_task_fn fn, void *ctx);
/* fn(ctx, begin, end) over [0, n) cut into ranges whose boundaries are multiples of `grain`
 * (a few per thread); callers must give the same result for any cut. nt <= 1: one serial call. */
typedef void (*nnc_range_fn)(void *ctx, int64_t begin, int64_t end);
void nnc_parallel_ranges(int64_t n, int64_t grain, int nt, nnc_range_fn fn, void *ctx);
/* Tests and benchmarks: workers sleep `us` before each claim; the spin budget before sleeping. */
void nnc_pool_set_test_delay(int64_t us);
void nnc_pool_set_spin_us(double us);

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
