/* GEMM internals shared by the loop nest (csrc/gemm/) and the micro-kernels (csrc/kernels/).
 *
 * Micro-kernel contract (all ISAs):
 *   C[0:mr, 0:nr] = act(alpha * A[0:mr, 0:kc] * B[0:kc, 0:NR] + beta * C + bias)
 * - A is read unpacked through strides: A(i, k) = a[i * rs_a + k * cs_a] (NN: rs_a = lda,
 *   cs_a = 1; TN: rs_a = 1, cs_a = lda), so A^T needs no copy. 1 <= mr <= MR.
 * - B is one NR-wide panel: row k at b + k * rs_b, NR floats, columns >= nr are zero (packed)
 *   or at least readable (direct). rs_b = NR for packed panels, ldb for B used in place.
 * - beta == 0: C is never read. 1 <= nr <= NR: only nr columns are read or written.
 * - bias (already offset to the tile's first column) and act are applied only when given;
 *   the loop nest passes them only with the last K block. */
#ifndef NNCORE_GEMM_INTERNAL_H
#define NNCORE_GEMM_INTERNAL_H
#include "../common/internal.h"

#include <stddef.h>

typedef struct {
    float alpha;
    float beta;        /* 0: C not read */
    const float *bias; /* NULL or bias + first column of the tile */
    int act;           /* NNC_ACT_LINEAR, RELU, LEAKY_RELU, RELU6 */
    float slope;       /* leaky_relu negative slope */
} nnc_f32_gemm_params;

typedef void (*nnc_f32_gemm_ukernel_fn)(size_t mr, size_t nr, size_t kc, const float *a,
                                        ptrdiff_t rs_a, ptrdiff_t cs_a, const float *b,
                                        ptrdiff_t rs_b, float *c, ptrdiff_t ldc,
                                        const nnc_f32_gemm_params *p);

/* One entry of the dispatch table: a kernel and the blocking it assumes. */
typedef struct {
    int isa;
    int mr, nr, kc;
    /* Flops are scaled by this before nnc_threads_for: the process threshold is set for a
     * ~100 GFLOP/s kernel, and a faster one needs more work before a region pays off. */
    float par_scale;
    nnc_f32_gemm_ukernel_fn ukernel;
    /* Packs one panel of a transposed source (B is N x K): K rows of w <= nr columns, zero
     * padded to nr. NULL: the portable loop in pack.c. */
    void (*packt)(size_t K, size_t w, const float *B, ptrdiff_t ldb, size_t nr, float *dst);
} nnc_f32_gemm_config;

/* The configuration of an ISA (falls back to generic where not built). */
const nnc_f32_gemm_config *nnc_f32_gemm_config_for(int isa);

void nnc_f32_gemm_ukernel_4x16__generic(size_t mr, size_t nr, size_t kc, const float *a,
                                        ptrdiff_t rs_a, ptrdiff_t cs_a, const float *b,
                                        ptrdiff_t rs_b, float *c, ptrdiff_t ldc,
                                        const nnc_f32_gemm_params *p);
#if NNC_X86
void nnc_f32_gemm_ukernel_6x16__avx2(size_t mr, size_t nr, size_t kc, const float *a,
                                     ptrdiff_t rs_a, ptrdiff_t cs_a, const float *b,
                                     ptrdiff_t rs_b, float *c, ptrdiff_t ldc,
                                     const nnc_f32_gemm_params *p);
void nnc_f32_gemm_packt__avx2(size_t K, size_t w, const float *B, ptrdiff_t ldb, size_t nr,
                              float *dst);
void nnc_f32_gemm_ukernel_8x32__avx512(size_t mr, size_t nr, size_t kc, const float *a,
                                       ptrdiff_t rs_a, ptrdiff_t cs_a, const float *b,
                                       ptrdiff_t rs_b, float *c, ptrdiff_t ldc,
                                       const nnc_f32_gemm_params *p);
#endif

#endif
