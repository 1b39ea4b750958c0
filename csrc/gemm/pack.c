/* B packing: op(B) (K x N) into NR-wide panels, [panel][k][NR], zero-padded at the N edge.
 * A panel is contiguous over the whole K, so a KC block of it is one contiguous kc x NR run and
 * the layout does not depend on KC (only on NR, which the packed operand remembers).
 * Portable C; the NN copy is a run of NR contiguous floats per k (vectorised by the compiler),
 * the T form gathers a column of the source per k (transposed once, at pack time). */
#include "gemm_pack.h"

#include <string.h>

void nnc_f32_pack_b_panels(int64_t K, int64_t N, const float *B /* in */, int64_t ldb, int transB,
                           int nr, int64_t p0, int64_t p1, float *dst /* out */) {
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
        } else {
            /* op(B)(k, j) = B[j * ldb + k]: walk 4 source rows at once so reads stay sequential. */
            int64_t j = 0;
            for (; j + 4 <= w; j += 4) {
                const float *s0 = B + (j0 + j) * ldb, *s1 = s0 + ldb, *s2 = s1 + ldb, *s3 = s2 + ldb;
                float *dd = d + j;
                for (int64_t k = 0; k < K; k++, dd += nr) {
                    dd[0] = s0[k];
                    dd[1] = s1[k];
                    dd[2] = s2[k];
                    dd[3] = s3[k];
                }
            }
            for (; j < w; j++) {
                const float *s = B + (j0 + j) * ldb;
                for (int64_t k = 0; k < K; k++) d[k * nr + j] = s[k];
            }
            if (w < nr)
                for (int64_t k = 0; k < K; k++)
                    for (int64_t jj = w; jj < nr; jj++) d[k * nr + jj] = 0.f;
        }
    }
}
