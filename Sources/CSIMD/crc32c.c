/* CRC-32C with the SSE 4.2 crc32 instruction (8 bytes per step). */
#include <string.h>
#include "csimd.h"
#include "cpu.h"

int brickyard_crc32c_hardware(void) {
    static int cached = -1;
    if (cached < 0) cached = (brickyard_cpu_level() & BRICKYARD_CPU_SSE42) ? 1 : 0;
    return cached;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
uint32_t brickyard_crc32c_update(uint32_t state, const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    uint64_t crc = state;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        crc = __builtin_ia32_crc32di(crc, word);
        p += 8;
        n -= 8;
    }
    uint32_t crc32 = (uint32_t)crc;
    while (n > 0) {
        crc32 = __builtin_ia32_crc32qi(crc32, *p);
        p++;
        n--;
    }
    return crc32;
}
#else
/* Not x86-64: brickyard_crc32c_hardware() is 0, so callers use their table; this bitwise form keeps the symbol
 * correct should anyone call it. */
uint32_t brickyard_crc32c_update(uint32_t state, const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    uint32_t crc = state;
    while (n-- > 0) {
        crc ^= *p++;
        for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc;
}
#endif
