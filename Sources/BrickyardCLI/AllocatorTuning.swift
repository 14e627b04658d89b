#if canImport(Glibc)
import Glibc
#endif

/// glibc's allocator settings for this process (and the workers it starts, which run this same code).
///
/// Why: by default glibc serves every allocation above its mmap threshold (128 KB, raised only to the size of the
/// last such block freed) with a fresh `mmap`, and returns it with `munmap`. A lego module allocates and frees a few
/// arrays of [out, rank] floats per adapter (0.9 MB each for a 14336-wide module), so every one of their pages was
/// faulted in and zeroed by the kernel again for each adapter: 6–7 % of a 64-adapter lego run went to page faults.
/// A fixed threshold of 8 MB serves those arrays from the heap, which reuses freed memory; large blocks (a module's
/// unit matrix) are still mapped and unmapped. The heap keeps up to 64 MB of free memory at its top instead of
/// trimming it after every free. Results do not depend on this (nothing reads memory it did not write).
/// `BRICKYARD_MALLOC_TUNING=0` leaves glibc's defaults.
enum AllocatorTuning {
    static let mmapThreshold: Int32 = 8 << 20
    static let trimThreshold: Int32 = 64 << 20

    static func apply() {
        #if canImport(Glibc)
        if let value = getenv("BRICKYARD_MALLOC_TUNING"), String(cString: value) == "0" { return }
        _ = mallopt(M_MMAP_THRESHOLD, mmapThreshold)
        _ = mallopt(M_TRIM_THRESHOLD, trimThreshold)
        #endif
    }
}
