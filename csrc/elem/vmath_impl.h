/* Vector elementwise kernels written once for any SIMD width; included by
 * csrc/kernels/avx2/vmath.c and csrc/kernels/avx512/vmath.c after they define:
 *   VF, VL                      vector type and lanes
 *   VLOAD VSTORE VSET1 VADD VSUB VMUL VDIV VFMA(a,b,c)=a*b+c VMAX VMIN VZERO VABS
 *   VSEL(op, a, b, t, f)        (a op b) ? t : f, op a _CMP_* predicate
 *   VEXP VEXPM1 VSIGMOID VTANH VLOG1P01 VNCDF_HALF(x, &pdf)   (vmath_<isa>.h)
 *   VDACC(acc0, acc1, v)        add v's lanes into two double vectors; VDSUM(acc0, acc1)
 *   VHMAX(v)                    horizontal max
 *   TARGET, FN(name)            function attribute and name suffix
 *
 * Layout: contiguous arrays, any alignment (loadu/storeu) and length. The tail goes through a
 * stack buffer and the same vector code, so an element's result does not depend on where it
 * sits in the array or where a thread split falls. */
#include <math.h>
#include <string.h>

/* y[i] = EXPR(v) with v = x[i] */
#define MAP1(x, y, n, EXPR)                                                                       \
    do {                                                                                          \
        int64_t i_ = 0;                                                                           \
        for (; i_ + VL <= (n); i_ += VL) {                                                        \
            VF v = VLOAD((x) + i_);                                                               \
            VSTORE((y) + i_, (EXPR));                                                             \
        }                                                                                         \
        if (i_ < (n)) {                                                                           \
            float bx_[VL], by_[VL];                                                               \
            memset(bx_, 0, sizeof bx_);                                                           \
            memcpy(bx_, (x) + i_, (size_t)((n) - i_) * sizeof(float));                           \
            VF v = VLOAD(bx_);                                                                    \
            VSTORE(by_, (EXPR));                                                                  \
            memcpy((y) + i_, by_, (size_t)((n) - i_) * sizeof(float));                           \
        }                                                                                         \
    } while (0)

/* dx[i] = EXPR(xv, yv, g) with xv = x[i] (only if NEEDX), yv = y[i], g = dy[i] */
#define MAPB(NEEDX, EXPR)                                                                         \
    do {                                                                                          \
        int64_t i_ = 0;                                                                           \
        VF xv = VZERO;                                                                            \
        for (; i_ + VL <= n; i_ += VL) {                                                          \
            if (NEEDX) xv = VLOAD(x + i_);                                                        \
            VF yv = VLOAD(y + i_), g = VLOAD(dy + i_);                                            \
            (void)xv; (void)yv;                                                                   \
            VSTORE(dx + i_, (EXPR));                                                              \
        }                                                                                         \
        if (i_ < n) {                                                                             \
            float bx_[VL], byy_[VL], bg_[VL], bo_[VL];                                            \
            size_t r_ = (size_t)(n - i_) * sizeof(float);                                         \
            memset(bx_, 0, sizeof bx_); memset(byy_, 0, sizeof byy_); memset(bg_, 0, sizeof bg_); \
            if (NEEDX) memcpy(bx_, x + i_, r_);                                                   \
            memcpy(byy_, y + i_, r_);                                                             \
            memcpy(bg_, dy + i_, r_);                                                             \
            xv = VLOAD(bx_);                                                                      \
            VF yv = VLOAD(byy_), g = VLOAD(bg_);                                                  \
            (void)xv; (void)yv;                                                                   \
            VSTORE(bo_, (EXPR));                                                                  \
            memcpy(dx + i_, bo_, r_);                                                             \
        }                                                                                         \
    } while (0)

static TARGET void FN(vexp)(const float *x, float *y, int64_t n) { MAP1(x, y, n, VEXP(v)); }
static TARGET void FN(vsigmoid)(const float *x, float *y, int64_t n) { MAP1(x, y, n, VSIGMOID(v)); }
static TARGET void FN(vtanh)(const float *x, float *y, int64_t n) { MAP1(x, y, n, VTANH(v)); }

static inline TARGET VF FN(softplus1)(VF v) {
    return VADD(VMAX(VZERO, v), VLOG1P01(VEXP(VSUB(VZERO, VABS(v)))));
}

static inline TARGET VF FN(gelu1)(VF v) {
    VF h = VNCDF_HALF(v, NULL);
    return VMUL(v, VSEL(_CMP_LT_OQ, v, VZERO, h, VSUB(VSET1(1.0f), h)));
}

static inline TARGET VF FN(dgelu1)(VF v) {
    VF pdf, h = VNCDF_HALF(v, &pdf);
    VF cdf = VSEL(_CMP_LT_OQ, v, VZERO, h, VSUB(VSET1(1.0f), h));
    return VFMA(v, pdf, cdf);
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
    case NNC_ACT_GELU: MAPB(1, VMUL(g, FN(dgelu1)(xv))); break;
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
    int64_t i = 0;
    float m = x[0];
    if (n >= VL) {
        VF vm = VLOAD(x);
        for (i = VL; i + VL <= n; i += VL) vm = VMAX(vm, VLOAD(x + i));
        m = VHMAX(vm);
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
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
        float bx[VL], by[VL];
        for (int k = 0; k < VL; k++) bx[k] = -INFINITY; /* pads give e^-inf = 0 */
        memcpy(bx, x + i, (size_t)(n - i) * sizeof(float));
        VF v = VEXP(VSUB(VLOAD(bx), sh));
        VSTORE(by, v);
        if (e) memcpy(e + i, by, (size_t)(n - i) * sizeof(float));
        VDACC(a0, a1, v);
    }
    return (float)VDSUM(a0, a1);
}

static TARGET void FN(scale_row)(float *y, float r, int64_t n) {
    const VF vr = VSET1(r);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) VSTORE(y + i, VMUL(VLOAD(y + i), vr));
    for (; i < n; i++) y[i] *= r;
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
    double d = VDSUM(a0, a1);
    for (; i < n; i++) d += (double)dy[i] * y[i];
    const VF vd = VSET1((float)d);
    for (i = 0; i + VL <= n; i += VL)
        VSTORE(dx + i, VMUL(VLOAD(y + i), VSUB(VLOAD(dy + i), vd)));
    for (; i < n; i++) dx[i] = y[i] * (dy[i] - (float)d);
}

static void FN(fill)(nnc_elem_kernels *k) {
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
