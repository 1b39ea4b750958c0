/* Activations forward/backward, column sums (bias gradients) and the finiteness check.
 *
 * Layout: [rows x cols] row-major, contiguous (colsum takes a leading dimension).
 * Threads split flat elements (elementwise activations), rows (softmax) or, for reductions,
 * columns or row chunks. Column sums always use the same order, whatever the split:
 *   P_c[j] = x[c*CH][j] + ... + x[c*CH+CH-1][j]   (CH = NNC_REDUCE_CHUNK rows, in row order)
 *   out[j] = ((P_0[j] + P_1[j]) + P_2[j]) + ...   (chunk order; starts from out[j] if accumulating)
 * so 1 and 2 threads give bitwise equal results. Two splits compute it:
 *   by column tiles (each thread owns whole columns) when there are enough columns, or
 *   by chunks (partials into a stack buffer, folded serially) when columns are few. */
#include <string.h>

#include "vmath.h"

#define GRAIN 64            /* elements per split unit: whole vectors for every ISA */
#define TILE_MAX 512        /* columns per tile (stack accumulator) */
#define PART_FLOATS 8192    /* stack floats for chunk partials (32 KB) */

/* ---- forward ---------------------------------------------------------------------------- */

typedef struct {
    int act;
    float alpha;
    const float *x, *y, *dy;
    float *yo, *dx;
    int64_t cols;
} act_ctx;

static void fwd_flat(void *p, int64_t i0, int64_t i1) {
    act_ctx *c = p;
    nnc_elem_k.act_fwd(c->act, c->alpha, c->x + i0, c->yo + i0, i1 - i0);
}

static void fwd_softmax(void *p, int64_t r0, int64_t r1) {
    act_ctx *c = p;
    for (int64_t r = r0; r < r1; r++)
        nnc_elem_k.softmax_row(c->x + r * c->cols, c->yo + r * c->cols, c->cols);
}

static double act_cost(int act) {
    switch (act) {
    case NNC_ACT_LINEAR: case NNC_ACT_RELU: case NNC_ACT_LEAKY_RELU: case NNC_ACT_RELU6:
    case NNC_ACT_HARD_SIGMOID: return 2.0;
    case NNC_ACT_GELU: return 60.0;
    default: return 20.0;
    }
}

int nnc_act_forward(int act, float alpha, const float *x, float *y, int64_t rows, int64_t cols,
                    int nthreads) {
    if (act < 0 || act >= NNC_ACT_COUNT || rows < 0 || cols < 0) return NNC_E_ARG;
    int64_t n = rows * cols;
    if (n == 0) return NNC_OK;
    act_ctx c = {act, alpha, x, NULL, NULL, y, NULL, cols};
    if (act == NNC_ACT_SOFTMAX) {
        int nt = nnc_elem_threads(nthreads, 25.0 * (double)n, rows);
        nnc_parallel_ranges(rows, 1, nt, fwd_softmax, &c);
    } else {
        if (act == NNC_ACT_LINEAR && x == y) return NNC_OK;
        int nt = nnc_elem_threads(nthreads, act_cost(act) * (double)n, (n + GRAIN - 1) / GRAIN);
        nnc_parallel_ranges(n, GRAIN, nt, fwd_flat, &c);
    }
    return NNC_OK;
}

/* ---- column sums ------------------------------------------------------------------------ */

static inline void add_row(float *acc, const float *r, int64_t n) {
    for (int64_t j = 0; j < n; j++) acc[j] += r[j];
}

/* Backward of one [nr x w] block at (r0, j0) into dx; used by the fused db paths. */
static void bwd_block(const act_ctx *c, int64_t r0, int64_t nr, int64_t j0, int64_t w) {
    int64_t cols = c->cols;
    if (c->act == NNC_ACT_SOFTMAX) { /* whole rows only (j0 == 0, w == cols) */
        for (int64_t r = r0; r < r0 + nr; r++)
            nnc_elem_k.softmax_bwd_row(c->y + r * cols, c->dy + r * cols, c->dx + r * cols, cols);
        return;
    }
    if (w == cols) {
        int64_t o = r0 * cols;
        nnc_elem_k.act_bwd(c->act, c->alpha, c->x ? c->x + o : NULL, c->y + o, c->dy + o, c->dx + o,
                           nr * cols);
        return;
    }
    for (int64_t r = r0; r < r0 + nr; r++) {
        int64_t o = r * cols + j0;
        nnc_elem_k.act_bwd(c->act, c->alpha, c->x ? c->x + o : NULL, c->y + o, c->dy + o, c->dx + o,
                           w);
    }
}

typedef struct {
    const act_ctx *act; /* NULL: plain column sum of src */
    const float *src;
    int64_t rows, cols, ld;
    float *out;
    int accumulate;
    int64_t tile;       /* column-tile split */
    int64_t c0;         /* chunk split: first chunk of this group */
    float *part;        /* chunk split: partials [group chunks x cols] */
} cs_ctx;

/* Column-tile split: tiles [t0, t1) of width c->tile, all chunks in order. */
static void cs_tiles(void *p, int64_t t0, int64_t t1) {
    cs_ctx *c = p;
    float acc[TILE_MAX];
    for (int64_t t = t0; t < t1; t++) {
        int64_t j0 = t * c->tile, w = NNC_MIN(c->tile, c->cols - j0);
        for (int64_t r0 = 0; r0 < c->rows; r0 += NNC_REDUCE_CHUNK) {
            int64_t nr = NNC_MIN((int64_t)NNC_REDUCE_CHUNK, c->rows - r0);
            if (c->act) bwd_block(c->act, r0, nr, j0, w);
            memset(acc, 0, (size_t)w * sizeof(float));
            for (int64_t r = r0; r < r0 + nr; r++) add_row(acc, c->src + r * c->ld + j0, w);
            float *o = c->out + j0;
            if (r0 == 0 && !c->accumulate)
                memcpy(o, acc, (size_t)w * sizeof(float));
            else
                for (int64_t j = 0; j < w; j++) o[j] += acc[j];
        }
    }
}

/* Chunk split: chunks [k0, k1) of the current group write their partials. */
static void cs_chunks(void *p, int64_t k0, int64_t k1) {
    cs_ctx *c = p;
    for (int64_t k = k0; k < k1; k++) {
        int64_t r0 = (c->c0 + k) * NNC_REDUCE_CHUNK;
        int64_t nr = NNC_MIN((int64_t)NNC_REDUCE_CHUNK, c->rows - r0);
        if (c->act) bwd_block(c->act, r0, nr, 0, c->cols);
        float *acc = c->part + k * c->cols;
        memset(acc, 0, (size_t)c->cols * sizeof(float));
        for (int64_t r = r0; r < r0 + nr; r++) add_row(acc, c->src + r * c->ld, c->cols);
    }
}

/* Column sums of src (optionally computing the dx rows first, fused), in the fixed order. */
static void colsum_run(cs_ctx *c, int nthreads, double flops_per_elem) {
    int64_t rows = c->rows, cols = c->cols;
    int64_t nchunks = (rows + NNC_REDUCE_CHUNK - 1) / NNC_REDUCE_CHUNK;
    double flops = (double)rows * (double)cols * (1.0 + flops_per_elem);
    int softmax = c->act && c->act->act == NNC_ACT_SOFTMAX;
    int nt = nnc_elem_threads(nthreads, flops, NNC_MAX(nchunks, (cols + 15) / 16));
    if (!softmax && (cols >= 32 * (int64_t)nt || nchunks == 1 || cols > PART_FLOATS)) {
        /* tile width: cols/nt rounded up to 16, at most TILE_MAX */
        int64_t tile = (cols + nt - 1) / nt;
        tile = NNC_MIN((tile + 15) / 16 * 16, (int64_t)TILE_MAX);
        c->tile = tile;
        int64_t ntiles = (cols + tile - 1) / tile;
        nnc_parallel_ranges(ntiles, 1, nt, cs_tiles, c);
        return;
    }
    float part[PART_FLOATS];
    int64_t group = NNC_MAX((int64_t)1, PART_FLOATS / cols);
    c->part = part;
    for (int64_t g0 = 0; g0 < nchunks; g0 += group) {
        int64_t ng = NNC_MIN(group, nchunks - g0);
        c->c0 = g0;
        nnc_parallel_ranges(ng, 1, nt, cs_chunks, c);
        for (int64_t k = 0; k < ng; k++) {
            const float *pk = part + k * cols;
            if (g0 + k == 0 && !c->accumulate)
                memcpy(c->out, pk, (size_t)cols * sizeof(float));
            else
                for (int64_t j = 0; j < cols; j++) c->out[j] += pk[j];
        }
    }
    c->part = NULL;
}

int nnc_colsum(const float *x, int64_t rows, int64_t cols, int64_t ldx, float *out, int accumulate,
               int nthreads) {
    if (rows < 0 || cols < 0 || ldx < cols) return NNC_E_ARG;
    if (cols == 0) return NNC_OK;
    if (rows == 0) {
        if (!accumulate) memset(out, 0, (size_t)cols * sizeof(float));
        return NNC_OK;
    }
    cs_ctx c = {NULL, x, rows, cols, ldx, out, accumulate, 0, 0, NULL};
    colsum_run(&c, nthreads, 0.0);
    return NNC_OK;
}

/* ---- backward --------------------------------------------------------------------------- */

static void bwd_flat(void *p, int64_t i0, int64_t i1) {
    act_ctx *c = p;
    nnc_elem_k.act_bwd(c->act, c->alpha, c->x ? c->x + i0 : NULL, c->y + i0, c->dy + i0, c->dx + i0,
                       i1 - i0);
}

static void bwd_softmax(void *p, int64_t r0, int64_t r1) {
    act_ctx *c = p;
    for (int64_t r = r0; r < r1; r++)
        nnc_elem_k.softmax_bwd_row(c->y + r * c->cols, c->dy + r * c->cols, c->dx + r * c->cols,
                                   c->cols);
}

int nnc_act_backward(int act, float alpha, const float *x, const float *y, const float *dy,
                     float *dx, int64_t rows, int64_t cols, float *db, int nthreads) {
    if (act < 0 || act >= NNC_ACT_COUNT || rows < 0 || cols < 0) return NNC_E_ARG;
    if ((act == NNC_ACT_GELU || act == NNC_ACT_SWISH) && !x) return NNC_E_ARG;
    int64_t n = rows * cols;
    act_ctx c = {act, alpha, x, y, dy, NULL, dx, cols};
    if (db && cols > 0 && rows > 0) {
        if (act == NNC_ACT_SOFTMAX && cols > PART_FLOATS) {
            int nt = nnc_elem_threads(nthreads, 10.0 * (double)n, rows);
            nnc_parallel_ranges(rows, 1, nt, bwd_softmax, &c);
            return nnc_colsum(dx, rows, cols, cols, db, 0, nthreads);
        }
        cs_ctx s = {&c, dx, rows, cols, cols, db, 0, 0, 0, NULL};
        colsum_run(&s, nthreads, act_cost(act));
        return NNC_OK;
    }
    if (db && cols > 0) memset(db, 0, (size_t)cols * sizeof(float));
    if (n == 0) return NNC_OK;
    if (act == NNC_ACT_SOFTMAX) {
        int nt = nnc_elem_threads(nthreads, 10.0 * (double)n, rows);
        nnc_parallel_ranges(rows, 1, nt, bwd_softmax, &c);
    } else {
        if (act == NNC_ACT_LINEAR && dx == dy) return NNC_OK;
        int nt = nnc_elem_threads(nthreads, act_cost(act) * (double)n, (n + GRAIN - 1) / GRAIN);
        nnc_parallel_ranges(n, GRAIN, nt, bwd_flat, &c);
    }
    return NNC_OK;
}

/* ---- finiteness -------------------------------------------------------------------------- */

int nnc_all_finite(const float *x, int64_t n) {
    const uint32_t *u = (const uint32_t *)(const void *)x;
    int64_t i = 0;
    while (i < n) { /* blocks so that a bad value stops the scan early */
        int64_t e = NNC_MIN(n, i + 4096);
        uint32_t bad = 0;
        for (; i < e; i++) bad |= ((u[i] & 0x7f800000u) == 0x7f800000u);
        if (bad) return 0;
    }
    return 1;
}
