/* B packing shared by nnc_sgemm (scratch) and nnc_pack_b (pre-packed weights). */
#ifndef NNCORE_GEMM_PACK_H
#define NNCORE_GEMM_PACK_H
#include "gemm_internal.h"

/* Packs panels p0..p1-1 of op(B) (K x N; transB: source is N x K) into dst (for cfg's NR and pack kernel), laid out
 * [panel][k][nr]: panel jp starts at dst + (jp - p0) * K * nr. Columns past N are zero. */
void nnc_f32_pack_b_panels(int64_t K, int64_t N, const float *B, int64_t ldb, int transB,
                           const nnc_f32_gemm_config *cfg, int64_t p0, int64_t p1, float *dst);
#endif
