/* Winograd F(2x2, 3x3) convolution for 3x3, stride 1, undilated layers: forward, backward data
 * (the forward conv of dz with the flipped kernel) and the weight gradient (at the end of the
 * file). Lavin & Gray 2015. Measured on Zen5 (1 thread, batch 32, 32x32x32->64): forward
 * 5.3 -> 2.8 ms, dx 6.5 -> 3.2 ms, dW 5.7 -> 2.8 ms against im2col + GEMM.
 *
 * Layout: NHWC x, HWIO kernel, NHWC y. The output is cut into 2x2 tiles (ceil(OH/2) x
 * ceil(OW/2) per image; the overhang is computed and dropped). Per chunk of RT tiles:
 *   V[xi][t][c] = (B^T d_t B)[xi]   (input transform, d_t the 4x4xC input patch of tile t),
 *   M[xi] = V[xi] U[xi]             (16 GEMMs [RT x C] x [C x F] on pre-packed U = G g G^T),
 *   y_t = A^T M_t A + bias, act     (output transform).
 * That is 16 C x F products per 4 outputs instead of 36: 2.25x fewer flops than im2col + GEMM,
 * and no im2col copy. RT is sized so V and M (16 * RT * (C + F) floats) stay in L2 between the
 * transforms and the GEMMs. The transforms are loops over channels, contiguous in NHWC, which
 * the compiler vectorises (one instance per ISA). Patch positions outside the input point at a
 * zero row, outputs past OH/OW at a dump row, so no copy or branch per channel.
 * Chunks never depend on the thread count and threads take whole chunks (or split the GEMM
 * columns when there are few), so results are bitwise identical for any thread count. The
 * transforms use only 0, +-1, +-1/2, so the error stays within a few ulps of the direct sum. */
#include "conv_internal.h"
#include "wino_vec.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

struct nnc_wino {
    int64_t C, F;
    nnc_packed *u[16];
    /* with_dw: WINO_SLICES x 16 x C x pad32(F), the weight gradient per image slice in the
     * Winograd domain; else 16 x C x F. Also U's staging before packing (set_weights). */
    float *du;
};

/* The weight gradient's sum over images is cut into this many slices, fixed by the batch alone
 * (min(N, WINO_SLICES)); see nnc_wino_backward_weights. */
#define WINO_SLICES 2

int nnc_wino_applies(const nnc_conv2d_geom *g) {
    return g->KH == 3 && g->KW == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 &&
           g->C >= 16 && g->F >= 16 && g->OH >= 2 && g->OW >= 2;
}

nnc_wino *nnc_wino_new(int64_t C, int64_t F, int with_dw) {
    nnc_wino *w = (nnc_wino *)nnc_malloc(sizeof(nnc_wino));
    if (!w) return NULL;
    memset(w, 0, sizeof(*w));
    w->C = C;
    w->F = F;
    int ok = 1;
    for (int i = 0; i < 16; i++) ok &= (w->u[i] = nnc_packed_new(C, F)) != NULL;
    const int64_t n = with_dw ? WINO_SLICES * 16 * C * pad32(F) : 16 * C * F;
    w->du = (float *)nnc_malloc((size_t)n * sizeof(float));
    if (!ok || !w->du) {
        nnc_wino_free(w);
        return NULL;
    }
    return w;
}

void nnc_wino_free(nnc_wino *w) {
    if (!w) return;
    for (int i = 0; i < 16; i++) nnc_packed_free(w->u[i]);
    nnc_free(w->du);
    nnc_free(w);
}

static const float G[4][3] = {{1.f, 0.f, 0.f}, {.5f, .5f, .5f}, {.5f, -.5f, .5f}, {0.f, 0.f, 1.f}};

int nnc_wino_set_weights(nnc_wino *w, const float *k) {
    /* U = G g G^T, vectorised over f. */
    const int64_t C = w->C, F = w->F, CF = C * F;
    for (int64_t c = 0; c < C; c++) {
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                float *u = w->du + (i * 4 + j) * CF + c * F;
                for (int64_t f = 0; f < F; f++) {
                    float s = 0.f;
                    for (int a = 0; a < 3; a++) {
                        const float *ka = k + a * 3 * CF + c * F + f;
                        s += G[i][a] * (G[j][0] * ka[0] + G[j][1] * ka[CF] + G[j][2] * ka[2 * CF]);
                    }
                    u[f] = s;
                }
            }
    }
    for (int i = 0; i < 16; i++) {
        int st = nnc_pack_b(w->u[i], w->du + i * CF, F, 0);
        if (st) return st;
    }
    return 0;
}

static int64_t chunk_tiles(int64_t C, int64_t F) {
    int64_t r = (512 * 1024) / (64 * (C + F));
    r = r / 24 * 24;
    if (r < 24) r = 24;
    if (r > 480) r = 480;
    return r;
}

/* Slot xi's V and M rows start 16 floats (a cache line) per xi past RT * C and RT * pad32(F)
 * apart, so the transforms' 16 streams do not fall into a few L1 sets (RT * C * 4 bytes is
 * often a multiple of 1-4 KB). */
static int64_t vstride(int64_t RT, int64_t C) { return RT * C + 16; }
static int64_t mstride(int64_t RT, int64_t F) { return RT * pad32(F) + 16; }

size_t nnc_wino_scratch(const nnc_conv2d_geom *g) {
    const int64_t RT = chunk_tiles(g->C, g->F);
    /* V, M, a zero row (input padding), a dump row (cropped outputs), a zero bias */
    /* (the weight gradient uses the same V and M areas and one zero row of max(C, F)) */
    return (size_t)(16 * (vstride(RT, g->C) + mstride(RT, g->F)) + pad16(g->C) + 2 * pad16(g->F));
}

/* ---- transforms (one instance per ISA) ---- */

/* The input transform of one tile on channels [c, c + width), T a vector or scalar type. */
#define IN_BODY(T, LD, ST, c)                                                                  \
    {                                                                                          \
        T d00 = LD(pin[0] + c), d01 = LD(pin[1] + c), d02 = LD(pin[2] + c),                    \
          d03 = LD(pin[3] + c);                                                                \
        T d10 = LD(pin[4] + c), d11 = LD(pin[5] + c), d12 = LD(pin[6] + c),                    \
          d13 = LD(pin[7] + c);                                                                \
        T d20 = LD(pin[8] + c), d21 = LD(pin[9] + c), d22 = LD(pin[10] + c),                   \
          d23 = LD(pin[11] + c);                                                               \
        T d30 = LD(pin[12] + c), d31 = LD(pin[13] + c), d32 = LD(pin[14] + c),                 \
          d33 = LD(pin[15] + c);                                                               \
        /* t = B^T d, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] */                          \
        T t00 = d00 - d20, t01 = d01 - d21, t02 = d02 - d22, t03 = d03 - d23;                  \
        T t10 = d10 + d20, t11 = d11 + d21, t12 = d12 + d22, t13 = d13 + d23;                  \
        T t20 = d20 - d10, t21 = d21 - d11, t22 = d22 - d12, t23 = d23 - d13;                  \
        T t30 = d10 - d30, t31 = d11 - d31, t32 = d12 - d32, t33 = d13 - d33;                  \
        /* v = t B */                                                                          \
        ST(v + 0 * xs + c, t00 - t02); ST(v + 1 * xs + c, t01 + t02);                          \
        ST(v + 2 * xs + c, t02 - t01); ST(v + 3 * xs + c, t01 - t03);                          \
        ST(v + 4 * xs + c, t10 - t12); ST(v + 5 * xs + c, t11 + t12);                          \
        ST(v + 6 * xs + c, t12 - t11); ST(v + 7 * xs + c, t11 - t13);                          \
        ST(v + 8 * xs + c, t20 - t22); ST(v + 9 * xs + c, t21 + t22);                          \
        ST(v + 10 * xs + c, t22 - t21); ST(v + 11 * xs + c, t21 - t23);                        \
        ST(v + 12 * xs + c, t30 - t32); ST(v + 13 * xs + c, t31 + t32);                        \
        ST(v + 14 * xs + c, t32 - t31); ST(v + 15 * xs + c, t31 - t33);                        \
    }

/* V[xi][c] for one tile: pin = the 16 patch rows (C floats each), v = V + t * C, xs = RT * C. */
static inline __attribute__((always_inline)) void in_tile(const float *const *pin, float *v,
                                                          int64_t xs, int64_t C) {
    int64_t c = 0;
    for (; c + 16 <= C; c += 16) IN_BODY(vf16, VLD, VST, c)
    for (; c < C; c++) IN_BODY(float, SLD, SST, c)
}

/* The output transform of one tile on columns [f, f + width): s = A^T m, r = s A + bias,
 * A^T = [1 1 1 0; 0 1 -1 -1]. */
#define OUT_BODY(T, LD, f)                                                                     \
    T s00 = LD(m + 0 * xs + f) + LD(m + 4 * xs + f) + LD(m + 8 * xs + f);                      \
    T s01 = LD(m + 1 * xs + f) + LD(m + 5 * xs + f) + LD(m + 9 * xs + f);                      \
    T s02 = LD(m + 2 * xs + f) + LD(m + 6 * xs + f) + LD(m + 10 * xs + f);                     \
    T s03 = LD(m + 3 * xs + f) + LD(m + 7 * xs + f) + LD(m + 11 * xs + f);                     \
    T s10 = LD(m + 4 * xs + f) - LD(m + 8 * xs + f) - LD(m + 12 * xs + f);                     \
    T s11 = LD(m + 5 * xs + f) - LD(m + 9 * xs + f) - LD(m + 13 * xs + f);                     \
    T s12 = LD(m + 6 * xs + f) - LD(m + 10 * xs + f) - LD(m + 14 * xs + f);                    \
    T s13 = LD(m + 7 * xs + f) - LD(m + 11 * xs + f) - LD(m + 15 * xs + f);                    \
    T b = LD(bias + f);                                                                        \
    T r0 = s00 + s01 + s02 + b, r1 = s01 - s02 - s03 + b;                                      \
    T r2 = s10 + s11 + s12 + b, r3 = s11 - s12 - s13 + b;

/* y for one tile: m = M + t * F (xs = RT * F apart), pout = the 4 output rows (F floats);
 * act: r > 0 ? min(r, hi) : r * neg (linear: neg = 1, hi = inf). */
static inline __attribute__((always_inline)) void out_tile(const float *m, int64_t xs,
                                                           float *const *pout, int64_t F,
                                                           const float *bias, float neg,
                                                           float hi, int act) {
    int64_t f = 0;
    const vf16 vz = {0}, vneg = vz + neg, vhi = vz + hi;
    for (; f + 16 <= F; f += 16) {
        OUT_BODY(vf16, VLD, f)
        vf16 r[4] = {r0, r1, r2, r3};
        for (int i = 0; i < 4; i++) {
            vf16 v = r[i];
            if (act) {
                vi16 pos = v > vz;
                v = (vf16)(((vi16)v & pos) | ((vi16)(v * vneg) & ~pos));
                vi16 gt = v > vhi; /* not v < hi: a NaN must stay NaN */
                v = (vf16)(((vi16)vhi & gt) | ((vi16)v & ~gt));
            }
            VST(pout[i] + f, v);
        }
    }
    for (; f < F; f++) {
        OUT_BODY(float, SLD, f)
        float r[4] = {r0, r1, r2, r3};
        for (int i = 0; i < 4; i++) {
            float v = r[i];
            if (act) v = v > 0.f ? (v < hi ? v : hi) : v * neg;
            pout[i][f] = v;
        }
    }
}

typedef struct wino_job wino_job;
typedef void (*in_fn)(const wino_job *, int64_t, int64_t, float *, const float *);
typedef void (*out_fn)(const wino_job *, int64_t, int64_t, const float *, float *);
typedef void (*dw_fn)(const wino_job *, const float *, int64_t, int64_t, int64_t, int64_t,
                      int64_t, int64_t, float *, float *, const float *);
struct wino_job {
    const nnc_conv2d_geom *g;
    const float *x;
    float *y;
    int64_t RT, TH, TW;
    const float *bias;
    float neg, hi;
    int act; /* 0: linear, no clamp */
    /* scheduling (nnc_wino_forward / nnc_wino_backward_weights) */
    const nnc_wino *w;
    in_fn fi;
    out_fn fo;
    dw_fn fd;
    const float *dz;
    float *dw;
    int64_t tiles, S, by_f;
};

static inline __attribute__((always_inline)) void in_chunk(const wino_job *j, int64_t t0,
                                                           int64_t rows, float *V,
                                                           const float *zero) {
    const nnc_conv2d_geom *g = j->g;
    const int64_t H = g->H, W = g->W, C = g->C, TT = j->TH * j->TW;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t t = t0 + r, n = t / TT, th = (t % TT) / j->TW, tw = t % j->TW;
        const int64_t ih0 = 2 * th - g->pt, iw0 = 2 * tw - g->pl;
        const float *xn = j->x + n * H * W * C;
        const float *pin[16];
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) {
                const int64_t ih = ih0 + a, iw = iw0 + b;
                pin[a * 4 + b] = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? xn + (ih * W + iw) * C
                                                                          : zero;
            }
        in_tile(pin, V + r * C, vstride(j->RT, C), C);
    }
}

static inline __attribute__((always_inline)) void out_chunk(const wino_job *j, int64_t t0,
                                                            int64_t rows, const float *M,
                                                            float *dump) {
    const float *zero = dump + pad16(j->g->F); /* F zeros when there is no bias */
    const nnc_conv2d_geom *g = j->g;
    const int64_t OH = g->OH, OW = g->OW, F = g->F, TT = j->TH * j->TW;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t t = t0 + r, n = t / TT, th = (t % TT) / j->TW, tw = t % j->TW;
        const int64_t oh = 2 * th, ow = 2 * tw;
        float *yn = j->y + n * OH * OW * F;
        float *pout[4];
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++)
                pout[a * 2 + b] = (oh + a < OH && ow + b < OW) ? yn + ((oh + a) * OW + ow + b) * F
                                                              : dump;
        out_tile(M + r * F, mstride(j->RT, F), pout, F, j->bias ? j->bias : zero, j->neg, j->hi,
                 j->act);
    }
}

static void in_chunk_generic(const wino_job *j, int64_t t0, int64_t rows, float *V,
                             const float *zero) {
    in_chunk(j, t0, rows, V, zero);
}
static void out_chunk_generic(const wino_job *j, int64_t t0, int64_t rows, const float *M,
                              float *dump) {
    out_chunk(j, t0, rows, M, dump);
}
#if NNC_X86
NNC_TARGET_AVX2 static void in_chunk_avx2(const wino_job *j, int64_t t0, int64_t rows, float *V,
                                          const float *zero) {
    in_chunk(j, t0, rows, V, zero);
}
NNC_TARGET_AVX2 static void out_chunk_avx2(const wino_job *j, int64_t t0, int64_t rows,
                                           const float *M, float *dump) {
    out_chunk(j, t0, rows, M, dump);
}
NNC_TARGET_AVX512 static void in_chunk_avx512(const wino_job *j, int64_t t0, int64_t rows,
                                              float *V, const float *zero) {
    in_chunk(j, t0, rows, V, zero);
}
NNC_TARGET_AVX512 static void out_chunk_avx512(const wino_job *j, int64_t t0, int64_t rows,
                                               const float *M, float *dump) {
    out_chunk(j, t0, rows, M, dump);
}
#endif


/* Job over the 2x2 output tiles; the forward transforms for the ISA in use. */
static void job_init(wino_job *j, const nnc_wino *w, const nnc_conv2d_geom *g, const float *x,
                     int64_t N) {
    memset(j, 0, sizeof(*j));
    j->g = g;
    j->w = w;
    j->x = x;
    j->RT = chunk_tiles(g->C, g->F);
    j->TH = (g->OH + 1) / 2;
    j->TW = (g->OW + 1) / 2;
    j->tiles = N * j->TH * j->TW;
    j->fi = in_chunk_generic;
    j->fo = out_chunk_generic;
#if NNC_X86
    if (nnc_isa() == NNC_ISA_AVX2) {
        j->fi = in_chunk_avx2;
        j->fo = out_chunk_avx2;
    } else if (nnc_isa() == NNC_ISA_AVX512) {
        j->fi = in_chunk_avx512;
        j->fo = out_chunk_avx512;
    }
#endif
}

/* Zero rows (and dump/bias rows) after V and M in the first T scratch blocks. */
static void clear_tail(const nnc_conv2d_geom *g, int64_t RT, float *scratch, int T) {
    const size_t per = nnc_wino_scratch(g);
    const size_t body = (size_t)(16 * (vstride(RT, g->C) + mstride(RT, g->F)));
    for (int t = 0; t < T; t++) memset(scratch + t * per + body, 0, (per - body) * sizeof(float));
}

/* Chunk ch: transform in, 16 GEMMs, transform out. s = this thread's scratch. */
static int run_chunk(const void *ctx, int64_t ch, float *s, int gemm_threads) {
    const wino_job *j = (const wino_job *)ctx;
    const int64_t C = j->w->C, F = j->w->F, RT = j->RT;
    const int64_t t0 = ch * RT, rows = NNC_MIN(RT, j->tiles - t0);
    const int64_t vs = vstride(RT, C), ms = mstride(RT, F);
    float *V = s, *M = s + 16 * vs, *zero = M + 16 * ms, *dump = zero + pad16(C);
    j->fi(j, t0, rows, V, zero);
    for (int xi = 0; xi < 16; xi++) {
        int st = nnc_sgemm_packed(0, rows, F, C, 1.f, V + xi * vs, C, j->w->u[xi], 0.f,
                                  M + xi * ms, F, NULL, gemm_threads);
        if (st) return st;
    }
    j->fo(j, t0, rows, M, dump);
    return 0;
}

static double conv_flops(const nnc_conv2d_geom *g, int64_t N) {
    return 2.0 * N * g->OH * g->OW * 9 * g->C * g->F;
}

int nnc_wino_forward(const nnc_wino *w, const nnc_conv2d_geom *g, const float *x, int64_t N,
                     const nnc_epilogue *ep, float *y, float *scratch, int nthreads) {
    wino_job j;
    job_init(&j, w, g, x, N);
    j.y = y;
    j.bias = ep ? ep->bias : NULL;
    const int act = ep ? ep->act : NNC_ACT_LINEAR;
    j.neg = act == NNC_ACT_LINEAR ? 1.f : (act == NNC_ACT_LEAKY_RELU ? ep->alpha : 0.f);
    j.hi = act == NNC_ACT_RELU6 ? 6.f : __builtin_inff();
    j.act = act != NNC_ACT_LINEAR;
    const int64_t nchunks = (j.tiles + j.RT - 1) / j.RT;
    const int T = conv_threads(nthreads, conv_flops(g, N), nchunks);
    clear_tail(g, j.RT, scratch, conv_chunk_threads(nchunks, T));
    return conv_run_chunks(nchunks, T, scratch, nnc_wino_scratch(g), run_chunk, &j, nthreads);
}

/* ---- weight gradient ----
 * dU[xi] = sum over tiles of V[xi]^T dM[xi], dM_t = A dY_t A^T (the 2x2 output gradient of tile
 * t, zero where cropped, spread to 4x4), then dW = G^T dU G. dM is stored pad32(F) wide with
 * zero columns so the TN GEMMs use it in place (no edge packing, no scratch). Chunks are
 * summed in order (beta = 1 after the first) within image slices fixed by the batch; how
 * threads share the work is described at nnc_wino_backward_weights. */

#define DM_BODY(T, LD, ST, f)                                                                  \
    {                                                                                          \
        T y00 = LD(py[0] + f), y01 = LD(py[1] + f), y10 = LD(py[2] + f), y11 = LD(py[3] + f);  \
        /* r_i = rows of A dY: (y0, y0 + y1, y0 - y1, -y1), then the same along columns */      \
        T r00 = y00, r01 = y01, r10 = y00 + y10, r11 = y01 + y11;                              \
        T r20 = y00 - y10, r21 = y01 - y11, r30 = -y10, r31 = -y11;                            \
        ST(q + 0 * xs + f, r00); ST(q + 1 * xs + f, r00 + r01);                                \
        ST(q + 2 * xs + f, r00 - r01); ST(q + 3 * xs + f, -r01);                               \
        ST(q + 4 * xs + f, r10); ST(q + 5 * xs + f, r10 + r11);                                \
        ST(q + 6 * xs + f, r10 - r11); ST(q + 7 * xs + f, -r11);                               \
        ST(q + 8 * xs + f, r20); ST(q + 9 * xs + f, r20 + r21);                                \
        ST(q + 10 * xs + f, r20 - r21); ST(q + 11 * xs + f, -r21);                             \
        ST(q + 12 * xs + f, r30); ST(q + 13 * xs + f, r30 + r31);                              \
        ST(q + 14 * xs + f, r30 - r31); ST(q + 15 * xs + f, -r31);                             \
    }

/* dM rows of a chunk for filters [f0, f1) (f0 a multiple of 32; pad columns zeroed when f1 = F)
 * and V rows for channels [c0, c1). */
static inline __attribute__((always_inline)) void dw_chunk(const wino_job *j, const float *dz,
                                                           int64_t t0, int64_t rows, int64_t c0,
                                                           int64_t c1, int64_t f0, int64_t f1,
                                                           float *V, float *DM,
                                                           const float *zero) {
    const nnc_conv2d_geom *g = j->g;
    const int64_t H = g->H, W = g->W, C = g->C, F = g->F, Fp = pad32(F);
    const int64_t OH = g->OH, OW = g->OW, TT = j->TH * j->TW;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t t = t0 + r, n = t / TT, th = (t % TT) / j->TW, tw = t % j->TW;
        const int64_t ih0 = 2 * th - g->pt, iw0 = 2 * tw - g->pl, oh = 2 * th, ow = 2 * tw;
        const float *xn = j->x + n * H * W * C + c0;
        const float *pin[16];
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) {
                const int64_t ih = ih0 + a, iw = iw0 + b;
                pin[a * 4 + b] = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? xn + (ih * W + iw) * C
                                                                          : zero;
            }
        in_tile(pin, V + r * C + c0, vstride(j->RT, C), c1 - c0);
        const float *dzn = dz + n * OH * OW * F;
        const float *py[4];
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++)
                py[a * 2 + b] = (oh + a < OH && ow + b < OW) ? dzn + ((oh + a) * OW + ow + b) * F
                                                            : zero;
        float *q = DM + r * Fp;
        const int64_t xs = mstride(j->RT, F), fe = f1 == F ? Fp : f1;
        int64_t f = f0;
        for (; f + 16 <= f1; f += 16) DM_BODY(vf16, VLD, VST, f)
        for (; f < f1; f++) DM_BODY(float, SLD, SST, f)
        for (; f < fe; f++)
            for (int xi = 0; xi < 16; xi++) q[xi * xs + f] = 0.f;
    }
}

static void dw_chunk_generic(const wino_job *j, const float *dz, int64_t t0, int64_t rows,
                             int64_t c0, int64_t c1, int64_t f0, int64_t f1, float *V, float *DM,
                             const float *zero) {
    dw_chunk(j, dz, t0, rows, c0, c1, f0, f1, V, DM, zero);
}
#if NNC_X86
NNC_TARGET_AVX2 static void dw_chunk_avx2(const wino_job *j, const float *dz, int64_t t0,
                                          int64_t rows, int64_t c0, int64_t c1, int64_t f0,
                                          int64_t f1, float *V, float *DM, const float *zero) {
    dw_chunk(j, dz, t0, rows, c0, c1, f0, f1, V, DM, zero);
}
NNC_TARGET_AVX512 static void dw_chunk_avx512(const wino_job *j, const float *dz, int64_t t0,
                                              int64_t rows, int64_t c0, int64_t c1, int64_t f0,
                                              int64_t f1, float *V, float *DM,
                                              const float *zero) {
    dw_chunk(j, dz, t0, rows, c0, c1, f0, f1, V, DM, zero);
}
#endif


/* Block [c0, c1) x [f0, f1) of dU (du: one slice's buffer) over tiles [ta, tb): chunks of RT
 * tiles from ta, in order. */
static int du_block(const wino_job *j, int64_t ta, int64_t tb, int64_t c0, int64_t c1,
                    int64_t f0, int64_t f1, float *s, float *du) {
    const nnc_wino *w = j->w;
    const int64_t C = w->C, F = w->F, Fp = pad32(F), RT = j->RT;
    const int64_t fe = f1 == F ? Fp : f1; /* GEMM columns, pad included at the end */
    const int64_t vs = vstride(RT, C), ms = mstride(RT, F);
    float *V = s, *DM = s + 16 * vs, *zero = DM + 16 * ms;
    if (c1 <= c0 || f1 <= f0) return 0;
    for (int64_t t0 = ta; t0 < tb; t0 += RT) {
        const int64_t rows = NNC_MIN(RT, tb - t0);
        j->fd(j, j->dz, t0, rows, c0, c1, f0, f1, V, DM, zero);
        for (int xi = 0; xi < 16; xi++) {
            int st = nnc_sgemm(1, 0, c1 - c0, fe - f0, rows, 1.f, V + xi * vs + c0, C,
                               DM + xi * ms + f0, Fp, t0 == ta ? 0.f : 1.f,
                               du + (xi * C + c0) * Fp + f0, Fp, NULL, 1);
            if (st) return st;
        }
    }
    return 0;
}

/* Channel c of dW: the slices' dU summed in slice order, then dW[a][b] = sum_ij G[i][a] dU[i][j]
 * G[j][b]. */
static void du_to_dw(const nnc_wino *w, int64_t S, int64_t c, float *dw) {
    const int64_t C = w->C, F = w->F, Fp = pad32(F), CFp = C * Fp;
    float *du = w->du;
    for (int64_t sl = 1; sl < S; sl++)
        for (int xi = 0; xi < 16; xi++) {
            float *d = du + xi * CFp + c * Fp;
            const float *e = du + (sl * 16 + xi) * CFp + c * Fp;
            for (int64_t f = 0; f < F; f++) d[f] += e[f];
        }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            float *d = dw + ((a * 3 + b) * C + c) * F;
            for (int64_t f = 0; f < F; f++) {
                float acc = 0.f;
                for (int i = 0; i < 4; i++) {
                    const float *u = du + i * 4 * CFp + c * Fp + f;
                    acc += G[i][a] * (G[0][b] * u[0] + G[1][b] * u[CFp] + G[2][b] * u[2 * CFp] +
                                      G[3][b] * u[3 * CFp]);
                }
                d[f] = acc;
            }
        }
}

/* Slice sl of dU for blocks [b0, b1) along the wider side (32-filter panels or 8-channel
 * strips), each transforming the smaller side in full. */
static int dw_slice(void *ctx, int64_t sl, int64_t b0, int64_t b1, float *sc) {
    const wino_job *j = (const wino_job *)ctx;
    const nnc_wino *w = j->w;
    const int64_t C = w->C, F = w->F, TT = j->TH * j->TW, N = j->tiles / TT;
    const int64_t ta = N * sl / j->S * TT, tb = N * (sl + 1) / j->S * TT;
    float *du = w->du + sl * 16 * C * pad32(F);
    return j->by_f ? du_block(j, ta, tb, 0, C, b0 * 32, NNC_MIN(F, b1 * 32), sc, du)
                   : du_block(j, ta, tb, b0 * 8, NNC_MIN(C, b1 * 8), 0, F, sc, du);
}

static void dw_fin(void *ctx, int64_t c) {
    const wino_job *j = (const wino_job *)ctx;
    du_to_dw(j->w, j->S, c, j->dw);
}

int nnc_wino_backward_weights(const nnc_wino *w, const nnc_conv2d_geom *g, const float *x,
                              const float *dz, int64_t N, float *dw, float *scratch,
                              int nthreads) {
    wino_job j;
    job_init(&j, w, g, x, N);
    j.dz = dz;
    j.dw = dw;
    j.fd = dw_chunk_generic;
#if NNC_X86
    if (nnc_isa() == NNC_ISA_AVX2) j.fd = dw_chunk_avx2;
    else if (nnc_isa() == NNC_ISA_AVX512) j.fd = dw_chunk_avx512;
#endif
    /* S image slices, fixed by the batch: slice sl sums images [N sl / S, N (sl + 1) / S) into
     * its own dU, and the slices are added in order before the output transform. With T <= S
     * threads each takes whole slices, so a thread transforms and reads only its own images
     * (the ones it also handled in the forward and dx passes, which split tiles the same way). */
    j.S = NNC_MIN(N, WINO_SLICES);
    j.by_f = g->F >= g->C;
    const int64_t blocks = j.by_f ? pad32(g->F) / 32 : (g->C + 7) / 8;
    int T = conv_threads(nthreads, conv_flops(g, N), j.S * blocks);
    if (T > j.S * blocks) T = (int)(j.S * blocks);
    clear_tail(g, j.RT, scratch, T);
    return conv_run_slices(j.S, blocks, T, scratch, nnc_wino_scratch(g), dw_slice, dw_fin, g->C,
                           &j);
}
