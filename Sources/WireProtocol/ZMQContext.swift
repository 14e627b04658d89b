import CZeroMQ
import Foundation

/// Owns one ZeroMQ context. Every `ZMQSocket` holds a strong reference to its context, so the context is
/// terminated (`zmq_ctx_term`, which waits for every socket to close) only after its last socket is gone.
/// Holding the raw pointer in sockets instead deadlocks release builds: the optimiser may end the context's
/// lifetime, and run `deinit`, while sockets are still open.
///
/// ZeroMQ contexts are thread-safe, hence `@unchecked Sendable`; sockets are not (see `ZMQSocket`).
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private let lock = NSLock()
    // Guarded by `lock`.
    private var terminated = false

    public init() throws {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        self.handle = handle
    }

    /// Terminates the context now (idempotent): blocks until every socket of it is closed and their queued
    /// messages have left, or their linger ran out. For an owner whose last messages must leave before it returns,
    /// e.g. a coordinator's Disconnects before the process exits: left to `deinit`, the termination can happen
    /// later on another thread that dropped the last reference, or never before `exit`. Every socket of the context
    /// must be closed first, or this blocks.
    public func terminate() {
        lock.lock()
        defer { lock.unlock() }
        guard !terminated else { return }
        terminated = true
        // zmq_ctx_term returns EINTR when a signal interrupts the wait; the sockets are closed, so retry.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    deinit { terminate() }
}
