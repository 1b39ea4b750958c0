/* ISA detection and dispatch. AVX2/AVX-512 kernels are used only when the CPU reports the
 * features and the OS saves the wider register state (xgetbv), as BLIS's bli_cpuid.c does.
 * NNCORE_ISA=generic|avx2|avx512 forces a path (down only), so tests exercise the fallback. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#if NNC_X86
#include <cpuid.h>
#endif

static int g_isa = -1;

#if NNC_X86
static unsigned long long xgetbv0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

int nnc_isa_supported(int isa) {
    if (isa == NNC_ISA_GENERIC) return 1;
#if NNC_X86
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx || !fma) return 0;
    unsigned long long xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return 0; /* XMM and YMM state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx2 = (b >> 5) & 1;
    if (isa == NNC_ISA_AVX2) return avx2;
    if (isa == NNC_ISA_AVX512) {
        int f = (b >> 16) & 1, dq = (b >> 17) & 1, vl = (b >> 31) & 1;
        return avx2 && f && dq && vl && (xcr0 & 0xe6) == 0xe6; /* opmask, ZMM state */
    }
#endif
    return 0;
}

const char *nnc_isa_name(int isa) {
    switch (isa) {
    case NNC_ISA_AVX2: return "avx2";
    case NNC_ISA_AVX512: return "avx512";
    default: return "generic";
    }
}

int nnc_init(void) {
    if (g_isa >= 0) return 0;
    int isa = NNC_ISA_GENERIC;
    if (nnc_isa_supported(NNC_ISA_AVX512)) isa = NNC_ISA_AVX512;
    else if (nnc_isa_supported(NNC_ISA_AVX2)) isa = NNC_ISA_AVX2;
    const char *env = getenv("NNCORE_ISA");
    if (env && *env) {
        int want = isa;
        if (strcmp(env, "generic") == 0) want = NNC_ISA_GENERIC;
        else if (strcmp(env, "avx2") == 0) want = NNC_ISA_AVX2;
        else if (strcmp(env, "avx512") == 0) want = NNC_ISA_AVX512;
        if (want < isa) isa = want; /* can only go down to what the CPU has */
    }
    g_isa = isa;
    nnc_threads_init();
    nnc_gemm_dispatch_init(isa);
    nnc_elem_dispatch_init(isa);
    nnc_lyr_dispatch_init(isa);
    return 0;
}

int nnc_set_isa(int isa) {
    nnc_init();
    while (isa > NNC_ISA_GENERIC && !nnc_isa_supported(isa)) isa--;
    if (isa < NNC_ISA_GENERIC) isa = NNC_ISA_GENERIC;
    g_isa = isa;
    nnc_gemm_dispatch_init(isa);
    nnc_elem_dispatch_init(isa);
    nnc_lyr_dispatch_init(isa);
    return isa;
}

int nnc_isa(void) { return g_isa < 0 ? NNC_ISA_GENERIC : g_isa; }
