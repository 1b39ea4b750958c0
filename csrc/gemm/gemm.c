/* PLACEHOLDER reference GEMM (correct, slow) so the rest of the engine links; replaced by the
 * packed/micro-kernel implementation. */
#include "../common/internal.h"

#include <math.h>
#include <string.h>

struct nnc_packed {
    int64_t K, N;
    float *data; /* K x N row-major copy of op(B) */
};

void nnc_gemm_dispatch_init(int isa) { (void)isa; }

void nnc_gemm_blocking(int *mr, int *nr, int *kc) {
    *mr = 1;
    *nr = 1;
    *kc = 0;
}

static float apply_ep(float v, const nnc_epilogue *ep, int64_t j) {
    if (!ep) return v;
    if (ep->bias) v += ep->bias[j];
    switch (ep->act) {
    case NNC_ACT_RELU: return v > 0.f ? v : 0.f;
    case NNC_ACT_LEAKY_RELU: return v > 0.f ? v : v * ep->alpha;
    case NNC_ACT_RELU6: return v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
    default: return v;
    }
}

int nnc_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
              int64_t ldc, const nnc_epilogue *ep, int nthreads) {
    (void)nthreads;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float s = 0.f;
            for (int64_t k = 0; k < K; k++) {
                float a = transA ? A[k * lda + i] : A[i * lda + k];
                float b = transB ? B[j * ldb + k] : B[k * ldb + j];
                s += a * b;
            }
            float v = alpha * s;
            if (beta != 0.f) v += beta * C[i * ldc + j];
            C[i * ldc + j] = apply_ep(v, ep, j);
        }
    return 0;
}

nnc_packed *nnc_packed_new(int64_t K, int64_t N) {
    nnc_packed *p = (nnc_packed *)nnc_malloc(sizeof(nnc_packed));
    if (!p) return NULL;
    p->K = K;
    p->N = N;
    p->data = (float *)nnc_malloc((size_t)(K * N > 0 ? K * N : 1) * sizeof(float));
    if (!p->data) {
        nnc_free(p);
        return NULL;
    }
    return p;
}

void nnc_packed_free(nnc_packed *p) {
    if (!p) return;
    nnc_free(p->data);
    nnc_free(p);
}

int nnc_pack_b(nnc_packed *p, const float *B, int64_t ldb, int transB) {
    for (int64_t k = 0; k < p->K; k++)
        for (int64_t j = 0; j < p->N; j++) p->data[k * p->N + j] = transB ? B[j * ldb + k] : B[k * ldb + j];
    return 0;
}

int nnc_sgemm_packed(int transA, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                     int64_t lda, const nnc_packed *Bp, float beta, float *C, int64_t ldc,
                     const nnc_epilogue *ep, int nthreads) {
    return nnc_sgemm(transA, 0, M, N, K, alpha, A, lda, Bp->data, Bp->N, beta, C, ldc, ep, nthreads);
}

int nnc_dgemm(int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
              const double *A, int64_t lda, const double *B, int64_t ldb, double beta, double *C,
              int64_t ldc) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++)
                s += (transA ? A[k * lda + i] : A[i * lda + k]) * (transB ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * ldc + j] = alpha * s + (beta != 0.0 ? beta * C[i * ldc + j] : 0.0);
        }
    return 0;
}
