#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A level-triggered wake-up another thread can raise, for a thread that sleeps in `ZMQPoll.readable`: pass
/// `fileDescriptor` among its descriptors. A non-blocking pipe: `raise()` never blocks (a full pipe is already
/// raised), `clear()` empties it. Without it the socket owner only notices finished work on its next poll timeout,
/// which cost a worker half a tick per task (measured: ~6 s of a 40 s split module at a 20 ms tick).
public final class WakeSignal: @unchecked Sendable {
    private let readEnd: Int32
    private let writeEnd: Int32

    /// The descriptor to poll: readable while the signal is raised.
    public var fileDescriptor: Int32 { readEnd }

    public init() throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw ZMQError(code: errno, operation: "pipe for a wake signal") }
        for end in ends {
            let flags = fcntl(end, F_GETFL)
            _ = fcntl(end, F_SETFL, flags | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }

    /// Wakes the polling thread (safe from any thread; never blocks).
    public func raise() {
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    /// Lowers the signal: call after waking, before looking for the news.
    public func clear() {
        withUnsafeTemporaryAllocation(byteCount: 64, alignment: 1) { buffer in
            while read(readEnd, buffer.baseAddress, buffer.count) > 0 {}
        }
    }
}
