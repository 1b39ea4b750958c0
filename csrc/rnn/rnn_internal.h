/* Internal to the recurrent area: the per-ISA table of fused gate kernels (rnn_gates_tmpl.h). */
#ifndef NNCORE_RNN_INTERNAL_H
#define NNCORE_RNN_INTERNAL_H
#include <stdint.h>

typedef struct {
    void (*lstm_fwd)(int64_t rows, int64_t H, int act, int ract, float *g, const float *cp,
                     float *c, float *tc, float *h);
    void (*lstm_bwd)(int64_t rows, int64_t H, int act, int ract, const float *g, const float *cp,
                     const float *tc, const float *dh, const float *dy, int64_t ldy, float *dc,
                     float *dg);
    void (*gru_fwd)(int64_t rows, int64_t H, int act, int ract, float *g, const float *gh,
                    const float *hp, float *ghh, float *h);
    void (*gru_bwd)(int64_t rows, int64_t H, int act, int ract, const float *g, const float *ghh,
                    const float *hp, const float *dh, const float *dy, int64_t ldy, float *dgx,
                    float *dgh, float *dhp);
    void (*gru2_fwd1)(int64_t rows, int64_t H, int ract, float *g, const float *hp, float *rh);
    void (*gru2_fwd2)(int64_t rows, int64_t H, int act, float *g, const float *hp, float *h);
    void (*gru2_bwd1)(int64_t rows, int64_t H, int act, int ract, const float *g, const float *hp,
                      const float *dh, const float *dy, int64_t ldy, float *dg, float *dhp);
    void (*gru2_bwd2)(int64_t rows, int64_t H, int ract, const float *g, const float *hp,
                      const float *drh, float *dg, float *dhp);
    void (*simple_fwd)(int64_t rows, int64_t H, int act, float *g, float *h);
    void (*simple_bwd)(int64_t rows, int64_t H, int act, const float *hcur, const float *dh,
                       const float *dy, int64_t ldy, float *dg);
    void (*rowsum)(int64_t rows, int64_t cols, const float *x, float *part);
    void (*act)(int act, float *x, int64_t n);
} nnc_rnn_kernels;

extern const nnc_rnn_kernels nnc_rnn_kernels__generic;
extern const nnc_rnn_kernels nnc_rnn_kernels__avx2;
extern const nnc_rnn_kernels nnc_rnn_kernels__avx512;

#endif
