#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory. The mapping lives exactly as long as this object, so any
/// pointer handed out by `withBytes` is valid only inside the closure.
///
/// Sendable because the mapping is immutable after `init` (PROT_READ, MAP_PRIVATE) and only unmapped in
/// `deinit`, when no other reference can exist.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    private let base: UnsafeRawPointer?

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AdapterIOError(.io, path: path, "cannot open: \(SystemError.text())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw AdapterIOError(.io, path: path, "cannot stat: \(SystemError.text())") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw AdapterIOError(.io, path: path, "not a regular file") }
        size = Int(info.st_size)
        if size == 0 {
            base = nil
            return
        }
        let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw AdapterIOError(.io, path: path, "cannot map: \(SystemError.text())")
        }
        base = UnsafeRawPointer(mapped)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    /// The file's bytes; do not let the pointer escape the closure.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: size))
    }
}

/// errno as text, for error messages.
enum SystemError {
    static func text(_ code: Int32 = errno) -> String {
        guard let message = strerror(code) else { return "errno \(code)" }
        return String(cString: message)
    }
}
