/* GEMM loop nest, partitioning and epilogue plumbing (portable C, no intrinsics; the
 * micro-kernels live in csrc/kernels/<isa>/). DESIGN.md section 2.
 *
 * Data movement: B is packed into NR-wide panels ([panel][k][NR], see pack.c) and A is streamed
 * unpacked through (rs_a, cs_a), so TN needs no copy. For NN with few row strips B is used in
 * place (rs_b = ldb), only its ragged last panel being packed: packing would cost more than it
 * saves when each panel is reused by few strips (the small-batch layer shapes).
 *
 * Loop nest: jc (NC panels, so a KC x NC block of packed B stays in the 1-2 MiB L2) -> pc (KC)
 * -> row strip (the MR x KC slice of A stays in L1) -> panel -> micro-kernel. The first KC block
 * applies beta (beta == 0 never reads C), later ones accumulate, the last applies bias and act.
 *
 * Threads split row strips (each thread owns its A rows and C strip, all share packed B) or
 * column panels (small M), never K: every C element sums its k terms in the same order
 * whatever the thread count, so 1 and 2 threads give bitwise equal results. With one thread
 * the pool is not entered (threads.c). */
#include "gemm_pack.h"

#include <stdatomic.h>
#include <string.h>

/* ---- dispatch ------------------------------------------------------------------------------ */

static const nnc_f32_gemm_config CFG_GENERIC = {NNC_ISA_GENERIC, 4, 16, 256, 1.0f,
                                                nnc_f32_gemm_ukernel_4x16__generic, NULL};
#if NNC_X86
static const nnc_f32_gemm_config CFG_AVX2 = {NNC_ISA_AVX2, 6, 16, 256, 0.6f,
                                             nnc_f32_gemm_ukernel_6x16__avx2,
                                             nnc_f32_gemm_packt__avx2};
/* KC = 256: a 8 x 256 A slice (8 KiB) and a 256 x 32 B panel (32 KiB) fit Zen5's 48 KiB L1d. */
static const nnc_f32_gemm_config CFG_AVX512 = {NNC_ISA_AVX512, 8, 32, 256, 0.3f,
                                               nnc_f32_gemm_ukernel_8x32__avx512,
                                               nnc_f32_gemm_packt__avx2};
#endif

#define NNC_GEMM_MAX_NR 32
/* Target size of one KC x NC block of packed B (half of a 1 MiB L2). */
#define NNC_GEMM_L2_BLOCK (512 * 1024)

static const nnc_f32_gemm_config *volatile g_cfg = &CFG_GENERIC;

const nnc_f32_gemm_config *nnc_f32_gemm_config_for(int isa) {
#if NNC_X86
    if (isa == NNC_ISA_AVX512) return &CFG_AVX512;
    if (isa == NNC_ISA_AVX2) return &CFG_AVX2;
#endif
    (void)isa;
    return &CFG_GENERIC;
}

void nnc_gemm_dispatch_init(int isa) { g_cfg = nnc_f32_gemm_config_for(isa); }

void nnc_gemm_blocking(int *mr, int *nr, int *kc) {
    const nnc_f32_gemm_config *cfg = g_cfg;
    *mr = cfg->mr;
    *nr = cfg->nr;
    *kc = cfg->kc;
}

/* ---- scratch for packing B in nnc_sgemm ---------------------------------------------------- */

/* One grow-only process buffer, taken with a try-lock; a caller that finds it busy (another
 * Python thread inside nncore) gets a private allocation for that call instead. */
static float *g_scratch = NULL;
static size_t g_scratch_cap = 0; /* floats */
static atomic_flag g_scratch_lock = ATOMIC_FLAG_INIT;

static float *scratch_take(size_t n, int *shared) {
    if (!atomic_flag_test_and_set_explicit(&g_scratch_lock, memory_order_acquire)) {
        if (g_scratch_cap < n) {
            size_t cap = (n + 16383) & ~(size_t)16383;
            nnc_free(g_scratch);
            g_scratch = (float *)nnc_malloc(cap * sizeof(float));
            g_scratch_cap = g_scratch ? cap : 0;
            if (!g_scratch) {
                atomic_flag_clear_explicit(&g_scratch_lock, memory_order_release);
                return NULL;
            }
        }
        *shared = 1;
        return g_scratch;
    }
    *shared = 0;
    return (float *)nnc_malloc(n * sizeof(float));
}

static void scratch_give(float *p, int shared) {
    if (shared) atomic_flag_clear_explicit(&g_scratch_lock, memory_order_release);
    else nnc_free(p);
}

/* ---- the loop nest ------------------------------------------------------------------------- */

typedef struct {
    const nnc_f32_gemm_config *cfg;
    int64_t M, N, K;
    const float *A;
    ptrdiff_t rs_a, cs_a;
    const float *B;         /* panel jp at B + jp * panel_stride, its row k at + k * rs_b */
    ptrdiff_t panel_stride, rs_b;
    const float *edge;      /* NULL, or the last panel packed [k][nr] (B used in place) */
    float *C;
    ptrdiff_t ldc;
    float alpha, beta;
    const float *bias;
    int act;
    float slope;
} gemm_job;

/* Row strips [s0, s1) x column panels [p0, p1). */
static void gemm_run(const gemm_job *g, int64_t s0, int64_t s1, int64_t p0, int64_t p1) {
    const nnc_f32_gemm_config *cfg = g->cfg;
    const int64_t mr = cfg->mr, nr = cfg->nr, KC = cfg->kc;
    const int64_t M = g->M, N = g->N, K = g->K;
    const int64_t last_panel = (N + nr - 1) / nr - 1;
    const int64_t nc = NNC_MAX(1, NNC_GEMM_L2_BLOCK / (KC * nr * (int64_t)sizeof(float)));
    const nnc_f32_gemm_ukernel_fn uk = cfg->ukernel;
    for (int64_t jc = p0; jc < p1; jc += nc) {
        const int64_t jend = NNC_MIN(p1, jc + nc);
        for (int64_t pc = 0; pc < K; pc += KC) {
            const int64_t kc = NNC_MIN(KC, K - pc);
            const int last = pc + kc == K;
            nnc_f32_gemm_params prm = {g->alpha, pc == 0 ? g->beta : 1.f, NULL,
                                       last ? g->act : NNC_ACT_LINEAR, g->slope};
            for (int64_t s = s0; s < s1; s++) {
                const int64_t i = s * mr;
                const size_t m = (size_t)NNC_MIN(mr, M - i);
                const float *a = g->A + i * g->rs_a + pc * g->cs_a;
                float *c = g->C + i * g->ldc;
                for (int64_t jp = jc; jp < jend; jp++) {
                    const int64_t j = jp * nr;
                    const float *b;
                    ptrdiff_t rs_b;
                    if (g->edge && jp == last_panel) {
                        b = g->edge + pc * nr;
                        rs_b = nr;
                    } else {
                        b = g->B + jp * g->panel_stride + pc * g->rs_b;
                        rs_b = g->rs_b;
                    }
                    prm.bias = (last && g->bias) ? g->bias + j : NULL;
                    uk(m, (size_t)NNC_MIN(nr, N - j), (size_t)kc, a, g->rs_a, g->cs_a, b, rs_b,
                       c + j, g->ldc, &prm);
                }
            }
        }
    }
}

static int act_ok(int act) {
    return act == NNC_ACT_LINEAR || act == NNC_ACT_RELU || act == NNC_ACT_LEAKY_RELU ||
           act == NNC_ACT_RELU6;
}

static float act1(float v, int act, float slope) {
    switch (act) {
    case NNC_ACT_RELU: return v < 0.f ? 0.f : v; /* NaN stays NaN */
    case NNC_ACT_LEAKY_RELU: return v > 0.f ? v : v * slope;
    case NNC_ACT_RELU6: return v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
    default: return v;
    }
}

/* K == 0 or alpha == 0: C = act(beta * C + bias), A and B not read (BLAS convention). */
static void scale_only(int64_t M, int64_t N, float beta, float *C, int64_t ldc,
                       const float *bias, int act, float slope) {
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        for (int64_t j = 0; j < N; j++) {
            float v = beta != 0.f ? beta * c[j] : 0.f;
            if (bias) v += bias[j];
            c[j] = act1(v, act, slope);
        }
    }
}

/* How to spread strips x panels over nt threads: 1 = split strips, 0 = split panels. */
static int split_rows(int64_t strips, int64_t panels, int nt) {
    return strips >= 4 * (int64_t)nt || strips >= panels;
}

/* One threaded GEMM: tasks are ranges of strips (by_rows) or of panels, and with pack == 1 a
 * first run of tasks packs ranges of B panels. C elements do not depend on the split. */
typedef struct {
    gemm_job *g;
    const float *B;
    int64_t ldb, strips, panels, ntasks;
    int transB, pack, by_rows;
    float *pk;
} gemm_par;

static void gemm_pack_task(void *ctx, int64_t i, int thread) {
    const gemm_par *p = (const gemm_par *)ctx;
    const int64_t q0 = i * p->panels / p->ntasks, q1 = (i + 1) * p->panels / p->ntasks;
    (void)thread;
    nnc_f32_pack_b_panels(p->g->K, p->g->N, p->B, p->ldb, p->transB, p->g->cfg, q0, q1,
                          p->pk + q0 * p->g->K * p->g->cfg->nr);
}

static void gemm_task(void *ctx, int64_t i, int thread) {
    const gemm_par *p = (const gemm_par *)ctx;
    if (p->by_rows) {
        gemm_run(p->g, i * p->strips / p->ntasks, (i + 1) * p->strips / p->ntasks, 0, p->panels);
        return;
    }
    const int64_t q0 = i * p->panels / p->ntasks, q1 = (i + 1) * p->panels / p->ntasks;
    if (p->pack == 1) gemm_pack_task(ctx, i, thread);
    gemm_run(p->g, 0, p->strips, q0, q1);
}

/* pack: 0 = B already in panels, 1 = pack all panels of op(B) into pk, 2 = pack only the
 * last panel into g->edge (B used in place). */
static void gemm_drive(gemm_job *g, int pack, const float *B, int64_t ldb, int transB, float *pk,
                       int nthreads) {
    const int64_t strips = (g->M + g->cfg->mr - 1) / g->cfg->mr;
    const int64_t panels = (g->N + g->cfg->nr - 1) / g->cfg->nr;
    const double flops = 2.0 * (double)g->M * (double)g->N * (double)g->K;
    int nt = nthreads > 0 ? nthreads
                          : nnc_threads_for(flops * g->cfg->par_scale, NNC_MAX(strips, panels));
    if (pack == 2)
        nnc_f32_pack_b_panels(g->K, g->N, B, ldb, transB, g->cfg, panels - 1, panels, pk);
    if (nt <= 1) {
        if (pack == 1) nnc_f32_pack_b_panels(g->K, g->N, B, ldb, transB, g->cfg, 0, panels, pk);
        gemm_run(g, 0, strips, 0, panels);
        return;
    }
    const int by_rows = split_rows(strips, panels, nt);
    const int64_t units = by_rows ? strips : panels;
    if (nt > units) nt = (int)units;
    /* a few tasks per thread, so that a thread the kernel runs late costs little */
    gemm_par p = {g, B, ldb, strips, panels, NNC_MIN(units, 2 * (int64_t)nt), transB, pack,
                  by_rows, pk};
    if (by_rows && pack == 1) {
        /* a small B is packed by the caller: a join costs more than its share of the packing */
        gemm_par pp = p;
        pp.ntasks = g->K * g->N >= (1 << 18) ? NNC_MIN(panels, (int64_t)nt) : 1;
        nnc_parallel_run(nt, pp.ntasks, gemm_pack_task, &pp);
    }
    nnc_parallel_run(nt, p.ntasks, gemm_task, &p);
}

/* ---- public entry points ------------------------------------------------------------------- */

/* Shared by both entry points: validates the epilogue, handles the cases that need no product
 * (returns 1 when C is already final) and fills the A, C and epilogue fields of the job. */
static int job_init(gemm_job *g, const nnc_f32_gemm_config *cfg, int transA, int64_t M, int64_t N,
                    int64_t K, float alpha, const float *A, int64_t lda, float beta, float *C,
                    int64_t ldc, const nnc_epilogue *ep, int *status) {
    const float *bias = ep ? ep->bias : NULL;
    const int act = ep ? ep->act : NNC_ACT_LINEAR;
    const float slope = ep ? ep->alpha : 0.f;
    *status = act_ok(act) ? NNC_OK : NNC_E_ARG;
    if (*status || M == 0 || N == 0) return 1;
    if (K == 0 || alpha == 0.f) {
        scale_only(M, N, beta, C, ldc, bias, act, slope);
        return 1;
    }
    g->cfg = cfg;
    g->M = M;
    g->N = N;
    g->K = K;
    g->A = A;
    g->rs_a = transA ? 1 : lda;
    g->cs_a = transA ? lda : 1;
    g->C = C;
    g->ldc = ldc;
    g->alpha = alpha;
    g->beta = beta;
    g->bias = bias;
    g->act = act;
    g->slope = slope;
    return 0;
}

int nnc_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
              int64_t ldc, const nnc_epilogue *ep, int nthreads) {
    if (M < 0 || N < 0 || K < 0) return NNC_E_ARG;
    gemm_job g;
    int st;
    if (job_init(&g, g_cfg, transA, M, N, K, alpha, A, lda, beta, C, ldc, ep, &st)) return st;
    const int64_t nr = g.cfg->nr;
    const int64_t strips = (M + g.cfg->mr - 1) / g.cfg->mr;
    const int64_t panels = (N + nr - 1) / nr;
    /* B in place (measured on Zen5, bench/): packing costs a pass over B that few strips do not
     * pay back, and small B stays cached anyway; wide B (ldb >= 1024 floats) maps its rows onto
     * few cache sets, so it is packed whatever M. */
    const int direct = !transB && ((ldb <= 512 && strips <= 64) || K * N <= 16384);
    int shared = 0;
    float *pk;
    if (direct) {
        const int ragged = N % nr != 0;
        pk = ragged ? scratch_take((size_t)(K * nr), &shared) : NULL;
        if (ragged && !pk) return NNC_E_NOMEM;
        g.B = B;
        g.panel_stride = nr;
        g.rs_b = ldb;
        g.edge = pk;
        gemm_drive(&g, ragged ? 2 : 0, B, ldb, 0, pk, nthreads); /* packs the edge into pk */
        if (pk) scratch_give(pk, shared);
        return NNC_OK;
    }
    pk = scratch_take((size_t)(panels * K * nr), &shared);
    if (!pk) return NNC_E_NOMEM;
    g.B = pk;
    g.panel_stride = K * nr;
    g.rs_b = nr;
    g.edge = NULL;
    gemm_drive(&g, 1, B, ldb, transB, pk, nthreads);
    scratch_give(pk, shared);
    return NNC_OK;
}

struct nnc_packed {
    int64_t K, N;
    const nnc_f32_gemm_config *cfg; /* kernel and NR the data was packed for (NULL: not yet) */
    float *data;                    /* [panel][k][nr], room for the widest NR of any ISA */
};

nnc_packed *nnc_packed_new(int64_t K, int64_t N) {
    if (K < 0 || N < 0) return NULL;
    nnc_packed *p = (nnc_packed *)nnc_malloc(sizeof(nnc_packed));
    if (!p) return NULL;
    p->K = K;
    p->N = N;
    p->cfg = NULL;
    const int64_t npad = (N + NNC_GEMM_MAX_NR - 1) / NNC_GEMM_MAX_NR * NNC_GEMM_MAX_NR;
    p->data = (float *)nnc_malloc((size_t)NNC_MAX(K * npad, 1) * sizeof(float));
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
    if (!p) return NNC_E_ARG;
    const nnc_f32_gemm_config *cfg = g_cfg;
    const int64_t panels = (p->N + cfg->nr - 1) / cfg->nr;
    if (p->K > 0) nnc_f32_pack_b_panels(p->K, p->N, B, ldb, transB, cfg, 0, panels, p->data);
    p->cfg = cfg;
    return NNC_OK;
}

int nnc_sgemm_packed(int transA, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                     int64_t lda, const nnc_packed *Bp, float beta, float *C, int64_t ldc,
                     const nnc_epilogue *ep, int nthreads) {
    if (!Bp || !Bp->cfg || M < 0 || N != Bp->N || K != Bp->K) return NNC_E_ARG;
    gemm_job g;
    int st;
    /* the kernel matching the packing, whatever the ISA in use now */
    if (job_init(&g, Bp->cfg, transA, M, N, K, alpha, A, lda, beta, C, ldc, ep, &st)) return st;
    g.B = Bp->data;
    g.panel_stride = K * g.cfg->nr;
    g.rs_b = g.cfg->nr;
    g.edge = NULL;
    gemm_drive(&g, 0, NULL, 0, 0, NULL, nthreads);
    return NNC_OK;
}

int nnc_sgemm_packed_groups(int64_t N, const nnc_gemm_group *groups, int ngroups,
                            const nnc_packed *Bp, const nnc_epilogue *ep) {
    if (!Bp || !Bp->cfg || N != Bp->N || ngroups < 0) return NNC_E_ARG;
    const int act = ep ? ep->act : NNC_ACT_LINEAR;
    if (!act_ok(act)) return NNC_E_ARG;
    for (int q = 0; q < ngroups; q++) {
        if (groups[q].M < 0 || groups[q].nseg < 1) return NNC_E_ARG;
        for (int s = 0; s < groups[q].nseg; s++) {
            const nnc_gemm_seg *sg = &groups[q].segs[s];
            if (sg->K < 1 || sg->k0 < 0 || sg->k0 + sg->K > Bp->K) return NNC_E_ARG;
        }
    }
    const nnc_f32_gemm_config *cfg = Bp->cfg;
    const int64_t mr = cfg->mr, nr = cfg->nr, KC = cfg->kc, pstride = Bp->K * nr;
    const float *bias = ep ? ep->bias : NULL;
    const float slope = ep ? ep->alpha : 0.f;
    for (int64_t j = 0; j < N; j += nr) {
        const float *panel = Bp->data + (j / nr) * pstride;
        const size_t n = (size_t)NNC_MIN(nr, N - j);
        for (int q = 0; q < ngroups; q++) {
            const nnc_gemm_group *gr = &groups[q];
            const int64_t rs_a = gr->rs_a, ldc = gr->ldc;
            for (int64_t i = 0; i < gr->M; i += mr) {
                const size_t m = (size_t)NNC_MIN(mr, gr->M - i);
                int first = 1;
                for (int s = 0; s < gr->nseg; s++) {
                    const nnc_gemm_seg *sg = &gr->segs[s];
                    for (int64_t pc = 0; pc < sg->K; pc += KC) {
                        const int64_t kc = NNC_MIN(KC, sg->K - pc);
                        const int last = s == gr->nseg - 1 && pc + kc == sg->K;
                        nnc_f32_gemm_params prm = {1.f, first ? 0.f : 1.f,
                                                   last && bias ? bias + j : NULL,
                                                   last ? act : NNC_ACT_LINEAR, slope};
                        cfg->ukernel(m, n, (size_t)kc, sg->a + i * rs_a + pc, rs_a, 1,
                                     panel + (sg->k0 + pc) * nr, nr, gr->C + i * ldc + j, ldc,
                                     &prm);
                        first = 0;
                    }
                }
            }
        }
    }
    return NNC_OK;
}

/* ---- double precision: plain loops (tests and float64 references) ------------------------- */

int nnc_dgemm(int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
              const double *A, int64_t lda, const double *B, int64_t ldb, double beta, double *C,
              int64_t ldc) {
    if (M < 0 || N < 0 || K < 0) return NNC_E_ARG;
    for (int64_t i = 0; i < M; i++) {
        double *c = C + i * ldc;
        for (int64_t j = 0; j < N; j++) c[j] = beta != 0.0 ? beta * c[j] : 0.0;
        if (alpha == 0.0) continue;
        if (!transB) {
            /* i-k-j order: the j loop is a contiguous axpy the compiler vectorises. */
            for (int64_t k = 0; k < K; k++) {
                const double a = alpha * (transA ? A[k * lda + i] : A[i * lda + k]);
                const double *b = B + k * ldb;
                for (int64_t j = 0; j < N; j++) c[j] += a * b[j];
            }
        } else {
            for (int64_t j = 0; j < N; j++) {
                const double *b = B + j * ldb;
                double s = 0.0;
                for (int64_t k = 0; k < K; k++) s += (transA ? A[k * lda + i] : A[i * lda + k]) * b[k];
                c[j] += alpha * s;
            }
        }
    }
    return NNC_OK;
}
