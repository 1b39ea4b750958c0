/* Vector elementwise kernels written once for any SIMD width; included by
 * csrc/kernels/avx2/vmath.c and csrc/kernels/avx512/vmath.c after they define:
 *   VF, VL                      vector type and lanes
 *   VLOAD VSTORE VSET1 VADD VSUB VMUL VDIV VFMA(a,b,c)=a*b+c VMAX VMIN VZERO VABS
 *   VSEL(op, a, b, t, f)        (a op b) ? t : f, op a _CMP_* predicate
 *   VEXP VEXPM1 VSIGMOID VTANH VLOG1P01 VNCDF_HALF VNPDF   (vmath_<isa>.h)
 *   VDACC(acc0, acc1, v)        add v's lanes into two double vectors; VDSUM(acc0, acc1)
 *   VHMAX(v)                    horizontal max
 *   VLOAD_TAIL(p, r) VSTORE_TAIL(p, v, r) VMASKZ(v, r)   first r < VL lanes (masked, no faults)
 *   TARGET, FN(name)            function attribute and name suffix
 *
 * Layout: contiguous arrays, any alignment (loadu/storeu) and length. The tail is a masked
 * load/store through the same vector code, so an element's result does not depend on where it
 * sits in the array or where a thread split falls. */
#include <math.h>
#include <string.h>

/* y[i] = EXPR(v) with v = x[i]; the tail is a masked load (zeros in the unused lanes) */
#define MAP1(x, y, n, EXPR)                                                                         \
    do {                                                                                            \
        int64_t i_ = 0;                                                                             \
        for (; i_ + VL <= (n); i_ += VL) {                                                          \
            VF v = VLOAD((x) + i_);                                                                 \
            VSTORE((y) + i_, (EXPR));                                                               \
        }                                                                                           \
        if (i_ < (n)) {                                                                             \
            int r_ = (int)((n) - i_);                                                               \
            VF v = VLOAD_TAIL((x) + i_, r_);                                                        \
            VSTORE_TAIL((y) + i_, (EXPR), r_);                                                      \
        }                                                                                           \
    } while (0)

/* dx[i] = EXPR(xv, yv, g) with xv = x[i] (only if NEEDX), yv = y[i], g = dy[i] */
#define MAPB(NEEDX, EXPR)                                                                           \
    do {                                                                                            \
        int64_t i_ = 0;                                                                             \
        VF xv = VZERO;                                                                              \
        for (; i_ + VL <= n; i_ += VL) {                                                            \
            if (NEEDX) xv = VLOAD(x + i_);                                                          \
            VF yv = VLOAD(y + i_), g = VLOAD(dy + i_);                                              \
            (void)xv; (void)yv;                                                                     \
            VSTORE(dx + i_, (EXPR));                                                                \
        }                                                                                           \
        if (i_ < n) {                                                                               \
            int r_ = (int)(n - i_);                                                                 \
            if (NEEDX) xv = VLOAD_TAIL(x + i_, r_);                                                 \
            VF yv = VLOAD_TAIL(y + i_, r_), g = VLOAD_TAIL(dy + i_, r_);                            \
            (void)xv; (void)yv;                                                                     \
            VSTORE_TAIL(dx + i_, (EXPR), r_);                                                       \
        }                                                                                           \
    } while (0)

static TARGET void FN(vexp)(const float *x, float *y, int64_t n) { MAP1(x, y, n, VEXP(v)); }
static TARGET void FN(vsigmoid)(const float *x, float *y, int64_t n) { MAP1(x, y, n, VSIGMOID(v)); }
static TARGET void FN(vtanh)(const float *x, float *y, int64_t n) { MAP1(x, y, n, VTANH(v)); }

static inline TARGET VF FN(softplus1)(VF v) {
    return VADD(VMAX(VZERO, v), VLOG1P01(VEXP(VSUB(VZERO, VABS(v)))));
}

static inline TARGET VF FN(gelu1)(VF v) {
    VF h = VNCDF_HALF(v);
    return VMUL(v, VSEL(_CMP_LT_OQ, v, VZERO, h, VSUB(VSET1(1.0f), h)));
}

/* gelu'(x) = Phi(x) + x*pdf(x); Phi = y/x from the forward output (0.5 where |x| is tiny), so
 * the backward pass needs one exp instead of the erfc evaluation. */
static inline TARGET VF FN(dgelu1)(VF v, VF y) {
    VF cdf = VSEL(_CMP_GT_OQ, VABS(v), VSET1(1e-20f), VDIV(y, v), VSET1(0.5f));
    return VFMA(v, VNPDF(v), cdf);
}

static TARGET void FN(act_fwd)(int act, float alpha, const float *x, float *y, int64_t n) {
    const VF one = VSET1(1.0f), a = VSET1(alpha);
    switch (act) {
    case NNC_ACT_RELU: MAP1(x, y, n, VMAX(VZERO, v)); break;
    case NNC_ACT_SIGMOID: MAP1(x, y, n, VSIGMOID(v)); break;
    case NNC_ACT_TANH: MAP1(x, y, n, VTANH(v)); break;
    case NNC_ACT_LEAKY_RELU: MAP1(x, y, n, VSEL(_CMP_GE_OQ, v, VZERO, v, VMUL(a, v))); break;
    case NNC_ACT_ELU: MAP1(x, y, n, VSEL(_CMP_GT_OQ, v, VZERO, v, VMUL(a, VEXPM1(v)))); break;
    case NNC_ACT_GELU: MAP1(x, y, n, FN(gelu1)(v)); break;
    case NNC_ACT_SWISH: MAP1(x, y, n, VMUL(v, VSIGMOID(v))); break;
    case NNC_ACT_SOFTPLUS: MAP1(x, y, n, FN(softplus1)(v)); break;
    case NNC_ACT_SELU:
        MAP1(x, y, n,
             VSEL(_CMP_GT_OQ, v, VZERO, VMUL(VSET1(NNC_SELU_SCALE), v),
                  VMUL(VSET1(NNC_SELU_SCALE * NNC_SELU_ALPHA), VEXPM1(v))));
        break;
    case NNC_ACT_RELU6: MAP1(x, y, n, VMIN(VSET1(6.0f), VMAX(VZERO, v))); break;
    case NNC_ACT_HARD_SIGMOID:
        MAP1(x, y, n,
             VMUL(VMIN(VSET1(6.0f), VMAX(VZERO, VADD(v, VSET1(3.0f)))), VSET1(1.0f / 6.0f)));
        break;
    case NNC_ACT_SOFTSIGN: MAP1(x, y, n, VDIV(v, VADD(one, VABS(v)))); break;
    default:
        if (y != x) memmove(y, x, (size_t)n * sizeof(float));
        break;
    }
}

static TARGET void FN(act_bwd)(int act, float alpha, const float *x, const float *y,
                               const float *dy, float *dx, int64_t n) {
    const VF one = VSET1(1.0f), a = VSET1(alpha);
    switch (act) {
    case NNC_ACT_RELU: MAPB(0, VSEL(_CMP_GT_OQ, yv, VZERO, g, VZERO)); break;
    case NNC_ACT_SIGMOID: MAPB(0, VMUL(g, VMUL(yv, VSUB(one, yv)))); break;
    case NNC_ACT_TANH: MAPB(0, VMUL(g, VSUB(one, VMUL(yv, yv)))); break;
    case NNC_ACT_LEAKY_RELU: MAPB(0, VSEL(_CMP_GT_OQ, yv, VZERO, g, VMUL(a, g))); break;
    case NNC_ACT_ELU: MAPB(0, VSEL(_CMP_GT_OQ, yv, VZERO, g, VMUL(g, VADD(yv, a)))); break;
    case NNC_ACT_GELU: MAPB(1, VMUL(g, FN(dgelu1)(xv, yv))); break;
    case NNC_ACT_SWISH:
        /* s*(1 + x*(1-s)) */
        MAPB(1, ({
                 VF s_ = VSIGMOID(xv);
                 VMUL(g, VMUL(s_, VFMA(xv, VSUB(one, s_), one)));
             }));
        break;
    case NNC_ACT_SOFTPLUS: MAPB(0, VMUL(g, VSUB(VZERO, VEXPM1(VSUB(VZERO, yv))))); break;
    case NNC_ACT_SELU:
        MAPB(0, VSEL(_CMP_GT_OQ, yv, VZERO, VMUL(VSET1(NNC_SELU_SCALE), g),
                     VMUL(g, VADD(yv, VSET1(NNC_SELU_SCALE * NNC_SELU_ALPHA)))));
        break;
    case NNC_ACT_RELU6:
        MAPB(0, VSEL(_CMP_GT_OQ, yv, VZERO, VSEL(_CMP_LT_OQ, yv, VSET1(6.0f), g, VZERO), VZERO));
        break;
    case NNC_ACT_HARD_SIGMOID:
        MAPB(0, VSEL(_CMP_GT_OQ, yv, VZERO,
                     VSEL(_CMP_LT_OQ, yv, one, VMUL(g, VSET1(1.0f / 6.0f)), VZERO), VZERO));
        break;
    case NNC_ACT_SOFTSIGN:
        MAPB(0, ({
                 VF t_ = VSUB(one, VABS(yv));
                 VMUL(g, VMUL(t_, t_));
             }));
        break;
    default:
        if (dx != dy) memmove(dx, dy, (size_t)n * sizeof(float));
        break;
    }
}

static TARGET float FN(row_max)(const float *x, int64_t n) {
    VF vm = VSET1(x[0]);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) vm = VMAX(vm, VLOAD(x + i));
    if (i < n) { /* unused lanes repeat x[0] */
        int r = (int)(n - i);
        vm = VMAX(vm, VBLEND_TAIL(VSET1(x[0]), VLOAD_TAIL(x + i, r), r));
    }
    return VHMAX(vm);
}

/* sum of e^(x - shift) accumulated in double (lanes, then a fixed horizontal order) */
static TARGET float FN(exp_shift_sum)(const float *x, float shift, float *e, int64_t n) {
    const VF sh = VSET1(shift);
    __typeof__(VDZERO) a0 = VDZERO, a1 = VDZERO;
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        VF v = VEXP(VSUB(VLOAD(x + i), sh));
        if (e) VSTORE(e + i, v);
        VDACC(a0, a1, v);
    }
    if (i < n) {
        int r = (int)(n - i);
        VF v = VMASKZ(VEXP(VSUB(VLOAD_TAIL(x + i, r), sh)), r); /* unused lanes add 0 */
        if (e) VSTORE_TAIL(e + i, v, r);
        VDACC(a0, a1, v);
    }
    return (float)VDSUM(a0, a1);
}

static TARGET void FN(scale_row)(float *y, float r, int64_t n) {
    const VF vr = VSET1(r);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) VSTORE(y + i, VMUL(VLOAD(y + i), vr));
    if (i < n) VSTORE_TAIL(y + i, VMUL(VLOAD_TAIL(y + i, (int)(n - i)), vr), (int)(n - i));
}

static TARGET void FN(softmax_row)(const float *x, float *y, int64_t n) {
    float m = FN(row_max)(x, n);
    float s = FN(exp_shift_sum)(x, m, y, n);
    FN(scale_row)(y, 1.0f / s, n);
}

static TARGET void FN(softmax_bwd_row)(const float *y, const float *dy, float *dx, int64_t n) {
    __typeof__(VDZERO) a0 = VDZERO, a1 = VDZERO;
    int64_t i = 0;
    for (; i + VL <= n; i += VL) VDACC(a0, a1, VMUL(VLOAD(dy + i), VLOAD(y + i)));
    int r = (int)(n - i);
    if (r) VDACC(a0, a1, VMUL(VLOAD_TAIL(dy + i, r), VLOAD_TAIL(y + i, r)));
    const VF vd = VSET1((float)VDSUM(a0, a1));
    for (i = 0; i + VL <= n; i += VL)
        VSTORE(dx + i, VMUL(VLOAD(y + i), VSUB(VLOAD(dy + i), vd)));
    if (r) VSTORE_TAIL(dx + i, VMUL(VLOAD_TAIL(y + i, r), VSUB(VLOAD_TAIL(dy + i, r), vd)), r);
}

static inline TARGET void FN(bce1)(VF z, VF t, VF c1, VF c0, VF *l, VF *g) {
    const VF one = VSET1(1.0f);
    VF tt = VFMA(t, c1, c0);
    VF e = VEXP(VSUB(VZERO, VABS(z)));
    *l = VADD(VSUB(VMAX(VZERO, z), VMUL(z, tt)), VLOG1P01(e));
    VF sm = VDIV(e, VADD(one, e)); /* sigmoid(-|z|) */
    *g = VSEL(_CMP_GE_OQ, z, VZERO, VSUB(VSUB(one, tt), sm), VSUB(sm, tt));
}

static TARGET void FN(bce_logits)(const float *z, const float *t, float c1, float c0, float *l,
                                  float *g, int64_t n) {
    const VF vc1 = VSET1(c1), vc0 = VSET1(c0);
    VF lv, gv;
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        FN(bce1)(VLOAD(z + i), VLOAD(t + i), vc1, vc0, &lv, &gv);
        VSTORE(l + i, lv);
        if (g) VSTORE(g + i, gv);
    }
    if (i < n) {
        int r = (int)(n - i);
        FN(bce1)(VLOAD_TAIL(z + i, r), VLOAD_TAIL(t + i, r), vc1, vc0, &lv, &gv);
        VSTORE_TAIL(l + i, lv, r);
        if (g) VSTORE_TAIL(g + i, gv, r);
    }
}

/* ---- optimizer steps: same formulas and operation order as nnc_*__generic (elem/optim.c) */

/* BODY uses LOADR(ptr) / STORER(ptr, v); the tail pass masks both to the first r lanes */
#define OPT_LOOP(BODY)                                                                              \
    do {                                                                                            \
        int64_t i = 0;                                                                              \
        for (; i + VL <= n; i += VL) {                                                              \
            const int tail_ = 0, r = VL;                                                            \
            BODY                                                                                    \
        }                                                                                           \
        if (i < n) {                                                                                \
            const int tail_ = 1, r = (int)(n - i);                                                  \
            BODY                                                                                    \
        }                                                                                           \
    } while (0)
#define LOADR(ptr) (tail_ ? VLOAD_TAIL((ptr), r) : VLOAD(ptr))
#define STORER(ptr, v)                                                                              \
    do {                                                                                            \
        if (tail_) VSTORE_TAIL((ptr), (v), r);                                                      \
        else VSTORE((ptr), (v));                                                                    \
    } while (0)

static TARGET void FN(sgd)(float *p, const float *g, float *m, int64_t n, float lr, float mom,
                           int nesterov, float wd) {
    const VF vlr = VSET1(lr), vmom = VSET1(mom), vwd = VSET1(wd);
#define SGD_BODY                                                                                    \
    {                                                                                               \
        VF pi = LOADR(p + i), gi = LOADR(g + i);                                                    \
        if (wd != 0.0f) pi = VSUB(pi, VMUL(VMUL(pi, vwd), vlr));                                    \
        if (m) {                                                                                    \
            VF mi = VSUB(VMUL(LOADR(m + i), vmom), VMUL(gi, vlr));                                  \
            STORER(m + i, mi);                                                                      \
            pi = nesterov ? VADD(pi, VSUB(VMUL(mi, vmom), VMUL(gi, vlr))) : VADD(pi, mi);           \
        } else {                                                                                    \
            pi = VSUB(pi, VMUL(gi, vlr));                                                           \
        }                                                                                           \
        STORER(p + i, pi);                                                                          \
    }
    OPT_LOOP(SGD_BODY);
#undef SGD_BODY
}

static TARGET void FN(adam)(float *p, const float *g, float *m, float *v, float *vmax, int64_t n,
                            float lr, float alpha, float ob1, float ob2, float eps, float wd) {
    const VF vlr = VSET1(lr), va = VSET1(alpha), vb1 = VSET1(ob1), vb2 = VSET1(ob2);
    const VF veps = VSET1(eps), vwd = VSET1(wd);
#define ADAM_BODY                                                                                   \
    {                                                                                               \
        VF pi = LOADR(p + i), gi = LOADR(g + i);                                                    \
        if (wd != 0.0f) pi = VSUB(pi, VMUL(VMUL(pi, vwd), vlr));                                    \
        VF mi = LOADR(m + i), vi = LOADR(v + i);                                                    \
        mi = VADD(mi, VMUL(VSUB(gi, mi), vb1));                                                     \
        vi = VADD(vi, VMUL(VSUB(VMUL(gi, gi), vi), vb2));                                           \
        STORER(m + i, mi);                                                                          \
        STORER(v + i, vi);                                                                          \
        if (vmax) {                                                                                 \
            vi = VMAX(vi, LOADR(vmax + i));                                                         \
            STORER(vmax + i, vi);                                                                   \
        }                                                                                           \
        pi = VSUB(pi, VDIV(VMUL(mi, va), VADD(VSQRT(vi), veps)));                                   \
        STORER(p + i, pi);                                                                          \
    }
    OPT_LOOP(ADAM_BODY);
#undef ADAM_BODY
}

static TARGET void FN(rmsprop)(float *p, const float *g, float *v, float *m, float *mg, int64_t n,
                               float lr, float rho, float mom, float eps, float wd) {
    const VF vlr = VSET1(lr), vrho = VSET1(rho), vorho = VSET1(1.0f - rho), vmom = VSET1(mom);
    const VF veps = VSET1(eps), vwd = VSET1(wd);
#define RMS_BODY                                                                                    \
    {                                                                                               \
        VF pi = LOADR(p + i), gi = LOADR(g + i);                                                    \
        if (wd != 0.0f) pi = VSUB(pi, VMUL(VMUL(pi, vwd), vlr));                                    \
        VF vi = VADD(VMUL(vrho, LOADR(v + i)), VMUL(vorho, VMUL(gi, gi)));                          \
        STORER(v + i, vi);                                                                          \
        VF den;                                                                                     \
        if (mg) {                                                                                   \
            VF a = VADD(VMUL(vrho, LOADR(mg + i)), VMUL(vorho, gi));                                \
            STORER(mg + i, a);                                                                      \
            den = VADD(VSUB(vi, VMUL(a, a)), veps);                                                 \
        } else {                                                                                    \
            den = VADD(vi, veps);                                                                   \
        }                                                                                           \
        VF inc = VDIV(VMUL(vlr, gi), VSQRT(den));                                                   \
        if (m) {                                                                                    \
            VF mi = VADD(VMUL(vmom, LOADR(m + i)), inc);                                            \
            STORER(m + i, mi);                                                                      \
            pi = VSUB(pi, mi);                                                                      \
        } else {                                                                                    \
            pi = VSUB(pi, inc);                                                                     \
        }                                                                                           \
        STORER(p + i, pi);                                                                          \
    }
    OPT_LOOP(RMS_BODY);
#undef RMS_BODY
}

static void FN(fill)(nnc_elem_kernels *k) {
    k->sgd = FN(sgd);
    k->adam = FN(adam);
    k->rmsprop = FN(rmsprop);
    k->bce_logits = FN(bce_logits);
    k->vexp = FN(vexp);
    k->vsigmoid = FN(vsigmoid);
    k->vtanh = FN(vtanh);
    k->act_fwd = FN(act_fwd);
    k->act_bwd = FN(act_bwd);
    k->softmax_row = FN(softmax_row);
    k->softmax_bwd_row = FN(softmax_bwd_row);
    k->row_max = FN(row_max);
    k->exp_shift_sum = FN(exp_shift_sum);
}
