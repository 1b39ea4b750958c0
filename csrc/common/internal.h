/* Internal declarations shared between csrc/ files (not part of the public API). */
#ifndef NNCORE_INTERNAL_H
#define NNCORE_INTERNAL_H
#include "nncore/nnc.h"

/* Functions compiled for an ISA carry a target attribute instead of a global -m flag, so the
 * package runs on any x86-64 and the choice is made at run time (cpu.c). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define NNC_X86 1
#define NNC_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define NNC_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))
#else
#define NNC_X86 0
#define NNC_TARGET_AVX2
#define NNC_TARGET_AVX512
#endif

#define NNC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NNC_MAX(a, b) ((a) > (b) ? (a) : (b))

void nnc_threads_init(void);
/* Each area fills its own dispatch table for the chosen ISA (called once by nnc_init). */
void nnc_gemm_dispatch_init(int isa);
void nnc_elem_dispatch_init(int isa);
void nnc_lyr_dispatch_init(int isa);

#endif
