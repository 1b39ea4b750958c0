/* Vector types and loads/stores shared by the Winograd transforms (winograd.c, winograd_s2.c). */
#ifndef NNCORE_WINO_VEC_H
#define NNCORE_WINO_VEC_H

/* Explicit 16-float vectors (GCC vector extensions): zmm in the AVX-512 instance, ymm pairs
 * under AVX2, xmm quads in the generic one; the auto-vectoriser gives up on these loops. */
typedef float vf16 __attribute__((vector_size(64)));
typedef int vi16 __attribute__((vector_size(64)));
typedef float vf16u __attribute__((vector_size(64), aligned(4), may_alias));
#define VLD(p) (*(const vf16u *)(p))
#define VST(p, v) (*(vf16u *)(p) = (v))

#define SLD(p) (*(p))
#define SST(p, v) (*(p) = (v))
#endif
