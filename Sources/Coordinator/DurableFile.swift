#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Crash-safe small-file I/O for the checkpoint directory: temp name in the same directory, fsync, rename,
/// fsync the directory; and whole-file reads that report which file failed.
enum DurableFile {
    static func write(_ bytes: [UInt8], to path: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        let directory = parent.isEmpty ? "." : parent
        let temporary = directory + "/." + (path as NSString).lastPathComponent
            + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CoordinatorError(.io, "\(temporary): cannot create: \(errnoText())") }
        var failure: CoordinatorError?
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count, let base = raw.baseAddress {
                let wrote = Glibc.write(fd, base + done, raw.count - done)
                if wrote < 0 && errno == EINTR { continue }
                guard wrote > 0 else { failure = CoordinatorError(.io, "\(temporary): write failed: \(errnoText())"); return }
                done += wrote
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = CoordinatorError(.io, "\(temporary): fsync failed: \(errnoText())") }
        close(fd)
        if let failure {
            unlink(temporary)
            throw failure
        }
        guard rename(temporary, path) == 0 else {
            let reason = errnoText()
            unlink(temporary)
            throw CoordinatorError(.io, "\(path): cannot rename into place: \(reason)")
        }
        try syncDirectory(directory)
    }

    static func syncDirectory(_ directory: String) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw CoordinatorError(.io, "\(directory): cannot open directory: \(errnoText())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw CoordinatorError(.io, "\(directory): fsync of directory failed: \(errnoText())") }
    }

    /// Whole file, or nil if it does not exist.
    static func read(_ path: String) throws -> [UInt8]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CoordinatorError(.io, "\(path): cannot read")
        }
        return [UInt8](data)
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
