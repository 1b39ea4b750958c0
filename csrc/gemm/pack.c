/* B packing: op(B) (K x N) into NR-wide panels, [panel][k][NR], zero-padded at the N edge.
 * A panel is contiguous over the whole K, so a KC block of it is one contiguous kc x NR run and
 * the layout does not depend on KC (only on NR, which the packed operand remembers).
 * Portable C; the NN copy is a run of NR contiguous floats per k (vectorised by the compiler),
 * the T form gathers a column of the source per k (transposed once, at pack time). */
#include "gemm_pack.h"

#include <string.h>

void nnc_f32_pack_b_panels(int64_t K, int64_t N, const float *B /* in */, int64_t ldb, int transB,
                           const nnc_f32_gemm_config *cfg, int64_t p0, int64_t p1,
                           float *dst /* out */) {
    const int nr = cfg->nr;
    for (int64_t jp = p0; jp < p1; jp++) {
        const int64_t j0 = jp * nr;
        const int64_t w = NNC_MIN((int64_t)nr, N - j0);
        float *d = dst + (jp - p0) * K * nr;
        if (!transB) {
            const float *s = B + j0;
            if (w == nr) {
                if (nr == 32) {
                    for (int64_t k = 0; k < K; k++, s += ldb, d += 32) memcpy(d, s, 32 * sizeof(float));
                } else {
                    for (int64_t k = 0; k < K; k++, s += ldb, d += 16) memcpy(d, s, 16 * sizeof(float));
                }
            } else {
                for (int64_t k = 0; k < K; k++, s += ldb, d += nr) {
                    int64_t j = 0;
                    for (; j < w; j++) d[j] = s[j];
                    for (; j < nr; j++) d[j] = 0.f;
                }
            }
        } else if (cfg->packt) {
            cfg->packt((size_t)K, (size_t)w, B + j0 * ldb, (ptrdiff_t)ldb, (size_t)nr, d);
        } else {
            /* op(B)(k, j) = B[j * ldb + k]: in blocks of 64 k so the kb x nr destination block
             * (8 KiB at nr = 32) stays in L1 while the w source rows are read sequentially. */
            for (int64_t k0 = 0; k0 < K; k0 += 64) {
                const int64_t kb = NNC_MIN(64, K - k0);
                for (int64_t j = 0; j < w; j++) {
                    const float *s = B + (j0 + j) * ldb + k0;
                    float *dd = d + k0 * nr + j;
                    for (int64_t kk = 0; kk < kb; kk++) dd[kk * nr] = s[kk];
                }
            }
            if (w < nr)
                for (int64_t k = 0; k < K; k++)
                    for (int64_t jj = w; jj < nr; jj++) d[k * nr + jj] = 0.f;
        }
    }
}
