/* CPU feature detection for the dispatching routines (cpuid + xgetbv: the OS must save the registers too). */
#include <stdint.h>
#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

int brickyard_cpu_level(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int sse42 = (c >> 20) & 1, fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    int level = sse42 ? BRICKYARD_CPU_SSE42 : 0;
    if (!(osxsave && avx && fma)) return level;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return level;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return level;
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
    if (!avx2) return level;
    level |= BRICKYARD_CPU_AVX2_FMA;
    if (avx512f && (xcr0 & 0xE0) == 0xE0) {
        level |= BRICKYARD_CPU_AVX512;
        /* Skylake-X's AVX-512 subsets (F, DQ, CD, BW, VL): what OpenBLAS's SkylakeX kernels use. */
        unsigned skx = (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31);
        if ((b & skx) == skx) level |= BRICKYARD_CPU_AVX512_SKX;
    }
    return level;
}
#else
/* Not x86: no dispatch targets; every routine takes its portable path. */
int brickyard_cpu_level(void) { return 0; }
#endif

int brickyard_cpu_features(void) { return brickyard_cpu_level(); }
