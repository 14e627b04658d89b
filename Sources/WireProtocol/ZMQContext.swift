import CZeroMQ

/// Owns one ZeroMQ context. Every `ZMQSocket` holds a strong reference to its context, so the context is
/// terminated (`zmq_ctx_term`, which waits for every socket to close) only after its last socket is gone.
/// Holding the raw pointer in sockets instead deadlocks release builds: the optimiser may end the context's
/// lifetime, and run `deinit`, while sockets are still open.
///
/// ZeroMQ contexts are thread-safe, hence `@unchecked Sendable`; sockets are not (see `ZMQSocket`).
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    public init() throws {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        self.handle = handle
    }

    deinit {
        // zmq_ctx_term returns EINTR when a signal interrupts the wait; the sockets are closed, so retry.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}
