import Foundation
import Testing
@testable import Kernels

/// `ProcessMemory`: the allocator thresholds are accepted and huge-page advice is given where the kernel offers it.
@Suite struct ProcessMemoryTests {
    @Test("glibc accepts the allocator thresholds")
    func thresholdsAreAccepted() {
        #if os(Linux)
        #expect(ProcessMemory.tuneAllocator())
        #endif
    }

    @Test("huge-page advice: given on a large buffer when THP is available, never on a small one; values untouched")
    func hugePageAdvice() {
        let small = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { small.deallocate() }
        #expect(!ProcessMemory.adviseHugePages(small, byteCount: 1 << 20))

        let count = ProcessMemory.hugePageMinimum / MemoryLayout<Float>.stride * 2
        let large = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { large.deallocate() }
        let advised = ProcessMemory.adviseHugePages(UnsafeMutableRawPointer(large), byteCount: count * 4)
        #if os(Linux)
        let mode = (try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8)) ?? ""
        if !mode.isEmpty && !mode.contains("[never]") { #expect(advised) }
        #endif
        for i in stride(from: 0, to: count, by: 1024) { large[i] = Float(i) }
        #expect((0..<count).allSatisfy { $0 % 1024 != 0 || large[$0] == Float($0) })
    }
}
