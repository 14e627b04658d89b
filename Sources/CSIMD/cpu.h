#ifndef BRICKYARD_CSIMD_CPU_H
#define BRICKYARD_CSIMD_CPU_H
enum { BRICKYARD_CPU_SSE42 = 1, BRICKYARD_CPU_AVX2_FMA = 2, BRICKYARD_CPU_AVX512 = 4, BRICKYARD_CPU_AVX512_SKX = 8 };
/* Bit set of the features above that the CPU and the OS both support. */
int brickyard_cpu_level(void);
#endif
