/* How the convolution passes share work among threads (conv2d.c, winograd.c, winograd_s2.c).
 * Work units are fixed by the problem, never by the thread count, so results are bitwise
 * identical for any number of threads. */
#include "conv_internal.h"

int conv_threads(int nthreads, double flops, int64_t units) {
#ifdef _OPENMP
    return nthreads > 0 ? nthreads : nnc_threads_for(flops, units);
#else
    (void)nthreads;
    (void)flops;
    (void)units;
    return 1; /* a serial build runs every pass in order, whatever the caller asked */
#endif
}

int conv_chunk_threads(int64_t nchunks, int T) { return T > 1 && nchunks >= 2 * T ? T : 1; }

typedef struct {
    const void *ctx;
    conv_chunk_fn fn;
    float *scratch;
    size_t per;
    int status;
} chunks_job;

static void chunk_task(void *p, int64_t ch, int thread) {
    chunks_job *j = (chunks_job *)p;
    int st = j->fn(j->ctx, ch, j->scratch + (size_t)thread * j->per, 1);
    if (st) __atomic_store_n(&j->status, st, __ATOMIC_RELAXED);
}

int conv_run_chunks(int64_t nchunks, int T, float *scratch, size_t per, conv_chunk_fn fn,
                    const void *ctx, int nthreads) {
    if (conv_chunk_threads(nchunks, T) > 1) {
        chunks_job j = {ctx, fn, scratch, per, 0};
        nnc_parallel_run(T, nchunks, chunk_task, &j);
        return j.status;
    }
    for (int64_t ch = 0; ch < nchunks; ch++) {
        int st = fn(ctx, ch, scratch, nthreads);
        if (st) return st;
    }
    return 0;
}

/* Weight-gradient tasks: slice sl's column blocks cut into q ranges (q = 1 when there are at
 * least as many slices as threads); a column block does not depend on the cut. */
typedef struct {
    void *ctx;
    conv_slice_fn body;
    conv_fin_fn fin;
    float *scratch;
    size_t per;
    int64_t blocks, q;
    int status;
} slices_job;

static void slice_task(void *p, int64_t i, int thread) {
    slices_job *j = (slices_job *)p;
    const int64_t sl = i / j->q, r = i % j->q;
    const int64_t b0 = j->blocks * r / j->q, b1 = j->blocks * (r + 1) / j->q;
    int st = b1 > b0 ? j->body(j->ctx, sl, b0, b1, j->scratch + (size_t)thread * j->per) : 0;
    if (st) __atomic_store_n(&j->status, st, __ATOMIC_RELAXED);
}

static void fin_range(void *p, int64_t i0, int64_t i1) {
    slices_job *j = (slices_job *)p;
    for (int64_t i = i0; i < i1; i++) j->fin(j->ctx, i);
}

int conv_run_slices(int64_t S, int64_t blocks, int T, float *scratch, size_t per,
                    conv_slice_fn body, conv_fin_fn fin, int64_t nfin, void *ctx) {
    if (T < 1) T = 1;
    slices_job j = {ctx, body, fin, scratch, per, blocks, T > S ? (T + S - 1) / S : 1, 0};
    if (j.q > blocks) j.q = blocks > 0 ? blocks : 1;
    nnc_parallel_run(T, S * j.q, slice_task, &j);
    if (nfin > 0) nnc_parallel_ranges(nfin, 1, T, fin_range, &j);
    return j.status;
}
