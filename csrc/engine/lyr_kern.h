/* Bodies of the layer kernels, included once per ISA by norm.c with KSFX (name suffix) and
 * KATTR (target attribute) defined. Plain loops for the auto-vectoriser; see lyr_internal.h. */
#define KCAT2(a, b) a##__##b
#define KCAT(a, b) KCAT2(a, b)
#define KFN(name) KCAT(name, KSFX)

static KATTR void KFN(drop_fwd)(const float *restrict x, float *restrict y, uint8_t *restrict m,
                                int64_t n, uint32_t j0, uint32_t klo, uint32_t khi, uint32_t thr,
                                float scale) {
    /* two simple loops per L1-sized block (the fused loop does not vectorise) */
    for (int64_t b = 0; b < n; b += 1024) {
        int64_t e = n - b < 1024 ? n - b : 1024;
        uint8_t *mb = m + b;
        for (int64_t i = 0; i < e; i++) mb[i] = lyr_hash(j0 + (uint32_t)(b + i), klo, khi) >= thr;
        if (x)
            for (int64_t i = 0; i < e; i++) y[b + i] = x[b + i] * ((float)mb[i] * scale);
    }
}

static KATTR void KFN(mask_mul)(const float *restrict x, const uint8_t *restrict m,
                                float *restrict y, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * ((float)m[i] * scale);
}

static KATTR void KFN(col_sum)(const float *restrict x, int64_t rows, int64_t C,
                               double *restrict acc) {
    for (int64_t c = 0; c < C; c++) acc[c] = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        for (int64_t c = 0; c < C; c++) acc[c] += (double)xr[c];
    }
}

static KATTR void KFN(col_sqdev)(const float *restrict x, int64_t rows, int64_t C,
                                 const double *restrict mean, double *restrict acc) {
    for (int64_t c = 0; c < C; c++) acc[c] = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        for (int64_t c = 0; c < C; c++) {
            double d = (double)xr[c] - mean[c];
            acc[c] += d * d;
        }
    }
}

static KATTR void KFN(col_affine)(const float *restrict x, float *restrict y, int64_t rows,
                                  int64_t C, const float *restrict a, const float *restrict b) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        for (int64_t c = 0; c < C; c++) yr[c] = xr[c] * a[c] + b[c];
    }
}

static KATTR void KFN(col_standardize)(const float *restrict x, float *restrict y, int64_t rows,
                                       int64_t C, const float *restrict m,
                                       const float *restrict s) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - m[c]) / s[c];
    }
}

static KATTR void KFN(bn_bwd_sums)(const float *restrict x, const float *restrict dy, int64_t rows,
                                   int64_t C, const float *restrict mean,
                                   const float *restrict inv, double *restrict sdy,
                                   double *restrict sdyx) {
    for (int64_t c = 0; c < C; c++) sdy[c] = sdyx[c] = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C, *gr = dy + r * C;
        for (int64_t c = 0; c < C; c++) {
            float xh = (xr[c] - mean[c]) * inv[c];
            sdy[c] += (double)gr[c];
            sdyx[c] += (double)(gr[c] * xh);
        }
    }
}

static KATTR void KFN(bn_dx)(const float *restrict x, const float *restrict dy,
                             float *restrict dx, int64_t rows, int64_t C, const float *restrict A,
                             const float *restrict B, const float *restrict M,
                             const float *restrict D) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C, *gr = dy + r * C;
        float *dr = dx + r * C;
        for (int64_t c = 0; c < C; c++) dr[c] = A[c] * gr[c] + B[c] * (xr[c] - M[c]) + D[c];
    }
}

/* Sum of 8 fixed lanes then the tail: vectorisable without reassociation, same order on all
 * ISAs. */
static inline KATTR double KFN(row_sum)(const float *restrict x, int64_t C) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, t = 0.0;
    int64_t c = 0;
    for (; c + 8 <= C; c += 8)
        for (int l = 0; l < 8; l++) s[l] += (double)x[c + l];
    for (; c < C; c++) t += (double)x[c];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + t;
}

static KATTR void KFN(ln_fwd_row)(const float *restrict x, float *restrict y, int64_t C, float eps,
                                  const float *restrict g, const float *restrict b,
                                  float *mean_out, float *inv_out) {
    double mean = KFN(row_sum)(x, C) / (double)C;
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, t = 0.0;
    int64_t c = 0;
    for (; c + 8 <= C; c += 8)
        for (int l = 0; l < 8; l++) {
            double d = (double)x[c + l] - mean;
            s[l] += d * d;
        }
    for (; c < C; c++) {
        double d = (double)x[c] - mean;
        t += d * d;
    }
    double var = (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + t) / (double)C;
    float m = (float)mean, inv = (float)(1.0 / sqrt(var + (double)eps));
    *mean_out = m;
    *inv_out = inv;
    if (g && b)
        for (c = 0; c < C; c++) y[c] = (x[c] - m) * inv * g[c] + b[c];
    else if (g)
        for (c = 0; c < C; c++) y[c] = (x[c] - m) * inv * g[c];
    else if (b)
        for (c = 0; c < C; c++) y[c] = (x[c] - m) * inv + b[c];
    else
        for (c = 0; c < C; c++) y[c] = (x[c] - m) * inv;
}

static KATTR void KFN(ln_bwd_row)(const float *restrict x, const float *restrict dy,
                                  float *restrict dx, int64_t C, const float *restrict g,
                                  float mean, float inv) {
    double s1[8] = {0, 0, 0, 0, 0, 0, 0, 0}, s2[8] = {0, 0, 0, 0, 0, 0, 0, 0}, t1 = 0.0, t2 = 0.0;
    int64_t c = 0;
    for (; c + 8 <= C; c += 8)
        for (int l = 0; l < 8; l++) {
            float gd = dy[c + l] * g[c + l];
            float xh = (x[c + l] - mean) * inv;
            s1[l] += (double)gd;
            s2[l] += (double)(gd * xh);
        }
    for (; c < C; c++) {
        float gd = dy[c] * g[c];
        float xh = (x[c] - mean) * inv;
        t1 += (double)gd;
        t2 += (double)(gd * xh);
    }
    double m1 = (((s1[0] + s1[1]) + (s1[2] + s1[3])) + ((s1[4] + s1[5]) + (s1[6] + s1[7])) + t1) / (double)C;
    double m2 = (((s2[0] + s2[1]) + (s2[2] + s2[3])) + ((s2[4] + s2[5]) + (s2[6] + s2[7])) + t2) / (double)C;
    float fm1 = (float)m1, fm2 = (float)m2;
    for (c = 0; c < C; c++) {
        float gd = dy[c] * g[c];
        float xh = (x[c] - mean) * inv;
        dx[c] = inv * (gd - fm1 - xh * fm2);
    }
}

static KATTR void KFN(ln_bwd_sums)(const float *restrict x, const float *restrict dy, int64_t rows,
                                   int64_t C, const float *restrict mean,
                                   const float *restrict inv, double *restrict sdy,
                                   double *restrict sdyx) {
    for (int64_t c = 0; c < C; c++) sdy[c] = sdyx[c] = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C, *gr = dy + r * C;
        float m = mean[r], iv = inv[r];
        for (int64_t c = 0; c < C; c++) {
            float xh = (xr[c] - m) * iv;
            sdy[c] += (double)gr[c];
            sdyx[c] += (double)(gr[c] * xh);
        }
    }
}

static void KFN(lyr_fill)(lyr_kernels *k) {
    k->drop_fwd = KFN(drop_fwd);
    k->mask_mul = KFN(mask_mul);
    k->col_sum = KFN(col_sum);
    k->col_sqdev = KFN(col_sqdev);
    k->col_affine = KFN(col_affine);
    k->col_standardize = KFN(col_standardize);
    k->bn_bwd_sums = KFN(bn_bwd_sums);
    k->bn_dx = KFN(bn_dx);
    k->ln_fwd_row = KFN(ln_fwd_row);
    k->ln_bwd_row = KFN(ln_bwd_row);
    k->ln_bwd_sums = KFN(ln_bwd_sums);
}

#undef KCAT2
#undef KCAT
#undef KFN
