#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The steps of crash-safe output: write under a temporary name in the destination's directory, fsync,
/// rename over the final name, fsync the directory so the rename itself is durable.
public enum AtomicFile {
    /// A fresh temporary name next to `path` (same directory, so the rename cannot cross file systems).
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        return directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Writes `bytes` to `path` atomically. `mode` is the file's exact permission bits (not filtered by the
    /// umask), set before any byte is written: 0o600 keeps key material unreadable to others throughout.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
        try write(to: path, mode: mode) { append in try bytes.withUnsafeBytes(append) }
    }

    /// The same for a file given in pieces: `produce` calls `append` with each piece in order (no concatenation,
    /// so a large body is written from where it lies).
    public static func write(to path: String, mode: mode_t = 0o644,
                             produce: (_ append: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let temporary = temporaryPath(for: path)
        let fd = try openForWriting(temporary, mode: mode)
        do {
            var offset = 0
            try produce { piece in
                try writeAll(fd: fd, piece, at: offset, path: temporary)
                offset += piece.count
            }
            try sync(fd: fd, path: temporary)
            close(fd)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        try commit(temporary: temporary, to: path)
    }

    static func openForWriting(_ path: String, mode: mode_t = 0o644) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw AdapterIOError(.io, path: path, "cannot create: \(SystemError.text())") }
        if mode != 0o644 { fchmod(fd, mode) }
        return fd
    }

    /// pwrite until every byte is written (short writes and EINTR are retried).
    static func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int, path: String) throws {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let wrote = pwrite(fd, base + done, bytes.count - done, off_t(offset + done))
            if wrote < 0 && errno == EINTR { continue }
            guard wrote > 0 else { throw AdapterIOError(.io, path: path, "write failed: \(SystemError.text())") }
            done += wrote
        }
    }

    static func sync(fd: Int32, path: String) throws {
        guard fsync(fd) == 0 else { throw AdapterIOError(.io, path: path, "fsync failed: \(SystemError.text())") }
    }

    /// Renames `temporary` onto `path` and makes the rename durable; removes `temporary` on failure.
    public static func commit(temporary: String, to path: String) throws {
        guard rename(temporary, path) == 0 else {
            let reason = SystemError.text()
            unlink(temporary)
            throw AdapterIOError(.io, path: path, "cannot rename into place: \(reason)")
        }
        try syncDirectory(containing: path)
    }

    /// fsync of the directory that holds `path`.
    public static func syncDirectory(containing path: String) throws {
        try syncDirectory(URL(fileURLWithPath: path).deletingLastPathComponent().path)
    }

    public static func syncDirectory(_ directory: String) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw AdapterIOError(.io, path: directory, "cannot open directory: \(SystemError.text())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw AdapterIOError(.io, path: directory, "fsync of directory failed: \(SystemError.text())") }
    }
}
