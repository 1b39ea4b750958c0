/* Elementwise dispatch table, thread splitting helper and the public vector-math entry points. */
#include "vmath.h"

#ifdef _OPENMP
#include <omp.h>
#endif

nnc_elem_kernels nnc_elem_k;

void nnc_elem_dispatch_init(int isa) {
    nnc_elem_kernels k;
    nnc_elem_fill__generic(&k);
#if NNC_X86
    if (isa >= NNC_ISA_AVX2) nnc_elem_fill__avx2(&k);
    if (isa >= NNC_ISA_AVX512) nnc_elem_fill__avx512(&k);
#else
    (void)isa;
#endif
    nnc_elem_k = k;
}

void nnc_vexp(const float *x, float *y, int64_t n) { nnc_elem_k.vexp(x, y, n); }
void nnc_vsigmoid(const float *x, float *y, int64_t n) { nnc_elem_k.vsigmoid(x, y, n); }
void nnc_vtanh(const float *x, float *y, int64_t n) { nnc_elem_k.vtanh(x, y, n); }

int nnc_elem_threads(int nthreads, double flops, int64_t units) {
    if (units < 1) return 1;
    if (nthreads > 0) return (int)(nthreads < units ? nthreads : units);
    return nnc_threads_for(flops, units);
}

void nnc_elem_parallel(int64_t n, int64_t grain, int nt, nnc_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t blocks = (n + grain - 1) / grain;
    if (nt > blocks) nt = (int)blocks;
    if (nt <= 1) {
        fn(ctx, 0, n);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int64_t b0 = blocks * t / T, b1 = blocks * (t + 1) / T;
        int64_t i0 = b0 * grain, i1 = b1 * grain < n ? b1 * grain : n;
        if (i1 > i0) fn(ctx, i0, i1);
    }
#else
    fn(ctx, 0, n);
#endif
}
