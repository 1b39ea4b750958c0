/* Losses with Keras 3 semantics, value and gradient in one pass per row.
 *
 * Layout: pred/target [rows x cols] row-major contiguous (sparse: int32 labels [rows]).
 * Threads split rows (any split: each row's loss and gradient are independent); w_i*loss_i is
 * kept per row, each chunk of NNC_REDUCE_CHUNK rows is summed in double in row order and the
 * chunk sums are folded in chunk order, so the total does not depend on the thread count.
 * Per-row loss terms are accumulated in double.
 *
 * Clipping (probability forms) follows Keras/TF: p is clipped to [1e-7, 1-1e-7]; the gradient
 * is passed where lo <= p <= hi and is zero where p was clipped, as tf.clip_by_value's gradient.
 * categorical (and sparse, which is categorical on one-hot labels, as Keras's numpy/jax backends
 * compute it) first renormalise p by its row sum S: q = p/S, loss = -sum t_j log(clip(q_j)),
 * d loss/d p_k = (G_k + T)/S with G_k = -t_k/q_k (0 where clipped), T = sum of t over the
 * unclipped entries. The from_logits forms are the exact, fused ones (log-softmax, and
 * max(z,0) - z*t + log1p(e^-|z|) for binary). */
#include <math.h>
#include <string.h>

#include "vmath.h"

#define EPS_LO 1e-7f
#define EPS_HI ((float)(1.0 - 1e-7))

typedef struct {
    int loss, from_logits;
    float param;
    float gamma, alpha; /* focal */
    int balance;
    const float *pred;
    const void *target;
    const float *w;
    int64_t rows, cols;
    float scale;
    float *grad;
    double *rl;   /* w_i * loss_i for the rows of the current group */
    int64_t c0;   /* first row of the current group */
} loss_ctx;

static inline float clipf(float p) { return p < EPS_LO ? EPS_LO : (p > EPS_HI ? EPS_HI : p); }

/* Loss of row i (unweighted); writes gs * d loss_i / d pred_i into g when g != NULL. */
static double row_loss(const loss_ctx *c, int64_t i, float gs, float *g) {
    const int64_t n = c->cols;
    const float *p = c->pred + i * n;
    const float inv_n = 1.0f / (float)n;
    double L = 0.0;
    int64_t j;
    switch (c->loss) {
    case NNC_LOSS_MSE: {
        const float *t = (const float *)c->target + i * n;
        float k = 2.0f * gs * inv_n;
        for (j = 0; j < n; j++) {
            float e = p[j] - t[j];
            L += (double)e * e;
            if (g) g[j] = k * e;
        }
        return L / n;
    }
    case NNC_LOSS_MAE: {
        const float *t = (const float *)c->target + i * n;
        float k = gs * inv_n;
        for (j = 0; j < n; j++) {
            float e = p[j] - t[j];
            L += fabs((double)e);
            if (g) g[j] = e > 0.0f ? k : (e < 0.0f ? -k : 0.0f);
        }
        return L / n;
    }
    case NNC_LOSS_HUBER: {
        const float *t = (const float *)c->target + i * n;
        float d = c->param, k = gs * inv_n;
        for (j = 0; j < n; j++) {
            float e = p[j] - t[j], a = fabsf(e);
            if (a <= d) {
                L += 0.5 * (double)e * e;
                if (g) g[j] = k * e;
            } else {
                L += (double)d * a - 0.5 * (double)d * d;
                if (g) g[j] = e > 0.0f ? k * d : -k * d;
            }
        }
        return L / n;
    }
    case NNC_LOSS_BINARY_CE: {
        const float *t = (const float *)c->target + i * n;
        float ls = c->param, k = gs * inv_n;
        for (j = 0; j < n; j++) {
            float tt = ls != 0.0f ? t[j] * (1.0f - ls) + 0.5f * ls : t[j];
            /* probabilities (the logits form goes through bce_logits_rows) */
            float pc = clipf(p[j]);
            L -= (double)tt * log((double)pc) + (1.0 - (double)tt) * log1p(-(double)pc);
            if (g) g[j] = (p[j] >= EPS_LO && p[j] <= EPS_HI)
                              ? k * (-tt / pc + (1.0f - tt) / (1.0f - pc)) : 0.0f;
        }
        return L / n;
    }
    case NNC_LOSS_BINARY_FOCAL_CE: {
        /* Keras: bce on clip(p) times (1 - p_t)^gamma with p_t from the unclipped p; from
         * logits the exact forms: bce = max(z,0) - z*t + log1p(e^-|z|), 1-p_t from sigmoid(+-z).
         * d/dp of (1-p_t)^gamma is gamma*(1-p_t)^(gamma-1)*(1-2t). Row math in double. */
        const float *t = (const float *)c->target + i * n;
        const double ls = c->param, gam = c->gamma, al = c->alpha;
        const double k = (double)gs * inv_n;
        for (j = 0; j < n; j++) {
            double tt = ls != 0.0 ? t[j] * (1.0 - ls) + 0.5 * ls : t[j];
            double wb = c->balance ? tt * al + (1.0 - tt) * (1.0 - al) : 1.0;
            double bce, q, dbce, dsig; /* dsig: dp/d(input) */
            if (c->from_logits) {
                double z = p[j], e = exp(-fabs(z));
                double sp = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e); /* sigmoid(z) */
                double sm = z >= 0 ? e / (1.0 + e) : 1.0 / (1.0 + e); /* sigmoid(-z) */
                bce = (z > 0 ? z : 0.0) - z * tt + log1p(e);
                q = tt * sm + (1.0 - tt) * sp;
                dbce = z >= 0 ? (1.0 - tt) - sm : sp - tt; /* d bce / dz */
                dsig = sp * sm;
            } else {
                double pr = p[j], pc = clipf(p[j]);
                bce = -(tt * log(pc) + (1.0 - tt) * log1p(-pc));
                q = tt * (1.0 - pr) + (1.0 - tt) * pr;
                if (q < 0.0) q = 0.0;
                dbce = (p[j] >= EPS_LO && p[j] <= EPS_HI) ? -tt / pc + (1.0 - tt) / (1.0 - pc) : 0.0;
                dsig = 1.0;
            }
            double f = pow(q, gam);
            L += wb * f * bce;
            if (g) {
                double df = q > 0.0 ? gam * pow(q, gam - 1.0) : (gam == 1.0 ? 1.0 : 0.0);
                g[j] = (float)(k * wb * (df * (1.0 - 2.0 * tt) * dsig * bce + f * dbce));
            }
        }
        return L / n;
    }
    case NNC_LOSS_CATEGORICAL_CE:
    case NNC_LOSS_SPARSE_CATEGORICAL_CE: {
        int sparse = c->loss == NNC_LOSS_SPARSE_CATEGORICAL_CE;
        const float *t = sparse ? NULL : (const float *)c->target + i * n;
        int32_t y = sparse ? ((const int32_t *)c->target)[i] : 0;
        float ls = sparse ? 0.0f : c->param, lsn = ls * inv_n;
#define TT(j) (sparse ? ((j) == y ? 1.0f : 0.0f) : (ls != 0.0f ? t[j] * (1.0f - ls) + lsn : t[j]))
        if (c->from_logits) {
            float m = nnc_elem_k.row_max(p, n);
            float s = nnc_elem_k.exp_shift_sum(p, m, g, n);
            double lse_m = log((double)s); /* lse - m */
            if (sparse) {
                L = ((double)m - p[y]) + lse_m;
                if (g) {
                    float r = gs / s;
                    for (j = 0; j < n; j++) g[j] *= r;
                    g[y] -= gs;
                }
                return L;
            }
            float st = 0.0f;
            for (j = 0; j < n; j++) {
                float tt = TT(j);
                st += tt;
                L += (double)tt * (((double)m - p[j]) + lse_m);
            }
            if (g) {
                float r = gs * st / s;
                for (j = 0; j < n; j++) g[j] = g[j] * r - gs * TT(j);
            }
            return L;
        }
        /* probabilities: renormalise, clip, log */
        double S = 0.0;
        for (j = 0; j < n; j++) S += p[j];
        /* q, T and G in double: G + T cancels when t_k ~ q_k */
        double Tu = 0.0, rS = 1.0 / S;
        for (j = 0; j < n; j++) {
            float tt = TT(j);
            if (tt == 0.0f) continue;
            double q = p[j] * rS;
            L -= (double)tt * log(q < EPS_LO ? EPS_LO : (q > EPS_HI ? EPS_HI : q));
            if (q >= EPS_LO && q <= EPS_HI) Tu += tt;
        }
        if (g) {
            for (j = 0; j < n; j++) {
                float tt = TT(j);
                double q = p[j] * rS;
                double G = (tt != 0.0f && q >= EPS_LO && q <= EPS_HI) ? -(double)tt / q : 0.0;
                g[j] = (float)((double)gs * (G + Tu) * rS);
            }
        }
#undef TT
        return L;
    }
    }
    return 0.0;
}

#define BCE_BLOCK 1024

/* Binary CE on logits for rows [r0, r1): the vector kernel fills per-element losses for blocks
 * of whole rows (or pieces of one long row); each row is summed in order, in double, and
 * w_i * loss_i is stored in rl[i - base]. */
static void bce_logits_rows(const loss_ctx *c, int64_t r0, int64_t r1, double *rl, int64_t base) {
    float lb[BCE_BLOCK];
    const int64_t n = c->cols;
    const float ls = c->param, c1 = 1.0f - ls, c0 = 0.5f * ls, inv_n = 1.0f / (float)n;
    const float *t = c->target;
    int64_t rpb = n <= BCE_BLOCK ? BCE_BLOCK / n : 1;
    for (int64_t r = r0; r < r1; r += rpb) {
        int64_t nr = NNC_MIN(rpb, r1 - r);
        if (n <= BCE_BLOCK) /* the block holds rows r..r+nr: one kernel call */
            nnc_elem_k.bce_logits(c->pred + r * n, t + r * n, c1, c0, lb,
                                  c->grad ? c->grad + r * n : NULL, nr * n);
        for (int64_t i = r; i < r + nr; i++) {
            float wi = c->w ? c->w[i] : 1.0f;
            float *g = c->grad ? c->grad + i * n : NULL;
            double acc = 0.0;
            if (n <= BCE_BLOCK) {
                const float *lp = lb + (i - r) * n;
                for (int64_t j = 0; j < n; j++) acc += lp[j];
            } else {
                for (int64_t j0 = 0; j0 < n; j0 += BCE_BLOCK) {
                    int64_t m = NNC_MIN((int64_t)BCE_BLOCK, n - j0);
                    nnc_elem_k.bce_logits(c->pred + i * n + j0, t + i * n + j0, c1, c0, lb,
                                          g ? g + j0 : NULL, m);
                    for (int64_t j = 0; j < m; j++) acc += lb[j];
                }
            }
            rl[i - base] = (double)wi * (acc / n);
            if (g) {
                float k = c->scale * wi * inv_n;
                for (int64_t j = 0; j < n; j++) g[j] *= k;
            }
        }
    }
}

/* Rows [i0, i1) of the current group (offsets from its first row): w_i * loss_i into rl. */
static void loss_rows(void *pv, int64_t i0, int64_t i1) {
    loss_ctx *c = pv;
    int64_t base = c->c0;
    if (c->loss == NNC_LOSS_BINARY_CE && c->from_logits) {
        bce_logits_rows(c, base + i0, base + i1, c->rl, base);
        return;
    }
    for (int64_t i = base + i0; i < base + i1; i++) {
        float wi = c->w ? c->w[i] : 1.0f;
        float *g = c->grad ? c->grad + i * c->cols : NULL;
        c->rl[i - base] = (double)wi * row_loss(c, i, c->scale * wi, g);
    }
}

#define GROUP_CHUNKS 16 /* rows per group: 16 chunks, 32 KB of per-row losses on the stack */

int nnc_loss(int loss, int from_logits, float param, const float *pred, const void *target,
             const float *w, int64_t rows, int64_t cols, float scale, double *loss_sum,
             float *grad, int nthreads) {
    const float params[NNC_LOSS_NPARAMS] = {param, NNC_FOCAL_GAMMA, NNC_FOCAL_ALPHA, 0.0f};
    return nnc_loss_ex(loss, from_logits, params, pred, target, w, rows, cols, scale, loss_sum,
                       grad, nthreads);
}

int nnc_loss_ex(int loss, int from_logits, const float *params, const float *pred,
                const void *target, const float *w, int64_t rows, int64_t cols, float scale,
                double *loss_sum, float *grad, int nthreads) {
    if (loss < 0 || loss >= NNC_LOSS_COUNT || rows < 0 || cols < 1 || !params) return NNC_E_ARG;
    if (from_logits && loss != NNC_LOSS_BINARY_CE && loss != NNC_LOSS_CATEGORICAL_CE &&
        loss != NNC_LOSS_SPARSE_CATEGORICAL_CE && loss != NNC_LOSS_BINARY_FOCAL_CE)
        from_logits = 0;
    enum { GROUP_ROWS = GROUP_CHUNKS * NNC_REDUCE_CHUNK };
    double rl[GROUP_ROWS];
    loss_ctx c = {loss, from_logits, params[0], params[1], params[2], params[3] != 0.0f,
                  pred, target, w, rows, cols, scale, grad, rl, 0};
    /* rows are independent (any split); the sum below has one fixed order */
    int64_t grain = NNC_MAX((int64_t)1, 256 / cols);
    int nt = nnc_elem_threads(nthreads, 20.0 * (double)rows * (double)cols, (rows + grain - 1) / grain);
    double total = 0.0;
    for (int64_t g0 = 0; g0 < rows; g0 += GROUP_ROWS) {
        int64_t ng = NNC_MIN((int64_t)GROUP_ROWS, rows - g0);
        c.c0 = g0;
        nnc_parallel_ranges(ng, grain, nt, loss_rows, &c);
        for (int64_t k0 = 0; k0 < ng; k0 += NNC_REDUCE_CHUNK) { /* chunk sums, in chunk order */
            int64_t k1 = NNC_MIN(k0 + NNC_REDUCE_CHUNK, ng);
            double sc = 0.0;
            for (int64_t i = k0; i < k1; i++) sc += rl[i];
            total += sc;
        }
    }
    if (loss_sum) *loss_sum += total;
    return NNC_OK;
}
