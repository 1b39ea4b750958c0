/* Winograd for 3x3, stride 2, undilated layers: forward, backward data and the weight gradient.
 *
 * Along one axis a stride-2 3x3 conv of 5 inputs d0..d4 gives 2 outputs
 *   y0 = d0 g0 + d1 g1 + d2 g2,   y1 = d2 g0 + d3 g1 + d4 g2.
 * The even taps (g0, g2 on d0, d2, d4) are an F(2, 2) Winograd problem and the odd tap is one
 * product per output, which folds into the two end slots because each feeds a single output:
 *   slot 0: [d0 - d2, d1] . [g0, g1]    slot 1: [d2] . [g0 + g2]    slot 2: [d4 - d2, d3] . [g2, g1]
 *   y0 = m0 + m1,  y1 = m1 + m2.
 * In 2-D a 5x5 patch gives 2x2 outputs through 3x3 slots; slot (i, j) is one GEMM
 * [tiles x (n_i n_j C)] x [(n_i n_j C) x F] with n = (2, 1, 2): 25 C x F products per 4 outputs
 * instead of 36 (1.44x fewer flops), transforms of additions only (exact up to rounding).
 * Backward data is the transposed problem gathered per 4x4 tile of dx from a 3x3 patch of dz:
 *   tau = (z0 - z1, z1, z2 - z1, z2), the slots' products with (g2 | g0 + g2, g1 | g0 | g1),
 *   dx0 = P0 + P1a, dx1 = P1b, dx2 = P1a + P2, dx3 = P3
 * (16 slots, 25 F x C products per 16 dx values instead of 36). The weight gradient sums
 * V^T dM per slot over tiles (dM = the output transform's adjoint) and maps back with G^T.
 * Chunking, threads and slices follow winograd.c: results never depend on the thread count. */
#include "conv_internal.h"
#include "wino_vec.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Forward / weight-gradient layout along one axis: the 5 entries' slot, place in the slot, and
 * the slot widths; GT maps the kernel's 3 taps to the entries. */
static const int SL[5] = {0, 0, 1, 2, 2}, SB[5] = {0, 1, 0, 0, 1}, SN[3] = {2, 1, 2};
static const float GT[5][3] = {{1, 0, 0}, {0, 1, 0}, {1, 0, 1}, {0, 0, 1}, {0, 1, 0}};
/* Backward data: 4 slots along an axis. */
static const int DL[5] = {0, 1, 1, 2, 3}, DB[5] = {0, 0, 1, 0, 0}, DN[4] = {1, 2, 1, 1};
static const float GD[5][3] = {{0, 0, 1}, {1, 0, 1}, {0, 1, 0}, {1, 0, 0}, {0, 1, 0}};
/* Slot offsets in units of C: the widths (n_i n_j) summed over the slots before. */
static const int OFF[9] = {0, 4, 6, 10, 12, 13, 15, 19, 21};
static const int OFFD[16] = {0, 1, 3, 4, 5, 7, 11, 13, 15, 16, 18, 19, 20, 21, 23, 24};

#define WINO2_SLICES 2

struct nnc_wino2 {
    int64_t C, F;
    nnc_packed *u[9];         /* forward: (n_i n_j C) x F */
    nnc_packed *ud[16];       /* backward data: F x (n_i n_j C) */
    float *du; /* WINO2_SLICES x 25 x C x pad32(F); staging for the kernel transforms too */
};

static int64_t width(int s) { return SN[s / 3] * SN[s % 3]; }
static int64_t widthd(int s) { return DN[s / 4] * DN[s % 4]; }
/* Entry (p, q) of the 5x5 grid: its slot and its column block inside the slot's row. */
static int eslot(int p, int q) { return SL[p] * 3 + SL[q]; }
static int ecol(int p, int q) { return SB[p] * SN[SL[q]] + SB[q]; }
static int eslotd(int p, int q) { return DL[p] * 4 + DL[q]; }
static int ecold(int p, int q) { return DB[p] * DN[DL[q]] + DB[q]; }

int nnc_wino2_applies(const nnc_conv2d_geom *g) {
    return g->KH == 3 && g->KW == 3 && g->sh == 2 && g->sw == 2 && g->dh == 1 && g->dw == 1 &&
           g->C >= 16 && g->F >= 16 && g->OH >= 2 && g->OW >= 2;
}

nnc_wino2 *nnc_wino2_new(int64_t C, int64_t F) {
    nnc_wino2 *w = (nnc_wino2 *)nnc_malloc(sizeof(nnc_wino2));
    if (!w) return NULL;
    memset(w, 0, sizeof(*w));
    w->C = C;
    w->F = F;
    int ok = 1;
    for (int s = 0; s < 9; s++) ok &= (w->u[s] = nnc_packed_new(width(s) * C, F)) != NULL;
    for (int s = 0; s < 16; s++) ok &= (w->ud[s] = nnc_packed_new(F, widthd(s) * C)) != NULL;
    w->du = (float *)nnc_malloc((size_t)(WINO2_SLICES * 25 * C * pad32(F)) * sizeof(float));
    if (!ok || !w->du) {
        nnc_wino2_free(w);
        return NULL;
    }
    return w;
}

void nnc_wino2_free(nnc_wino2 *w) {
    if (!w) return;
    for (int s = 0; s < 9; s++) nnc_packed_free(w->u[s]);
    for (int s = 0; s < 16; s++) nnc_packed_free(w->ud[s]);
    nnc_free(w->du);
    nnc_free(w);
}

/* Entry (p, q) of the 5x5 grid at stage + (p * 5 + q) * C * F, rows c: sum_ab g[p][a] g[q][b] k[a][b][c]. */
static void stage_kernel(float *stage, const float *k, int64_t C, int64_t F, const float (*g)[3]) {
    for (int p = 0; p < 5; p++)
        for (int q = 0; q < 5; q++) {
            for (int64_t c = 0; c < C; c++) {
                float *d = stage + c * F;
                for (int64_t f = 0; f < F; f++) d[f] = 0.f;
                for (int a = 0; a < 3; a++)
                    for (int b = 0; b < 3; b++) {
                        const float m = g[p][a] * g[q][b];
                        if (m == 0.f) continue;
                        const float *ka = k + ((a * 3 + b) * C + c) * F;
                        for (int64_t f = 0; f < F; f++) d[f] += m * ka[f];
                    }
            }
            stage += C * F;
        }
}

/* Transforms k with g (GT forward, GD backward data), gathers each slot's entries into one
 * (width * C) x F block and packs it (forward: as is; backward data: transposed, F x width C).
 * Staging in du, which is free outside the weight gradient. */
static int pack_slots(nnc_wino2 *w, const float *k, int dx) {
    const int64_t C = w->C, F = w->F;
    float *tmp = w->du, *blk = w->du + 25 * C * F;
    stage_kernel(tmp, k, C, F, dx ? GD : GT);
    for (int s = 0; s < (dx ? 16 : 9); s++) {
        for (int p = 0; p < 5; p++)
            for (int q = 0; q < 5; q++)
                if ((dx ? eslotd(p, q) : eslot(p, q)) == s)
                    memcpy(blk + (dx ? ecold(p, q) : ecol(p, q)) * C * F,
                           tmp + (p * 5 + q) * C * F, (size_t)(C * F) * sizeof(float));
        int st = dx ? nnc_pack_b(w->ud[s], blk, F, 1) : nnc_pack_b(w->u[s], blk, F, 0);
        if (st) return st;
    }
    return 0;
}

int nnc_wino2_set_weights(nnc_wino2 *w, const float *k) { return pack_slots(w, k, 0); }
int nnc_wino2_set_weights_dx(nnc_wino2 *w, const float *k) { return pack_slots(w, k, 1); }

static int64_t chunk_tiles(int64_t C, int64_t F) {
    int64_t r = (768 * 1024) / (4 * (25 * C + 16 * pad32(F)));
    r = r / 24 * 24;
    if (r < 24) r = 24;
    if (r > 480) r = 480;
    return r;
}

static int64_t zrow(const nnc_conv2d_geom *g) { return pad16(NNC_MAX(g->C, pad32(g->F))); }

/* Slot s's arrays start SKEW * s floats past their packed offsets: RT * C and RT * F are often
 * multiples of 4 KB, and 16-25 streams that far apart would share one L1 set (measured: the
 * transforms ran 1.3x slower). Region A holds V (or dx's products), region B M, dM or dx's
 * transformed dz, slot s at B + s * bstride. */
#define SKEW 16
static int64_t bstride(int64_t RT, int64_t F) { return RT * pad32(F) + SKEW; }
static int64_t region_a(int64_t RT, int64_t C) { return 25 * RT * C + 16 * SKEW; }

size_t nnc_wino2_scratch(const nnc_conv2d_geom *g) {
    const int64_t RT = chunk_tiles(g->C, g->F);
    /* region A: 25 RT C (V, or dx's products); region B: 16 RT pad32(F) (M, dM, or dz's
     * transform); a zero row; a dump row */
    return (size_t)(region_a(RT, g->C) + 16 * bstride(RT, g->F) + 2 * zrow(g));
}

/* ---- transforms (one instance per ISA) ---- */

/* 5x5 patch -> 25 entries. pin: patch rows, pv: entry destinations. */
#define S2_IN_BODY(T, LD, ST, c)                                                               \
    {                                                                                          \
        T r[5][5];                                                                             \
        for (int b = 0; b < 5; b++) {                                                          \
            T d0 = LD(pin[b] + c), d1 = LD(pin[5 + b] + c), d2 = LD(pin[10 + b] + c);          \
            T d3 = LD(pin[15 + b] + c), d4 = LD(pin[20 + b] + c);                              \
            r[0][b] = d0 - d2; r[1][b] = d1; r[2][b] = d2; r[3][b] = d4 - d2; r[4][b] = d3;    \
        }                                                                                      \
        for (int p = 0; p < 5; p++) {                                                          \
            ST(pv[p * 5 + 0] + c, r[p][0] - r[p][2]); ST(pv[p * 5 + 1] + c, r[p][1]);          \
            ST(pv[p * 5 + 2] + c, r[p][2]); ST(pv[p * 5 + 3] + c, r[p][4] - r[p][2]);          \
            ST(pv[p * 5 + 4] + c, r[p][3]);                                                    \
        }                                                                                      \
    }

static inline __attribute__((always_inline)) void s2_in_tile(const float *const *pin,
                                                             float *const *pv, int64_t C) {
    int64_t c = 0;
    for (; c + 16 <= C; c += 16) S2_IN_BODY(vf16, VLD, VST, c)
    for (; c < C; c++) S2_IN_BODY(float, SLD, SST, c)
}

typedef struct w2_job w2_job;
typedef int (*chunk_fn)(const w2_job *, int64_t, int64_t, float *, int);
typedef int (*dwc_fn)(const w2_job *, int64_t, int64_t, int64_t, int64_t, float *, float *, int);
struct w2_job {
    const nnc_conv2d_geom *g;
    const nnc_wino2 *w;
    const float *x;   /* forward / dW input, or dx's dz */
    float *y;         /* forward output or dx */
    const float *dz;  /* dW */
    int64_t RT, TH, TW, tiles;
    const float *bias;
    float neg, hi;
    int act;
    chunk_fn fn;      /* forward or dx chunk, for the ISA in use */
    dwc_fn fg;        /* dW chunk */
    int64_t S;        /* dW image slices */
    float *dw;
};

/* Patch rows of forward tile t and the destinations of its entries in V (row r of the chunk). */
static inline __attribute__((always_inline)) void s2_ptrs(const w2_job *j, int64_t t, int64_t r,
                                                          float *V, const float *zero,
                                                          const float **pin, float **pv) {
    const nnc_conv2d_geom *g = j->g;
    const int64_t H = g->H, W = g->W, C = g->C, TT = j->TH * j->TW;
    const int64_t n = t / TT, th = (t % TT) / j->TW, tw = t % j->TW;
    const int64_t ih0 = 4 * th - g->pt, iw0 = 4 * tw - g->pl;
    const float *xn = j->x + n * H * W * C;
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 5; b++) {
            const int64_t ih = ih0 + a, iw = iw0 + b;
            pin[a * 5 + b] =
                (ih >= 0 && ih < H && iw >= 0 && iw < W) ? xn + (ih * W + iw) * C : zero;
            const int s = eslot(a, b);
            pv[a * 5 + b] = V + (OFF[s] * j->RT + r * width(s) + ecol(a, b)) * C + s * SKEW;
        }
}

static inline __attribute__((always_inline)) float act1(float v, float neg, float hi) {
    return v > 0.f ? (v < hi ? v : hi) : v * neg;
}

/* Forward chunk: V = transform(x), M[s] = V[s] U[s], y = A^T M A + bias, act. */
static inline __attribute__((always_inline)) int fwd_chunk(const w2_job *j, int64_t t0,
                                                           int64_t rows, float *s, int gt) {
    const nnc_conv2d_geom *g = j->g;
    const nnc_wino2 *w = j->w;
    const int64_t C = g->C, F = g->F, RT = j->RT, OH = g->OH, OW = g->OW, TT = j->TH * j->TW;
    const int64_t xs = bstride(RT, F);
    float *V = s, *M = s + region_a(RT, C), *zero = M + 16 * xs, *dump = zero + zrow(g);
    for (int64_t r = 0; r < rows; r++) {
        const float *pin[25];
        float *pv[25];
        s2_ptrs(j, t0 + r, r, V, zero, pin, pv);
        s2_in_tile(pin, pv, C);
    }
    for (int sl = 0; sl < 9; sl++) {
        const int64_t K = width(sl) * C;
        int st = nnc_sgemm_packed(0, rows, F, K, 1.f, V + OFF[sl] * RT * C + sl * SKEW, K,
                                  w->u[sl], 0.f, M + sl * xs, F, NULL, gt);
        if (st) return st;
    }
    const float *bias = j->bias ? j->bias : zero;
    const vf16 vz = {0}, vneg = vz + j->neg, vhi = vz + j->hi;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t t = t0 + r, n = t / TT, th = (t % TT) / j->TW, tw = t % j->TW;
        const int64_t oh = 2 * th, ow = 2 * tw;
        float *yn = j->y + n * OH * OW * F;
        float *po[4];
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++)
                po[a * 2 + b] =
                    (oh + a < OH && ow + b < OW) ? yn + ((oh + a) * OW + ow + b) * F : dump;
        const float *m = M + r * F;
        int64_t f = 0;
        for (; f + 16 <= F; f += 16) {
            vf16 m0 = VLD(m + f), m1 = VLD(m + xs + f), m2 = VLD(m + 2 * xs + f);
            vf16 m3 = VLD(m + 3 * xs + f), m4 = VLD(m + 4 * xs + f), m5 = VLD(m + 5 * xs + f);
            vf16 m6 = VLD(m + 6 * xs + f), m7 = VLD(m + 7 * xs + f), m8 = VLD(m + 8 * xs + f);
            vf16 bb = VLD(bias + f), c4 = m4 + bb;
            vf16 o[4] = {m0 + m1 + m3 + c4, m1 + m2 + m5 + c4, m3 + m6 + m7 + c4,
                         m5 + m7 + m8 + c4};
            for (int i = 0; i < 4; i++) {
                vf16 v = o[i];
                if (j->act) {
                    vi16 pos = v > vz;
                    v = (vf16)(((vi16)v & pos) | ((vi16)(v * vneg) & ~pos));
                    vi16 gt = v > vhi; /* not v < hi: a NaN must stay NaN */
                    v = (vf16)(((vi16)vhi & gt) | ((vi16)v & ~gt));
                }
                VST(po[i] + f, v);
            }
        }
        for (; f < F; f++) {
            const float *mf = m + f;
            float c4 = mf[4 * xs] + bias[f];
            float o[4] = {mf[0] + mf[xs] + mf[3 * xs] + c4, mf[xs] + mf[2 * xs] + mf[5 * xs] + c4,
                          mf[3 * xs] + mf[6 * xs] + mf[7 * xs] + c4,
                          mf[5 * xs] + mf[7 * xs] + mf[8 * xs] + c4};
            for (int i = 0; i < 4; i++) po[i][f] = j->act ? act1(o[i], j->neg, j->hi) : o[i];
        }
    }
    return 0;
}

/* Backward-data chunk: dx tile t covers dx rows 4 th - pt .. + 3 (same for columns) and reads
 * dz rows 2 th - 1 .. 2 th + 1. */
static inline __attribute__((always_inline)) int dx_chunk(const w2_job *j, int64_t t0,
                                                          int64_t rows, float *s, int gt) {
    const nnc_conv2d_geom *g = j->g;
    const nnc_wino2 *w = j->w;
    const int64_t C = g->C, F = g->F, RT = j->RT, H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    const int64_t TT = j->TH * j->TW;
    const int64_t xs = bstride(RT, F);
    float *P = s, *Vd = s + region_a(RT, C), *zero = Vd + 16 * xs, *dump = zero + zrow(g);
    for (int64_t r = 0; r < rows; r++) {
        const int64_t t = t0 + r, n = t / TT, th = (t % TT) / j->TW, tw = t % j->TW;
        const int64_t oh0 = 2 * th - 1, ow0 = 2 * tw - 1;
        const float *dzn = j->x + n * OH * OW * F;
        const float *pin[9];
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                const int64_t oh = oh0 + a, ow = ow0 + b;
                pin[a * 3 + b] =
                    (oh >= 0 && oh < OH && ow >= 0 && ow < OW) ? dzn + (oh * OW + ow) * F : zero;
            }
        float *v = Vd + r * F;
#define S2_DZ_BODY(T, LD, ST, f)                                                               \
    {                                                                                          \
        T q[4][3];                                                                             \
        for (int b = 0; b < 3; b++) {                                                          \
            T z0 = LD(pin[b] + f), z1 = LD(pin[3 + b] + f), z2 = LD(pin[6 + b] + f);           \
            q[0][b] = z0 - z1; q[1][b] = z1; q[2][b] = z2 - z1; q[3][b] = z2;                  \
        }                                                                                      \
        for (int i = 0; i < 4; i++) {                                                          \
            ST(v + (i * 4 + 0) * xs + f, q[i][0] - q[i][1]); ST(v + (i * 4 + 1) * xs + f, q[i][1]); \
            ST(v + (i * 4 + 2) * xs + f, q[i][2] - q[i][1]); ST(v + (i * 4 + 3) * xs + f, q[i][2]); \
        }                                                                                      \
    }
        int64_t f = 0;
        for (; f + 16 <= F; f += 16) S2_DZ_BODY(vf16, VLD, VST, f)
        for (; f < F; f++) S2_DZ_BODY(float, SLD, SST, f)
    }
    for (int sl = 0; sl < 16; sl++) {
        const int64_t K = widthd(sl) * C;
        int st = nnc_sgemm_packed(0, rows, K, F, 1.f, Vd + sl * xs, F, w->ud[sl], 0.f,
                                  P + OFFD[sl] * RT * C + sl * SKEW, K, NULL, gt);
        if (st) return st;
    }
    for (int64_t r = 0; r < rows; r++) {
        const int64_t t = t0 + r, n = t / TT, th = (t % TT) / j->TW, tw = t % j->TW;
        const int64_t ih0 = 4 * th - g->pt, iw0 = 4 * tw - g->pl;
        float *dxn = j->y + n * H * W * C;
        const float *pp[25];
        float *po[16];
        for (int p = 0; p < 5; p++)
            for (int q = 0; q < 5; q++) {
                const int sd = eslotd(p, q);
                pp[p * 5 + q] =
                    P + (OFFD[sd] * RT + r * widthd(sd) + ecold(p, q)) * C + sd * SKEW;
            }
        if (ih0 >= 0 && iw0 >= 0 && ih0 + 4 <= H && iw0 + 4 <= W) {
            float *x0 = dxn + (ih0 * W + iw0) * C;
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) po[a * 4 + b] = x0 + (a * W + b) * C;
        } else {
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) {
                    const int64_t ih = ih0 + a, iw = iw0 + b;
                    po[a * 4 + b] =
                        (ih >= 0 && ih < H && iw >= 0 && iw < W) ? dxn + (ih * W + iw) * C : dump;
                }
        }
#define S2_DX_BODY(T, LD, ST, c)                                                               \
    {                                                                                          \
        T q[4][5];                                                                             \
        for (int b = 0; b < 5; b++) {                                                          \
            T p0 = LD(pp[b] + c), p1 = LD(pp[5 + b] + c), p2 = LD(pp[10 + b] + c);             \
            T p3 = LD(pp[15 + b] + c), p4 = LD(pp[20 + b] + c);                                \
            q[0][b] = p0 + p1; q[1][b] = p2; q[2][b] = p1 + p3; q[3][b] = p4;                  \
        }                                                                                      \
        for (int i = 0; i < 4; i++) {                                                          \
            ST(po[i * 4 + 0] + c, q[i][0] + q[i][1]); ST(po[i * 4 + 1] + c, q[i][2]);          \
            ST(po[i * 4 + 2] + c, q[i][1] + q[i][3]); ST(po[i * 4 + 3] + c, q[i][4]);          \
        }                                                                                      \
    }
        int64_t c = 0;
        for (; c + 16 <= C; c += 16) S2_DX_BODY(vf16, VLD, VST, c)
        for (; c < C; c++) S2_DX_BODY(float, SLD, SST, c)
    }
    return 0;
}

/* Weight-gradient chunk for filters [f0, f1) (f0 a multiple of 32): V of the chunk's tiles and
 * dM = the adjoint of the output transform (zero past OH/OW), then dU[s] (+)= V[s]^T dM[s]. */
static inline __attribute__((always_inline)) int dw_chunk(const w2_job *j, int64_t t0,
                                                          int64_t rows, int64_t f0, int64_t f1,
                                                          float *s, float *du, int first) {
    const nnc_conv2d_geom *g = j->g;
    const int64_t C = g->C, F = g->F, Fp = pad32(F), RT = j->RT, OH = g->OH, OW = g->OW;
    const int64_t TT = j->TH * j->TW, fe = f1 == F ? Fp : f1;
    const int64_t xs = bstride(RT, F);
    float *V = s, *DM = s + region_a(RT, C), *zero = DM + 16 * xs;
    for (int64_t r = 0; r < rows; r++) {
        const float *pin[25];
        float *pv[25];
        s2_ptrs(j, t0 + r, r, V, zero, pin, pv);
        s2_in_tile(pin, pv, C);
        const int64_t t = t0 + r, n = t / TT, th = (t % TT) / j->TW, tw = t % j->TW;
        const int64_t oh = 2 * th, ow = 2 * tw;
        const float *dzn = j->dz + n * OH * OW * F;
        const float *py[4];
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++)
                py[a * 2 + b] =
                    (oh + a < OH && ow + b < OW) ? dzn + ((oh + a) * OW + ow + b) * F : zero;
        float *q = DM + r * Fp;
#define S2_DM_BODY(T, LD, ST, f)                                                               \
    {                                                                                          \
        T y00 = LD(py[0] + f), y01 = LD(py[1] + f), y10 = LD(py[2] + f), y11 = LD(py[3] + f);  \
        T r00 = y00, r01 = y01, r10 = y00 + y10, r11 = y01 + y11, r20 = y10, r21 = y11;        \
        ST(q + 0 * xs + f, r00); ST(q + 1 * xs + f, r00 + r01); ST(q + 2 * xs + f, r01);       \
        ST(q + 3 * xs + f, r10); ST(q + 4 * xs + f, r10 + r11); ST(q + 5 * xs + f, r11);       \
        ST(q + 6 * xs + f, r20); ST(q + 7 * xs + f, r20 + r21); ST(q + 8 * xs + f, r21);       \
    }
        int64_t f = f0;
        for (; f + 16 <= f1; f += 16) S2_DM_BODY(vf16, VLD, VST, f)
        for (; f < f1; f++) S2_DM_BODY(float, SLD, SST, f)
        for (; f < fe; f++)
            for (int sl = 0; sl < 9; sl++) q[sl * xs + f] = 0.f;
    }
    for (int sl = 0; sl < 9; sl++) {
        const int64_t K = width(sl) * C;
        int st = nnc_sgemm(1, 0, K, fe - f0, rows, 1.f, V + OFF[sl] * RT * C + sl * SKEW, K,
                           DM + sl * xs + f0, Fp, first ? 0.f : 1.f,
                           du + OFF[sl] * C * Fp + f0, Fp, NULL, 1);
        if (st) return st;
    }
    return 0;
}

/* One instance of the chunk functions per ISA. */
#define W2_INSTANCES(SUFFIX, TARGET)                                                           \
    TARGET static int fwd_chunk_##SUFFIX(const w2_job *j, int64_t t0, int64_t rows, float *s,  \
                                         int gt) {                                             \
        return fwd_chunk(j, t0, rows, s, gt);                                                  \
    }                                                                                          \
    TARGET static int dx_chunk_##SUFFIX(const w2_job *j, int64_t t0, int64_t rows, float *s,   \
                                        int gt) {                                              \
        return dx_chunk(j, t0, rows, s, gt);                                                   \
    }                                                                                          \
    TARGET static int dw_chunk_##SUFFIX(const w2_job *j, int64_t t0, int64_t rows, int64_t f0, \
                                        int64_t f1, float *s, float *du, int first) {          \
        return dw_chunk(j, t0, rows, f0, f1, s, du, first);                                    \
    }
W2_INSTANCES(generic, )
#if NNC_X86
W2_INSTANCES(avx2, NNC_TARGET_AVX2)
W2_INSTANCES(avx512, NNC_TARGET_AVX512)
#endif

/* A job over tiles of TH x TW per image; the chunk functions for the ISA in use (fwd: 0 the
 * forward, 1 backward data). */
static void job_init(w2_job *j, const nnc_wino2 *w, const nnc_conv2d_geom *g, int64_t N,
                     int64_t TH, int64_t TW, int bwd_data) {
    memset(j, 0, sizeof(*j));
    j->g = g;
    j->w = w;
    j->RT = chunk_tiles(g->C, g->F);
    j->TH = TH;
    j->TW = TW;
    j->tiles = N * TH * TW;
    j->fn = bwd_data ? dx_chunk_generic : fwd_chunk_generic;
    j->fg = dw_chunk_generic;
#if NNC_X86
    if (nnc_isa() == NNC_ISA_AVX2) {
        j->fn = bwd_data ? dx_chunk_avx2 : fwd_chunk_avx2;
        j->fg = dw_chunk_avx2;
    } else if (nnc_isa() == NNC_ISA_AVX512) {
        j->fn = bwd_data ? dx_chunk_avx512 : fwd_chunk_avx512;
        j->fg = dw_chunk_avx512;
    }
#endif
}

static void clear_tail(const nnc_conv2d_geom *g, float *scratch, int T) {
    const size_t per = nnc_wino2_scratch(g), body = per - 2 * (size_t)zrow(g);
    for (int t = 0; t < T; t++) memset(scratch + t * per + body, 0, 2 * zrow(g) * sizeof(float));
}

static int chunk(const void *ctx, int64_t ch, float *s, int gt) {
    const w2_job *j = (const w2_job *)ctx;
    return j->fn(j, ch * j->RT, NNC_MIN(j->RT, j->tiles - ch * j->RT), s, gt);
}

/* Chunks of RT tiles; each tile's outputs are its own. */
static int run_chunks(const w2_job *j, double flops, float *scratch, int nthreads) {
    const int64_t nchunks = (j->tiles + j->RT - 1) / j->RT;
    const int T = conv_threads(nthreads, flops, nchunks);
    clear_tail(j->g, scratch, conv_chunk_threads(nchunks, T));
    return conv_run_chunks(nchunks, T, scratch, nnc_wino2_scratch(j->g), chunk, j, nthreads);
}

static double conv_flops(const nnc_conv2d_geom *g, int64_t N) {
    return 2.0 * N * g->OH * g->OW * 9 * g->C * g->F;
}

int nnc_wino2_forward(const nnc_wino2 *w, const nnc_conv2d_geom *g, const float *x, int64_t N,
                      const nnc_epilogue *ep, float *y, float *scratch, int nthreads) {
    w2_job j;
    job_init(&j, w, g, N, (g->OH + 1) / 2, (g->OW + 1) / 2, 0);
    j.x = x;
    j.y = y;
    j.bias = ep ? ep->bias : NULL;
    const int act = ep ? ep->act : NNC_ACT_LINEAR;
    j.neg = act == NNC_ACT_LINEAR ? 1.f : (act == NNC_ACT_LEAKY_RELU ? ep->alpha : 0.f);
    j.hi = act == NNC_ACT_RELU6 ? 6.f : __builtin_inff();
    j.act = act != NNC_ACT_LINEAR;
    return run_chunks(&j, conv_flops(g, N), scratch, nthreads);
}

int nnc_wino2_backward_data(const nnc_wino2 *w, const nnc_conv2d_geom *g, const float *dz,
                            int64_t N, float *dx, float *scratch, int nthreads) {
    w2_job j;
    job_init(&j, w, g, N, (g->H + g->pt + 3) / 4, (g->W + g->pl + 3) / 4, 1);
    j.x = dz;
    j.y = dx;
    return run_chunks(&j, conv_flops(g, N), scratch, nthreads);
}

/* Channel c of dW: the slices' dU summed in slice order, then dW[a][b] = sum over entries
 * (p, q) of GT[p][a] GT[q][b] dU[p][q]. */
static void du_to_dw(const nnc_wino2 *w, int64_t S, int64_t c, float *dw) {
    const int64_t C = w->C, F = w->F, Fp = pad32(F), slice = 25 * C * Fp;
    float *du = w->du;
    for (int64_t sl = 1; sl < S; sl++)
        for (int64_t e = 0; e < 25; e++) {
            float *d = du + (e * C + c) * Fp;
            const float *o = d + sl * slice;
            for (int64_t f = 0; f < F; f++) d[f] += o[f];
        }
    const float *row[25];
    for (int p = 0; p < 5; p++)
        for (int q = 0; q < 5; q++) {
            const int s = eslot(p, q);
            row[p * 5 + q] = du + ((OFF[s] + ecol(p, q)) * C + c) * Fp;
        }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            float *d = dw + ((a * 3 + b) * C + c) * F;
            for (int64_t f = 0; f < F; f++) d[f] = 0.f;
            for (int e = 0; e < 25; e++) { /* GT is 0/1 */
                if (GT[e / 5][a] * GT[e % 5][b] == 0.f) continue;
                for (int64_t f = 0; f < F; f++) d[f] += row[e][f];
            }
        }
}

/* Slice sl of dU for filter panels [b0, b1): its chunks of tiles in order. */
static int dw_slice(void *ctx, int64_t sl, int64_t b0, int64_t b1, float *sc) {
    const w2_job *j = (const w2_job *)ctx;
    const int64_t N = j->tiles / (j->TH * j->TW), TT = j->TH * j->TW, S = j->S;
    const int64_t C = j->g->C, F = j->g->F, f0 = b0 * 32, f1 = NNC_MIN(F, b1 * 32);
    const int64_t ta = N * sl / S * TT, tb = N * (sl + 1) / S * TT;
    float *du = j->w->du + sl * 25 * C * pad32(F);
    for (int64_t t0 = ta; t0 < tb; t0 += j->RT) {
        int st = j->fg(j, t0, NNC_MIN(j->RT, tb - t0), f0, f1, sc, du, t0 == ta);
        if (st) return st;
    }
    return 0;
}

static void dw_fin(void *ctx, int64_t c) {
    const w2_job *j = (const w2_job *)ctx;
    du_to_dw(j->w, j->S, c, j->dw);
}

int nnc_wino2_backward_weights(const nnc_wino2 *w, const nnc_conv2d_geom *g, const float *x,
                               const float *dz, int64_t N, float *dw, float *scratch,
                               int nthreads) {
    w2_job j;
    job_init(&j, w, g, N, (g->OH + 1) / 2, (g->OW + 1) / 2, 0);
    j.x = x;
    j.dz = dz;
    j.dw = dw;
    /* S image slices fixed by the batch, each into its own dU; threads take whole slices, or
     * (more threads than slices) 32-filter panels of a slice. */
    j.S = NNC_MIN(N, WINO2_SLICES);
    const int64_t blocks = pad32(g->F) / 32;
    int T = conv_threads(nthreads, conv_flops(g, N), j.S * blocks);
    if (T > j.S * blocks) T = (int)(j.S * blocks);
    clear_tail(g, scratch, T);
    return conv_run_slices(j.S, blocks, T, scratch, nnc_wino2_scratch(g), dw_slice, dw_fin, g->C,
                           &j);
}
