/* Elementwise dispatch table, thread splitting helper and the public vector-math entry points. */
#include "vmath.h"

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
