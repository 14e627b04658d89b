import CSIMD

/// glibc allocator settings and page advice for brickyard processes (`CSIMD/memory.c`). Performance only: no
/// computed value depends on them.
///
/// Why: with glibc's defaults a lego worker spent ~20 % of its CPU time in the kernel on the 64-adapter pool
/// (bench/results/peers.md): each adapter's ~1 MB temporaries (factors, transposes, QR work) crossed the dynamic
/// mmap threshold or were trimmed off the heap top after use, so every adapter page-faulted fresh zeroed pages
/// (337k minor faults per merge), and the unit matrix (75 MB for an MLP module) faulted 4 KB at a time.
/// A fixed 4 MB mmap threshold with a 32 MB trim threshold keeps those temporaries on the heap (at most 32 MB of
/// freed memory stays mapped per arena), and huge pages on the unit matrix cut its faults 512×.
public enum ProcessMemory {
    /// Allocations at least this large are mapped on their own (and unmapped when freed).
    public static let mmapThreshold = 4 << 20
    /// Free memory at the heap top beyond this is returned to the system.
    public static let trimThreshold = 32 << 20
    /// Buffers at least this large get `adviseHugePages` from the kernels that fill them.
    public static let hugePageMinimum = 8 << 20

    /// Applies the thresholds to this process (call once, early). Returns whether glibc accepted them.
    @discardableResult
    public static func tuneAllocator() -> Bool {
        brickyard_tune_allocator(mmapThreshold, trimThreshold) == 1
    }

    /// Asks for transparent huge pages on the 2 MB-aligned part of a buffer about to be written, if it is at least
    /// `hugePageMinimum` bytes. Returns whether the advice was given (false off Linux, without THP, or when small).
    @discardableResult
    public static func adviseHugePages(_ start: UnsafeMutableRawPointer, byteCount: Int) -> Bool {
        guard byteCount >= hugePageMinimum else { return false }
        return brickyard_advise_huge_pages(start, byteCount) == 1
    }
}
