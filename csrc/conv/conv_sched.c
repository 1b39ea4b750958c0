/* How the convolution passes share work among threads (conv2d.c, winograd.c, winograd_s2.c).
 * Work units are fixed by the problem, never by the thread count, so results are bitwise
 * identical for any number of threads. */
#include "conv_internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

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

int conv_run_chunks(int64_t nchunks, int T, float *scratch, size_t per, conv_chunk_fn fn,
                    const void *ctx, int nthreads) {
    if (conv_chunk_threads(nchunks, T) > 1) {
        int status = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(T)
        {
            float *s = scratch + (size_t)omp_get_thread_num() * per;
#pragma omp for schedule(static)
            for (int64_t ch = 0; ch < nchunks; ch++) {
                int st = fn(ctx, ch, s, 1);
                if (st) {
#pragma omp atomic write
                    status = st;
                }
            }
        }
#endif
        return status;
    }
    for (int64_t ch = 0; ch < nchunks; ch++) {
        int st = fn(ctx, ch, scratch, nthreads);
        if (st) return st;
    }
    return 0;
}

/* Thread t of nt visits slices first, first + step, ...; with nt <= S it takes whole slices
 * (blocks [0, blocks)), with nt > S the threads t, t + S, ... of a slice share its blocks. */
static int64_t slice_first(int t, int nt, int64_t S) { return nt > S ? t % S : t; }
static int64_t slice_step(int nt, int64_t S) { return nt > S ? S : nt; }
static void slice_blocks(int t, int nt, int64_t S, int64_t sl, int64_t blocks, int64_t *b0,
                         int64_t *b1) {
    *b0 = 0;
    *b1 = blocks;
    if (nt > S) {
        const int64_t ns = (nt - sl + S - 1) / S, jt = t / S;
        *b0 = blocks * jt / ns;
        *b1 = blocks * (jt + 1) / ns;
    }
}

int conv_run_slices(int64_t S, int64_t blocks, int T, float *scratch, size_t per,
                    conv_slice_fn body, conv_fin_fn fin, int64_t nfin, void *ctx) {
    int status = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(T) if (T > 1)
#endif
    {
#ifdef _OPENMP
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        const int t = 0, nt = 1;
        (void)T;
#endif
        float *sc = scratch + (size_t)t * per;
        for (int64_t sl = slice_first(t, nt, S); sl < S; sl += slice_step(nt, S)) {
            int64_t b0, b1;
            slice_blocks(t, nt, S, sl, blocks, &b0, &b1);
            int st = b1 > b0 ? body(ctx, sl, b0, b1, sc) : 0;
            if (st) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
                status = st;
            }
        }
        if (nfin > 0) {
#ifdef _OPENMP
#pragma omp barrier
#pragma omp for schedule(static)
#endif
            for (int64_t i = 0; i < nfin; i++) fin(ctx, i);
        }
    }
    return status;
}
