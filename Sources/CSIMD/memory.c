/* Allocator settings and page advice for large, short-lived buffers (see csimd.h). */
#include "csimd.h"

#if defined(__linux__)
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

int brickyard_tune_allocator(size_t mmap_threshold, size_t trim_threshold) {
    /* Setting either disables glibc's dynamic threshold, so both are set together. */
    int ok = mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold);
    ok &= mallopt(M_TRIM_THRESHOLD, (int)trim_threshold);
    return ok ? 1 : 0;
}

int brickyard_advise_huge_pages(void *start, size_t length) {
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t first = ((uintptr_t)start + huge - 1) & ~(huge - 1);
    uintptr_t end = ((uintptr_t)start + length) & ~(huge - 1);
    if (start == NULL || end <= first) return 0;
#ifdef MADV_HUGEPAGE
    return madvise((void *)first, end - first, MADV_HUGEPAGE) == 0 ? 1 : 0;
#else
    return 0;
#endif
}
#else
int brickyard_tune_allocator(size_t mmap_threshold, size_t trim_threshold) {
    (void)mmap_threshold; (void)trim_threshold;
    return 0;
}

int brickyard_advise_huge_pages(void *start, size_t length) {
    (void)start; (void)length;
    return 0;
}
#endif
