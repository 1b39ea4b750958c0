/* GEMM: C = act(alpha * op(A) * op(B) + beta * C + bias), row-major float32.
 * op(A) is M x K, op(B) is K x N. transA/transB are 0 (N) or 1 (T); TT is not supported.
 * beta == 0: C is never read (it may hold NaN). Threads split M or N, never K, so results are
 * bitwise identical for any thread count on one ISA. */
#ifndef NNCORE_GEMM_H
#define NNCORE_GEMM_H
#include "nncore/nnc_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Epilogue applied in registers after the last K block: bias (indexed by column), then
 * act in {NNC_ACT_LINEAR, NNC_ACT_RELU, NNC_ACT_LEAKY_RELU (slope = alpha), NNC_ACT_RELU6}.
 * Any other act is a caller error (the layers apply those in a separate pass). */
typedef struct {
    const float *bias; /* [N] or NULL */
    int act;
    float alpha;
} nnc_epilogue;

/* ep may be NULL. nthreads <= 0 means the process setting (nnc_threads_for decides). */
int nnc_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
              int64_t ldc, const nnc_epilogue *ep, int nthreads);

/* Pre-packed B (the weights): allocated once for a K x N operand, refilled after every
 * optimizer step by nnc_pack_b (no allocation). The layout depends on the kernel in use when
 * nnc_pack_b ran; the operand remembers it, and nnc_sgemm_packed uses that kernel even if the
 * ISA was switched since (repack to move to the new one). M, N, K of the call must match. */
typedef struct nnc_packed nnc_packed;
nnc_packed *nnc_packed_new(int64_t K, int64_t N);
void nnc_packed_free(nnc_packed *p);
/* Packs op(B) (K x N); transB = 1 means the source is N x K (so op(B) = B^T). */
int nnc_pack_b(nnc_packed *p, const float *B, int64_t ldb, int transB);
int nnc_sgemm_packed(int transA, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                     int64_t lda, const nnc_packed *Bp, float beta, float *C, int64_t ldc,
                     const nnc_epilogue *ep, int nthreads);

/* Implicit GEMMs sharing one packed B: group g computes C_g [M_g x N] = act(sum over its
 * segments s of A_s [M_g x K_s] B[k0_s : k0_s + K_s, :] + bias), A_s(i, k) = a[i * rs_a + k]
 * (rows rs_a apart, K_s contiguous), C_g rows ldc apart: an im2col read in place for
 * convolutions. Panels of B outermost, so each stays in L1 across all the groups. Single-
 * threaded; segments are summed in order, so a row's result does not depend on the grouping. */
typedef struct {
    const float *a;
    int64_t k0, K;
} nnc_gemm_seg;
typedef struct {
    int64_t M, rs_a, ldc;
    float *C;
    const nnc_gemm_seg *segs;
    int nseg;
} nnc_gemm_group;
int nnc_sgemm_packed_groups(int64_t N, const nnc_gemm_group *groups, int ngroups,
                            const nnc_packed *Bp, const nnc_epilogue *ep);

/* Double precision, generic path (used by tests and float64 references). */
int nnc_dgemm(int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
              const double *A, int64_t lda, const double *B, int64_t ldb, double beta, double *C,
              int64_t ldc);

/* Block sizes in use, for show_config. */
void nnc_gemm_blocking(int *mr, int *nr, int *kc);

#ifdef __cplusplus
}
#endif
#endif
