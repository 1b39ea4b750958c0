/* LSTM / GRU / SimpleRNN forward and backward through time (DESIGN.md section 5).
 *
 * Layout: time-major inside. x [B,T,I] is transposed once to xt [T,B,I] (reversed in time for
 * go_backwards), so that
 *   - the input projection of a run of steps is ONE GEMM: g [steps*B x GH] = xt W + b;
 *   - h is stored as hs [T+1, B, H] with h0 in slot 0, so "h_{t-1} for every step" is the
 *     contiguous matrix hs[0:T] and dU = Hprev^T dG is one GEMM per run of steps (K = steps*B);
 *   - the rows of one step are contiguous, so a batch chunk of a step is one plain sub-matrix.
 * Per step: one recurrent GEMM against U packed once per set_weights (accumulating into the
 * step's slice of g with beta = 1, or into a scratch for GRU reset_after where the recurrent
 * candidate part must stay separate), then one fused gate kernel (rnn_gates_tmpl.h; one-pass
 * AVX2/AVX-512 kernels for tanh/sigmoid) that writes the workspace (activated gates, c, ...).
 *
 * Time chunks (rnn_tchunk, ~256 KiB of gates, from B and G*H only): on one thread the input
 * projection is one GEMM per chunk, run just before the chunk's recurrence, and backward runs the
 * weight-gradient GEMMs (dW, dU: K = steps*B, beta = 1 after the first chunk), db and dX after
 * each chunk, so gate pre-activations and gradients are consumed while in L2 (the whole-sequence
 * versions of these GEMMs streamed megabytes through L3/DRAM and ran at a third of the speed at
 * T = 60) and dg holds one chunk.
 *
 * Threads: the batch is cut into chunks whose number depends ONLY on B (a power of two, at
 * least 12 rows each); each chunk's recurrence runs on one thread with single-threaded GEMMs.
 * Forward: one parallel loop over the chunks, each projecting its own rows step by step, so a
 * thread only reads what it wrote (no barrier at all). Backward: one parallel region, per time
 * chunk the chunks' steps, then the weight-gradient work as two column-split tasks of equal
 * flops. A GEMM row never depends on how M is split and a column never on how N is split, so
 * every result is bitwise the same for any thread count. When B gives one chunk, each step GEMM
 * is threaded instead (the GEMM splits N or M deterministically), and so are the merged GEMMs.
 * db: per-step row sums into partial sums per batch chunk, added in chunk order.
 *
 * Keras masking (nnc_rnn_set_mask): the kernels run on every row; afterwards a masked row gets
 * its previous h (and c) back, and in the backward a zero gate gradient, its dc carried and
 * dL/dh_{t-1} = dL/dh_t. A step whose rows are all masked skips its products.
 *
 * Buffers grow only (nnc_rnn_reserve); nothing is allocated per step. */
#include "common/internal.h"
#include "rnn/rnn_internal.h"

#include <string.h>

typedef struct {
    float *p;
    int64_t cap;
} rbuf;

static int rbuf_grow(rbuf *b, int64_t need) {
    if (need <= b->cap) return 0;
    float *q = (float *)nnc_malloc((size_t)need * sizeof(float));
    if (!q) return NNC_E_NOMEM;
    nnc_free(b->p);
    b->p = q;
    b->cap = need;
    return 0;
}

struct nnc_rnn {
    nnc_rnn_desc d;
    int64_t G, H, I, GH;
    const float *b;
    nnc_packed *Up, *UTp, *Up2, *UTp2; /* U and U^T (GRU reset_after=False: U_zr, U_zr^T, U_h, U_h^T) */
    nnc_packed *Wp, *WTp;              /* W (input projection) and W^T (dX), packed once per weight change */
    int packed;
    /* forward workspace */
    rbuf xt;  /* [T,B,I] masked, time-ordered input */
    rbuf g;   /* [T,B,GH] activated gates */
    rbuf hs;  /* [T+1,B,H] h, h0 first */
    rbuf cs;  /* [T+1,B,H] LSTM c, c0 first */
    rbuf aux; /* [T,B,H] LSTM tanh(c) | GRU reset_after: recurrent candidate | GRU: r*h_{t-1} */
    rbuf gh;  /* [B,GH] GRU reset_after recurrent projection scratch */
    rbuf hm;  /* [T,B,H] h_{t-1} * recurrent mask */
    /* backward workspace */
    rbuf dg, dgh, dh2, dc, drh, dxt;
    rbuf dbacc; /* db: 2*GH double accumulators, then per batch chunk 2*GH float partial sums */
    int64_t B, T;
    int have_fwd;
    int h0zero; /* no initial state: h_{-1} = 0, so the step-0 recurrent products vanish */
    int no_dh0; /* backward: dL/dh_{-1} not wanted, so step 0 skips its recurrent product */
    const float *imask, *rmask;
    /* Keras step mask (nnc_rnn_set_mask): the caller's [B,T]; sm its time-major copy in
     * processing order, then ov [T,B]: the step's output shows h_t (else 0) */
    const uint8_t *smask;
    int zero_out;
    rbuf smb;    /* sm and ov as bytes */
    rbuf dcm;    /* backward: LSTM dc of masked rows, kept across the gate kernel */
    uint8_t *sm, *ov;
};

int nnc_rnn_gates(int cell) { return cell == NNC_RNN_LSTM ? 4 : (cell == NNC_RNN_GRU ? 3 : 1); }

int64_t nnc_rnn_bias_size(const nnc_rnn_desc *d) {
    int64_t gh = (int64_t)nnc_rnn_gates(d->cell) * d->units;
    return (d->cell == NNC_RNN_GRU && d->reset_after) ? 2 * gh : gh;
}

int64_t nnc_rnn_param_count(const nnc_rnn_desc *d) {
    int64_t gh = (int64_t)nnc_rnn_gates(d->cell) * d->units;
    return (d->input_size + d->units) * gh + (d->use_bias ? nnc_rnn_bias_size(d) : 0);
}

static const nnc_rnn_kernels *rnn_kernels(void) {
    switch (nnc_isa()) {
#if NNC_X86
    case NNC_ISA_AVX512: return &nnc_rnn_kernels__avx512;
    case NNC_ISA_AVX2: return &nnc_rnn_kernels__avx2;
#endif
    default: return &nnc_rnn_kernels__generic;
    }
}

int nnc_rnn_activation(int act, float *x, int64_t n) {
    rnn_kernels()->act(act, x, n);
    return 0;
}

static int gru2(const nnc_rnn *r) { return r->d.cell == NNC_RNN_GRU && !r->d.reset_after; }

nnc_rnn *nnc_rnn_new(const nnc_rnn_desc *d) {
    if (d->units < 1 || d->input_size < 1) return NULL;
    nnc_rnn *r = (nnc_rnn *)nnc_malloc(sizeof(nnc_rnn));
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->d = *d;
    r->G = nnc_rnn_gates(d->cell);
    r->H = d->units;
    r->I = d->input_size;
    r->GH = r->G * r->H;
    int64_t H = r->H;
    if (gru2(r)) {
        r->Up = nnc_packed_new(H, 2 * H);
        r->UTp = nnc_packed_new(2 * H, H);
        r->Up2 = nnc_packed_new(H, H);
        r->UTp2 = nnc_packed_new(H, H);
        if (!r->Up2 || !r->UTp2) goto fail;
    } else {
        r->Up = nnc_packed_new(H, r->GH);
        r->UTp = nnc_packed_new(r->GH, H);
    }
    r->Wp = nnc_packed_new(r->I, r->GH);
    r->WTp = nnc_packed_new(r->GH, r->I);
    if (!r->Up || !r->UTp || !r->Wp || !r->WTp) goto fail;
    return r;
fail:
    nnc_rnn_free(r);
    return NULL;
}

void nnc_rnn_free(nnc_rnn *r) {
    if (!r) return;
    nnc_packed_free(r->Wp);
    nnc_packed_free(r->WTp);
    nnc_packed_free(r->Up);
    nnc_packed_free(r->UTp);
    nnc_packed_free(r->Up2);
    nnc_packed_free(r->UTp2);
    rbuf *bufs[] = {&r->xt, &r->g, &r->hs, &r->cs, &r->aux, &r->gh, &r->hm, &r->dg,
                    &r->dgh, &r->dh2, &r->dc, &r->drh, &r->dxt, &r->dbacc, &r->smb, &r->dcm};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) nnc_free(bufs[i]->p);
    nnc_free(r);
}

/* Steps per time chunk. Forward: the input projection is done one chunk at a time, just before
 * the recurrence reads it, so its rows are still in L2. Backward: the weight-gradient GEMMs, db
 * and dX run after each chunk of steps on that chunk's gate gradients, which therefore never
 * leave L2 and need a buffer of one chunk only. About 256 KiB of gates per chunk; depends only
 * on B and G*H (determinism). */
static int64_t g_tchunk_override; /* tests: force short chunks so small problems cross them */

int64_t nnc_rnn_set_time_chunk(int64_t steps) {
    int64_t old = g_tchunk_override;
    g_tchunk_override = steps > 0 ? steps : 0;
    return old;
}

static int64_t rnn_tchunk(int64_t B, int64_t GH) {
    if (g_tchunk_override > 0) return g_tchunk_override;
    int64_t tc = (int64_t)65536 / (B * GH);
    return tc < 2 ? 2 : tc;
}

/* Chunks of the batch: a power of two, >= 12 rows each, depends only on B (determinism). */
static int64_t rnn_chunks(int64_t B) {
    int64_t n = 1;
    while (n < 64 && n * 2 * 12 <= B) n *= 2;
    return n;
}

int nnc_rnn_reserve(nnc_rnn *r, int64_t B, int64_t T, int with_backward) {
    int64_t H = r->H, TB = T * B, st = 0;
    int lstm = r->d.cell == NNC_RNN_LSTM, gru = r->d.cell == NNC_RNN_GRU;
    st |= rbuf_grow(&r->xt, TB * r->I);
    st |= rbuf_grow(&r->g, TB * r->GH);
    st |= rbuf_grow(&r->hs, (TB + B) * H);
    if (lstm) st |= rbuf_grow(&r->cs, (TB + B) * H);
    if (lstm || gru) st |= rbuf_grow(&r->aux, TB * H);
    if (gru && r->d.reset_after) st |= rbuf_grow(&r->gh, B * r->GH);
    if (with_backward) {
        int64_t TCB = NNC_MIN(T, rnn_tchunk(B, r->GH)) * B;
        st |= rbuf_grow(&r->dg, TCB * r->GH);
        if (gru && r->d.reset_after) st |= rbuf_grow(&r->dgh, TCB * r->GH);
        st |= rbuf_grow(&r->dbacc, (4 + 2 * rnn_chunks(B)) * r->GH); /* see struct nnc_rnn */
        st |= rbuf_grow(&r->dh2, 2 * B * H);
        if (lstm) st |= rbuf_grow(&r->dc, B * H);
        if (lstm && r->smask) st |= rbuf_grow(&r->dcm, B * H);
        if (gru2(r)) st |= rbuf_grow(&r->drh, B * H);
        st |= rbuf_grow(&r->dxt, TB * r->I);
    }
    return st ? NNC_E_NOMEM : 0;
}

static int reserve_hm(nnc_rnn *r, int64_t B, int64_t T) { return rbuf_grow(&r->hm, T * B * r->H); }

int nnc_rnn_set_mask(nnc_rnn *r, const uint8_t *mask, int zero_output) {
    r->smask = mask;
    r->zero_out = zero_output != 0;
    return 0;
}

/* sm and ov from the caller's mask (time-major, processing order). ov: with zero_out the step
 * mask itself; else (Keras's default, the previous output at a masked step) whether any real
 * step has come yet: before one the output is 0, after one it is h, which a masked step carries. */
static int masks_prepare(nnc_rnn *r, int64_t B, int64_t T) {
    if (!r->smask) {
        r->sm = r->ov = NULL;
        return 0;
    }
    if (rbuf_grow(&r->smb, (2 * T * B + 3) / 4)) return NNC_E_NOMEM;
    r->sm = (uint8_t *)r->smb.p;
    r->ov = r->sm + T * B;
    for (int64_t b = 0; b < B; b++) {
        uint8_t seen = 0;
        for (int64_t t = 0; t < T; t++) {
            uint8_t m = r->smask[b * T + (r->d.go_backwards ? T - 1 - t : t)] != 0;
            seen |= m;
            r->sm[t * B + b] = m;
            r->ov[t * B + b] = r->zero_out ? m : seen;
        }
    }
    return 0;
}

int nnc_rnn_set_weights(nnc_rnn *r, const float *W, const float *U, const float *b) {
    int64_t H = r->H, GH = r->GH;
    r->b = r->d.use_bias ? b : NULL;
    int st = nnc_pack_b(r->Wp, W, GH, 0);
    st |= nnc_pack_b(r->WTp, W, GH, 1);
    if (gru2(r)) {
        st |= nnc_pack_b(r->Up, U, GH, 0);             /* U[:, :2H] */
        st |= nnc_pack_b(r->UTp, U, GH, 1);            /* U[:, :2H]^T */
        st |= nnc_pack_b(r->Up2, U + 2 * H, GH, 0);    /* U[:, 2H:] */
        st |= nnc_pack_b(r->UTp2, U + 2 * H, GH, 1);   /* U[:, 2H:]^T */
    } else {
        st |= nnc_pack_b(r->Up, U, GH, 0);
        st |= nnc_pack_b(r->UTp, U, GH, 1);
    }
    r->packed = st == 0;
    return st;
}

#define RNN_ERR(st, rc)                                                                           \
    do {                                                                                          \
        int rc_ = (rc);                                                                           \
        if (rc_) {                                                                                \
            __atomic_store_n(&(st), rc_, __ATOMIC_RELAXED);                                      \
        }                                                                                         \
    } while (0)

/* ---------------------------------------------------------------- forward */

static int none_real(const uint8_t *m, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (m[i]) return 0;
    return 1;
}

/* One step t for rows [r0, r0 + nr). */
static int fwd_step(nnc_rnn *r, const nnc_rnn_kernels *k, int64_t t, int64_t r0, int64_t nr,
                    int nth) {
    const int64_t B = r->B, H = r->H, GH = r->GH;
    const int act = r->d.act, ract = r->d.rec_act;
    const int64_t row = t * B + r0; /* row index into [T,B,.] buffers */
    float *g_t = r->g.p + row * GH;
    float *hp = r->hs.p + row * H; /* hs slot t = h_{t-1} */
    float *hn = r->hs.p + (row + B) * H;
    int st = 0;
    /* h_{-1} = 0: g_t already holds x W + b, which is all LSTM, SimpleRNN and the first GRU
     * (reset_after=False) product need; the GRU candidate's r * h_{-1} is 0 as well, and GRU
     * reset_after's recurrent projection is its bias. */
    /* ... and when every row of the step is masked, the kernel's results are replaced by the
     * carried state below, so the recurrent products are skipped too (padding is cheap) */
    const int zero = (t == 0 && r->h0zero) || (r->sm && none_real(r->sm + row, nr));
    if (r->rmask) {
        float *m = r->hm.p + row * H;
        const float *rm = r->rmask + r0 * H;
        for (int64_t i = 0; i < nr * H; i++) m[i] = hp[i] * rm[i];
        hp = m;
    }
    switch (r->d.cell) {
    case NNC_RNN_LSTM:
        if (!zero)
            st = nnc_sgemm_packed(0, nr, GH, H, 1.0f, hp, H, r->Up, 1.0f, g_t, GH, NULL, nth);
        k->lstm_fwd(nr, H, act, ract, g_t, r->cs.p + row * H, r->cs.p + (row + B) * H,
                    r->aux.p + row * H, hn);
        break;
    case NNC_RNN_SIMPLE:
        if (!zero) st = nnc_sgemm_packed(0, nr, H, H, 1.0f, hp, H, r->Up, 1.0f, g_t, H, NULL, nth);
        k->simple_fwd(nr, H, act, g_t, hn);
        break;
    default:
        if (r->d.reset_after) {
            float *gh = r->gh.p + r0 * GH;
            nnc_epilogue ep = {r->b ? r->b + GH : NULL, NNC_ACT_LINEAR, 0.f};
            /* with h_{-1} = 0, alpha = 0: the GEMM only writes the bias (h_{-1} U + b_h = b_h) */
            st = nnc_sgemm_packed(0, nr, GH, H, zero ? 0.0f : 1.0f, hp, H, r->Up, 0.0f, gh, GH,
                                  &ep, nth);
            k->gru_fwd(nr, H, act, ract, g_t, gh, hp, r->aux.p + row * H, hn);
        } else {
            float *rh = r->aux.p + row * H;
            if (!zero)
                st = nnc_sgemm_packed(0, nr, 2 * H, H, 1.0f, hp, H, r->Up, 1.0f, g_t, GH, NULL,
                                      nth);
            k->gru2_fwd1(nr, H, ract, g_t, hp, rh);
            if (!zero)
                st |= nnc_sgemm_packed(0, nr, H, H, 1.0f, rh, H, r->Up2, 1.0f, g_t + 2 * H, GH,
                                       NULL, nth);
            k->gru2_fwd2(nr, H, act, g_t, hp, hn);
        }
    }
    if (r->sm) { /* masked rows keep their state: h_t = h_{t-1}, c_t = c_{t-1} */
        const uint8_t *m = r->sm + row;
        for (int64_t i = 0; i < nr; i++)
            if (!m[i]) {
                memcpy(hn + i * H, r->hs.p + (row + i) * H, (size_t)H * sizeof(float));
                if (r->d.cell == NNC_RNN_LSTM)
                    memcpy(r->cs.p + (row + B + i) * H, r->cs.p + (row + i) * H,
                           (size_t)H * sizeof(float));
            }
    }
    return st;
}

/* Threaded passes of the forward (and the dX transpose of the backward): batch rows, or batch
 * chunks that each run the whole sequence. */
typedef struct {
    nnc_rnn *r;
    const nnc_rnn_kernels *k;
    const float *x;
    float *y, *dx;
    const nnc_epilogue *ep;
    int64_t nch;
    int back, st;
} rnn_par;

/* Batch-major x [B, T, I] <-> time-major [T, B, I] (time reversed for go_backwards), through
 * the input mask: the forward's x into r->xt, the backward's r->dxt into dx. */
static void transpose_rows(const rnn_par *j, int to_time, int64_t b0, int64_t b1) {
    const nnc_rnn *r = j->r;
    const int64_t B = r->B, T = r->T, I = r->I;
    for (int64_t b = b0; b < b1; b++)
        for (int64_t t = 0; t < T; t++) {
            const int64_t s = j->back ? T - 1 - t : t;
            const int64_t bm = (b * T + s) * I, tm = (t * B + b) * I;
            const float *src = to_time ? j->x + bm : r->dxt.p + tm;
            float *dst = to_time ? r->xt.p + tm : j->dx + bm;
            if (r->imask) {
                const float *m = r->imask + b * I;
                for (int64_t i = 0; i < I; i++) dst[i] = src[i] * m[i];
            } else {
                memcpy(dst, src, (size_t)I * sizeof(float));
            }
        }
}

static void fwd_transpose(void *p, int64_t b0, int64_t b1) { transpose_rows(p, 1, b0, b1); }
static void bwd_transpose(void *p, int64_t b0, int64_t b1) { transpose_rows(p, 0, b0, b1); }

static void fwd_chunk(void *p, int64_t c, int thread) {
    rnn_par *j = (rnn_par *)p;
    nnc_rnn *r = j->r;
    const int64_t B = r->B, I = r->I, GH = r->GH;
    const int64_t r0 = c * B / j->nch, r1 = (c + 1) * B / j->nch;
    (void)thread;
    for (int64_t t = 0; t < r->T; t++) {
        RNN_ERR(j->st, nnc_sgemm_packed(0, r1 - r0, GH, I, 1.0f, r->xt.p + (t * B + r0) * I, I,
                                        r->Wp, 0.0f, r->g.p + (t * B + r0) * GH, GH, j->ep, 1));
        RNN_ERR(j->st, fwd_step(r, j->k, t, r0, r1 - r0, 1));
    }
}

static void fwd_outputs(void *p, int64_t b0, int64_t b1) {
    const rnn_par *j = (const rnn_par *)p;
    const nnc_rnn *r = j->r;
    const int64_t B = r->B, T = r->T, H = r->H;
    for (int64_t b = b0; b < b1; b++)
        for (int64_t t = 0; t < T; t++) {
            float *yo = j->y + (b * T + t) * H;
            if (r->ov && !r->ov[t * B + b]) memset(yo, 0, (size_t)H * sizeof(float));
            else memcpy(yo, r->hs.p + ((t + 1) * B + b) * H, (size_t)H * sizeof(float));
        }
}

int nnc_rnn_forward(nnc_rnn *r, const float *x, int64_t B, int64_t T, const float *h0,
                    const float *c0, const float *imask, const float *rmask, float *y, float *hT,
                    float *cT) {
    if (!r->packed || B < 1 || T < 1) return NNC_E_ARG;
    int st = nnc_rnn_reserve(r, B, T, 0);
    if (!st && rmask) st = reserve_hm(r, B, T);
    if (st) return st;
    const int64_t H = r->H, I = r->I, GH = r->GH, TB = T * B;
    const int back = r->d.go_backwards;
    r->B = B;
    r->T = T;
    r->imask = imask;
    r->rmask = rmask;
    r->have_fwd = 0;
    r->h0zero = h0 == NULL;
    if (masks_prepare(r, B, T)) return NNC_E_NOMEM;
    const nnc_rnn_kernels *k = rnn_kernels();

    /* Transpose to time-major (reversed for go_backwards), applying the input mask; threads
     * take batch rows, as the recurrence does below (the rows stay in that core's caches). */
    float *xt = r->xt.p;
    rnn_par j = {r, k, x, NULL, NULL, NULL, 0, back, 0};
    nnc_parallel_ranges(B, 1, nnc_threads_for((double)TB * I * 4, B), fwd_transpose, &j);
    if (h0) memcpy(r->hs.p, h0, (size_t)(B * H) * sizeof(float));
    else memset(r->hs.p, 0, (size_t)(B * H) * sizeof(float));
    if (r->d.cell == NNC_RNN_LSTM) {
        if (c0) memcpy(r->cs.p, c0, (size_t)(B * H) * sizeof(float));
        else memset(r->cs.p, 0, (size_t)(B * H) * sizeof(float));
    }

    /* Per time chunk: the input projection of its steps (one GEMM, bias in the epilogue), then
     * the recurrence over them. */
    const int64_t nch = rnn_chunks(B), tc = rnn_tchunk(B, GH);
    const double flops = 2.0 * (double)TB * H * GH;
    nnc_epilogue ep = {r->b, NNC_ACT_LINEAR, 0.f};
    const int nt = nch > 1 ? nnc_threads_for(flops, nch) : 1;
    if (nt > 1) {
        /* Each batch chunk on one thread for the whole sequence, its input projection step by
         * step just before the step: everything a chunk reads was written by its own thread
         * (data handed between cores is what threads pay most for), and no barrier per step.
         * GEMM rows never depend on how M is split, so the one-thread loop below, which projects
         * a time chunk of the whole batch at once, gives the same bits. */
        j.nch = nch;
        j.ep = r->b ? &ep : NULL;
        nnc_parallel_run(nt, nch, fwd_chunk, &j);
        st = j.st;
    } else {
        for (int64_t t0 = 0; t0 < T && !st; t0 += tc) {
            const int64_t t1 = NNC_MIN(T, t0 + tc);
            st = nnc_sgemm_packed(0, (t1 - t0) * B, GH, I, 1.0f, xt + t0 * B * I, I, r->Wp, 0.0f,
                                  r->g.p + t0 * B * GH, GH, r->b ? &ep : NULL, 0);
            for (int64_t t = t0; t < t1 && !st; t++) st = fwd_step(r, k, t, 0, B, 0);
        }
    }
    if (st) return st;

    /* Outputs. */
    const float *hlast = r->hs.p + TB * H;
    if (r->d.return_sequences) {
        j.y = y;
        nnc_parallel_ranges(B, 1, nnc_threads_for((double)TB * H * 4, B), fwd_outputs, &j);
    } else if (y) {
        memcpy(y, hlast, (size_t)(B * H) * sizeof(float));
        if (r->ov)
            for (int64_t b = 0; b < B; b++)
                if (!r->ov[(T - 1) * B + b]) memset(y + b * H, 0, (size_t)H * sizeof(float));
    }
    if (hT) memcpy(hT, hlast, (size_t)(B * H) * sizeof(float));
    if (cT && r->d.cell == NNC_RNN_LSTM)
        memcpy(cT, r->cs.p + TB * H, (size_t)(B * H) * sizeof(float));
    r->have_fwd = 1;
    return 0;
}

/* ---------------------------------------------------------------- backward */

/* db: each step's gate gradients are summed over their rows (the kernels' rowsum) while in L1,
 * into partial sums per batch chunk, added into the double accumulators in chunk order once per
 * time chunk (db_flush); the chunks depend only on B, so db is the same for any thread count. */
static float *db_part(nnc_rnn *r, int64_t chunk) {
    return (float *)((double *)r->dbacc.p + 2 * r->GH) + chunk * 2 * r->GH;
}

/* Rows [r0, r0 + nr) of a step's gate gradients (x) into the partial sums of the batch chunks
 * they belong to (off: 0 for dg, GH for GRU reset_after's dgh). */
static void db_rows(nnc_rnn *r, const nnc_rnn_kernels *k, const float *x, int64_t r0, int64_t nr,
                    int64_t off) {
    const int64_t B = r->B, GH = r->GH, nch = rnn_chunks(B);
    for (int64_t c = 0; c < nch; c++) {
        const int64_t lo = NNC_MAX(r0, c * B / nch), hi = NNC_MIN(r0 + nr, (c + 1) * B / nch);
        if (hi > lo) k->rowsum(hi - lo, GH, x + (lo - r0) * GH, db_part(r, c) + off);
    }
}

static void db_flush(nnc_rnn *r, double *acc, int64_t nch, int64_t nb) {
    for (int64_t c = 0; c < nch; c++) {
        float *part = db_part(r, c);
        for (int64_t j = 0; j < nb; j++) {
            acc[j] += (double)part[j];
            part[j] = 0.f;
        }
    }
}

/* One backward step t for rows [r0, r0 + nr): consumes dh (gradient w.r.t. h_t, without dy),
 * writes dg[t] and the gradient w.r.t. h_{t-1} into dhn. */
static int bwd_step(nnc_rnn *r, const nnc_rnn_kernels *k, int64_t t, int64_t r0, int64_t nr,
                    const float *dyseq, int64_t dg_row0, int want_db, int nth) {
    const int64_t B = r->B, T = r->T, H = r->H, GH = r->GH;
    const int act = r->d.act, ract = r->d.rec_act;
    const int64_t row = t * B + r0;
    const float *g_t = r->g.p + row * GH;
    float *dg_t = r->dg.p + (row - dg_row0) * GH;
    const float *hp = (r->rmask ? r->hm.p : r->hs.p) + row * H;
    float *dh = r->dh2.p + ((t & 1) * B + r0) * H;        /* in: dL/dh_t */
    float *dhn = r->dh2.p + (((t + 1) & 1) * B + r0) * H; /* out: dL/dh_{t-1} */
    const float *dy = dyseq ? dyseq + (r0 * T + t) * H : NULL;
    const int64_t ldy = T * H;
    const int last = t == 0 && r->no_dh0; /* dhn is not needed: skip its product */
    const uint8_t *m = r->sm ? r->sm + row : NULL;
    int st = 0;
    if (m && r->d.cell == NNC_RNN_LSTM) /* the gate kernel overwrites dc; masked rows carry it */
        for (int64_t i = 0; i < nr; i++)
            if (!m[i]) memcpy(r->dcm.p + (r0 + i) * H, r->dc.p + (r0 + i) * H, (size_t)H * sizeof(float));
    /* every row masked: nothing to compute, the fix-ups below write all of it */
    switch (m && none_real(m, nr) ? -1 : r->d.cell) {
    case -1:
        break;
    case NNC_RNN_LSTM:
        k->lstm_bwd(nr, H, act, ract, g_t, r->cs.p + row * H, r->aux.p + row * H, dh, dy, ldy,
                    r->dc.p + r0 * H, dg_t);
        if (!last)
            st = nnc_sgemm_packed(0, nr, H, GH, 1.0f, dg_t, GH, r->UTp, 0.0f, dhn, H, NULL, nth);
        break;
    case NNC_RNN_SIMPLE:
        k->simple_bwd(nr, H, act, r->hs.p + (row + B) * H, dh, dy, ldy, dg_t);
        if (!last)
            st = nnc_sgemm_packed(0, nr, H, H, 1.0f, dg_t, H, r->UTp, 0.0f, dhn, H, NULL, nth);
        break;
    default:
        if (r->d.reset_after) {
            float *dgh_t = r->dgh.p + (row - dg_row0) * GH;
            k->gru_bwd(nr, H, act, ract, g_t, r->aux.p + row * H, hp, dh, dy, ldy, dg_t, dgh_t,
                       dhn);
            if (!last)
                st = nnc_sgemm_packed(0, nr, H, GH, 1.0f, dgh_t, GH, r->UTp, 1.0f, dhn, H, NULL,
                                      nth);
        } else {
            float *drh = r->drh.p + r0 * H;
            k->gru2_bwd1(nr, H, act, ract, g_t, hp, dh, dy, ldy, dg_t, dhn);
            st = nnc_sgemm_packed(0, nr, H, H, 1.0f, dg_t + 2 * H, GH, r->UTp2, 0.0f, drh, H,
                                  NULL, nth);
            k->gru2_bwd2(nr, H, ract, g_t, hp, drh, dg_t, dhn);
            if (!last)
                st |= nnc_sgemm_packed(0, nr, H, 2 * H, 1.0f, dg_t, GH, r->UTp, 1.0f, dhn, H,
                                       NULL, nth);
        }
    }
    const int ra = r->d.cell == NNC_RNN_GRU && r->d.reset_after;
    if (m) /* a masked step did nothing: no gate gradient, dc passes through (dh below) */
        for (int64_t i = 0; i < nr; i++) {
            if (m[i]) continue;
            memset(dg_t + i * GH, 0, (size_t)GH * sizeof(float));
            if (ra) memset(r->dgh.p + (row - dg_row0 + i) * GH, 0, (size_t)GH * sizeof(float));
            if (r->d.cell == NNC_RNN_LSTM)
                memcpy(r->dc.p + (r0 + i) * H, r->dcm.p + (r0 + i) * H, (size_t)H * sizeof(float));
        }
    if (want_db) {
        db_rows(r, k, dg_t, r0, nr, 0);
        if (ra) db_rows(r, k, r->dgh.p + (row - dg_row0) * GH, r0, nr, GH);
    }
    if (r->rmask && !last) { /* the cell saw h_{t-1} * mask */
        const float *rm = r->rmask + r0 * H;
        for (int64_t i = 0; i < nr * H; i++) dhn[i] *= rm[i];
    }
    if (m && !last) /* masked rows: h_t was h_{t-1}, so dL/dh_{t-1} is all of dL/dh_t */
        for (int64_t i = 0; i < nr; i++) {
            if (m[i]) continue;
            const float *dyi = (dy && r->ov[row + i]) ? dy + i * ldy : NULL;
            for (int64_t j = 0; j < H; j++) dhn[i * H + j] = dh[i * H + j] + (dyi ? dyi[j] : 0.f);
        }
    return st;
}

/* The weight-gradient work of time chunk [t0, t1) (its gate gradients in dg / dgh); task -1 all
 * of it. Two tasks of about equal flops: task 0 the first columns of dU (and of dW when dU is
 * under half), task 1 the rest, db and dX (GRU reset_after=False: both dU GEMMs in task 0). The
 * split depends only on the shapes, and a GEMM's columns do not depend on how N is split.
 * Threads: nth as for nnc_sgemm. */
static int chunk_grads(nnc_rnn *r, int task, int64_t t0, int64_t t1, float *dW, float *dU,
                       double *dbacc, int with_dx, int nth) {
    const int64_t B = r->B, H = r->H, I = r->I, GH = r->GH, n = (t1 - t0) * B;
    const int ra = r->d.cell == NNC_RNN_GRU && r->d.reset_after;
    const float beta = t1 == r->T ? 0.0f : 1.0f;
    const float *dg = r->dg.p, *xc = r->xt.p + t0 * B * I;
    const float *hc = (r->rmask ? r->hm.p : r->hs.p) + t0 * B * H;
    /* dU's rows of step 0 multiply h_{-1} (and r * h_{-1}) = 0 when there is no initial state */
    const int64_t z = (t0 == 0 && r->h0zero) ? B : 0;
    int st = 0;
    /* Split point, in units of (rows x columns) of the three products: half of the work in
     * task 0, which takes dU's columns first and then dW's (multiples of 32 columns). */
    const int64_t wu = (dU && !gru2(r)) ? H : 0, ww = dW ? I : 0, du = dU ? H * GH : 0;
    const int64_t half = (du + ww * GH + (with_dx ? I * GH : 0)) / 2;
    int64_t ns = GH, nw = 0; /* GRU reset_after=False: task 0 has all of dU, then dW's columns */
    if (task >= 0 && wu && wu * GH >= half) {
        ns = NNC_MIN(GH, (half / wu + 16) / 32 * 32);
    } else if (task >= 0 && ww) {
        nw = NNC_MAX(0, NNC_MIN(GH, ((half - du) / ww + 16) / 32 * 32));
    }
    if (wu) {
        const float *dgu = ra ? r->dgh.p : dg;
        int64_t j0 = task == 1 ? ns : 0, j1 = task == 0 ? ns : GH;
        if (j1 > j0)
            st |= nnc_sgemm(1, 0, H, j1 - j0, n - z, 1.0f, hc + z * H, H, dgu + z * GH + j0, GH,
                            beta, dU + j0, GH, NULL, nth);
    }
    if (task <= 0 && dU && gru2(r)) {
        st |= nnc_sgemm(1, 0, H, 2 * H, n - z, 1.0f, hc + z * H, H, dg + z * GH, GH, beta, dU, GH,
                        NULL, nth);
        st |= nnc_sgemm(1, 0, H, H, n - z, 1.0f, r->aux.p + (t0 * B + z) * H, H,
                        dg + z * GH + 2 * H, GH, beta, dU + 2 * H, GH, NULL, nth);
    }
    if (ww) {
        int64_t j0 = task == 1 ? nw : 0, j1 = task == 0 ? nw : GH;
        if (j1 > j0)
            st |= nnc_sgemm(1, 0, I, j1 - j0, n, 1.0f, xc, I, dg + j0, GH, beta, dW + j0, GH, NULL,
                            nth);
    }
    if (task != 0) {
        if (dbacc) db_flush(r, dbacc, rnn_chunks(B), ra ? 2 * GH : GH);
        if (with_dx)
            st |= nnc_sgemm_packed(0, n, I, GH, 1.0f, dg, GH, r->WTp, 0.0f, r->dxt.p + t0 * B * I,
                                   I, NULL, nth);
    }
    return st;
}

/* Threaded passes of the backward: per time chunk the batch chunks' recurrences, then the two
 * weight-gradient tasks; dX back to batch-major. */
typedef struct {
    nnc_rnn *r;
    const nnc_rnn_kernels *k;
    const float *dyseq;
    float *dW, *dU;
    double *dba;
    int64_t nch, t0, t1;
    int with_db, with_dx, st;
} rnn_bwd_par;

static void bwd_chunk(void *p, int64_t c, int thread) {
    rnn_bwd_par *j = (rnn_bwd_par *)p;
    const int64_t B = j->r->B, r0 = c * B / j->nch, r1 = (c + 1) * B / j->nch;
    (void)thread;
    for (int64_t t = j->t1 - 1; t >= j->t0; t--)
        RNN_ERR(j->st, bwd_step(j->r, j->k, t, r0, r1 - r0, j->dyseq, j->t0 * B, j->with_db, 1));
}

static void bwd_grads(void *p, int64_t task, int thread) {
    rnn_bwd_par *j = (rnn_bwd_par *)p;
    (void)thread;
    RNN_ERR(j->st, chunk_grads(j->r, (int)task, j->t0, j->t1, j->dW, j->dU, j->dba, j->with_dx, 1));
}


int nnc_rnn_backward(nnc_rnn *r, const float *dy, const float *dhT, const float *dcT, float *dx,
                     float *dW, float *dU, float *db, float *dh0, float *dc0) {
    if (!r->have_fwd) return NNC_E_ARG;
    const int64_t B = r->B, T = r->T, H = r->H, I = r->I, GH = r->GH, TB = T * B;
    int st = nnc_rnn_reserve(r, B, T, 1);
    if (st) return st;
    const nnc_rnn_kernels *k = rnn_kernels();
    const int lstm = r->d.cell == NNC_RNN_LSTM;

    /* dL/dh_{T-1}: dhT plus dy when only the last output is returned. */
    float *dh = r->dh2.p + ((T - 1) & 1) * B * H;
    if (dhT) memcpy(dh, dhT, (size_t)(B * H) * sizeof(float));
    else memset(dh, 0, (size_t)(B * H) * sizeof(float));
    if (dy && !r->d.return_sequences)
        for (int64_t b = 0; b < B; b++)
            if (!r->ov || r->ov[(T - 1) * B + b]) /* else the output was 0, not h */
                for (int64_t j = 0; j < H; j++) dh[b * H + j] += dy[b * H + j];
    if (lstm) {
        if (dcT) memcpy(r->dc.p, dcT, (size_t)(B * H) * sizeof(float));
        else memset(r->dc.p, 0, (size_t)(B * H) * sizeof(float));
    }
    const float *dyseq = r->d.return_sequences ? dy : NULL;

    /* Per time chunk, last first: the recurrence over its steps, then the GEMMs merged over
     * the chunk's steps (K = steps * B), accumulating into dW, dU and db across chunks (beta = 1
     * after the first): the chunk's gate gradients are still in L2 and only one chunk of them is
     * ever stored. dX of the chunk is one GEMM dG W^T. */
    const int64_t nch = rnn_chunks(B), tc = rnn_tchunk(B, GH);
    const double flops = 2.0 * (double)TB * H * GH;
    const int ra = r->d.cell == NNC_RNN_GRU && r->d.reset_after;
    double *dbacc = (double *)r->dbacc.p;
    const int64_t nbias = ra ? 2 * GH : GH;
    if (db) {
        for (int64_t j = 0; j < nbias; j++) dbacc[j] = 0.0;
        for (int64_t c = 0; c < nch; c++) memset(db_part(r, c), 0, (size_t)nbias * sizeof(float));
    }
    double *dba = db ? dbacc : NULL;
    r->no_dh0 = dh0 == NULL;
    const int nt = nch > 1 ? nnc_threads_for(flops, nch) : 1;
    if (nt > 1) {
        /* One parallel region for the whole sequence: per chunk every batch chunk's recurrence on
         * one thread, then the two weight-gradient tasks side by side, each single-threaded
         * (a GEMM column does not depend on how N is split, so the whole-batch loop below that
         * one thread runs gives the same bits). */
        rnn_bwd_par j = {r, k, dyseq, dW, dU, dba, nch, 0, 0, db != NULL, dx != NULL, 0};
        for (int64_t t1 = T; t1 > 0 && !j.st; t1 = ((t1 - 1) / tc) * tc) {
            j.t0 = ((t1 - 1) / tc) * tc;
            j.t1 = t1;
            nnc_parallel_run(nt, nch, bwd_chunk, &j);
            if (!j.st) nnc_parallel_run(nt, 2, bwd_grads, &j);
        }
        st = j.st;
    } else {
        for (int64_t t1 = T; t1 > 0 && !st; t1 = ((t1 - 1) / tc) * tc) {
            const int64_t t0 = ((t1 - 1) / tc) * tc;
            for (int64_t t = t1 - 1; t >= t0 && !st; t--)
                st = bwd_step(r, k, t, 0, B, dyseq, t0 * B, db != NULL, 0);
            if (!st) st = chunk_grads(r, -1, t0, t1, dW, dU, dba, dx != NULL, 0);
        }
    }
    if (st) return st;
    if (db)
        for (int64_t j = 0; j < nbias; j++) db[j] = (float)dbacc[j];
    if (dh0) memcpy(dh0, r->dh2.p + B * H, (size_t)(B * H) * sizeof(float)); /* slot (0+1)&1 */
    if (dc0 && lstm) memcpy(dc0, r->dc.p, (size_t)(B * H) * sizeof(float));
    if (!dx) return 0;

    /* dX back to batch-major (and original time order), through the input mask. */
    rnn_par j = {r, k, NULL, NULL, dx, NULL, 0, r->d.go_backwards, 0};
    nnc_parallel_ranges(B, 1, nnc_threads_for((double)TB * I * 4, B), bwd_transpose, &j);
    return 0;
}
