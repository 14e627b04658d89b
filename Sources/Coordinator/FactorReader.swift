#if canImport(Glibc)
import Glibc
#endif

/// Inline mode: reads one stored factor's bytes (as on disk, any dtype) with `pread`, so the coordinator holds
/// at most one factor of one adapter in memory while streaming a task's inputs.
enum FactorReader {
    static func read(path: String, offset: Int, length: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CoordinatorError(.io, "\(path): cannot open input: \(DurableFile.errnoText())") }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: length)
        var done = 0
        var failure: CoordinatorError?
        bytes.withUnsafeMutableBytes { raw in
            while done < length, let base = raw.baseAddress {
                let got = pread(fd, base + done, length - done, off_t(offset + done))
                if got < 0 && errno == EINTR { continue }
                if got < 0 { failure = CoordinatorError(.io, "\(path): read failed: \(DurableFile.errnoText())"); return }
                if got == 0 { failure = CoordinatorError(.io, "\(path): file ends before byte \(offset + length)"); return }
                done += got
            }
        }
        if let failure { throw failure }
        return bytes
    }
}
