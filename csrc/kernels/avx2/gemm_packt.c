/* nnc_f32_gemm_packt__avx2: packs one NR-wide panel of op(B) = B^T (B is N x K, row-major,
 * leading dimension ldb) into the [k][nr] panel layout of the GEMM micro-kernels.
 *
 * The portable gather (csrc/gemm/pack.c) moves one float per store and runs at about one float
 * per cycle, which made NT calls and the per-step repacking of W^T for backward-data cost as much
 * as a small GEMM. Here 8 source rows x 8 k are loaded as 8 ymm rows and transposed in registers
 * (the classic unpack / shuffle / permute2f128 sequence, 24 shuffles per 64 floats); ragged k and
 * j fall back to scalar code, and columns w..nr-1 are zero-filled. Also used by the AVX-512
 * configuration (AVX2 is a subset there). */
#include "../../gemm/gemm_internal.h"

#if NNC_X86
#include <immintrin.h>
#include <string.h>

NNC_TARGET_AVX2 void nnc_f32_gemm_packt__avx2(size_t K, size_t w, const float *B /* in */,
                                              ptrdiff_t ldb, size_t nr, float *d /* out */) {
    size_t j = 0;
    for (; j + 8 <= w; j += 8) {
        const float *s = B + (ptrdiff_t)j * ldb;
        size_t k = 0;
        for (; k + 8 <= K; k += 8) {
            const __m256 r0 = _mm256_loadu_ps(s + k), r1 = _mm256_loadu_ps(s + ldb + k);
            const __m256 r2 = _mm256_loadu_ps(s + 2 * ldb + k), r3 = _mm256_loadu_ps(s + 3 * ldb + k);
            const __m256 r4 = _mm256_loadu_ps(s + 4 * ldb + k), r5 = _mm256_loadu_ps(s + 5 * ldb + k);
            const __m256 r6 = _mm256_loadu_ps(s + 6 * ldb + k), r7 = _mm256_loadu_ps(s + 7 * ldb + k);
            const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *dd = d + k * nr + j;
            _mm256_storeu_ps(dd + 0 * nr, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(dd + 1 * nr, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(dd + 2 * nr, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(dd + 3 * nr, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(dd + 4 * nr, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(dd + 5 * nr, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(dd + 6 * nr, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(dd + 7 * nr, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (; k < K; k++)
            for (size_t jj = 0; jj < 8; jj++) d[k * nr + j + jj] = s[(ptrdiff_t)jj * ldb + k];
    }
    for (; j < w; j++) {
        const float *s = B + (ptrdiff_t)j * ldb;
        for (size_t k = 0; k < K; k++) d[k * nr + j] = s[k];
    }
    if (w < nr)
        for (size_t k = 0; k < K; k++) memset(d + k * nr + w, 0, (nr - w) * sizeof(float));
}
#endif
