import CZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// A failed ZeroMQ call: the operation, its errno and `zmq_strerror`'s text (in the style of swift-nio's
/// `IOError`). `kind` classifies the errors callers handle rather than report.
public struct ZMQError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The errors with a defined reaction.
    public enum Kind: Sendable, Equatable {
        /// ROUTER with `ZMQ_ROUTER_MANDATORY`: the peer identity is not (or no longer) connected.
        case hostUnreachable
        /// Non-blocking call with nothing to do, a full pipe, or a send/receive timeout.
        case wouldBlock
        /// A signal arrived during a blocking call.
        case interrupted
        /// The context is being terminated: close the socket and stop.
        case contextTerminated
        /// Anything else (bad endpoint, address in use, ...): report it.
        case other
    }

    /// errno as ZeroMQ reported it.
    public var code: Int32
    /// The call and its argument, e.g. `zmq_bind(tcp://127.0.0.1:5555)`.
    public var operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// Captures `zmq_errno()` right after a failed call.
    static func last(_ operation: String) -> ZMQError {
        ZMQError(code: zmq_errno(), operation: operation)
    }

    public var kind: Kind {
        switch code {
        case EHOSTUNREACH: .hostUnreachable
        case EAGAIN: .wouldBlock
        case EINTR: .interrupted
        case ETERM: .contextTerminated
        default: .other
        }
    }

    public var description: String {
        let text = zmq_strerror(code).map { String(cString: $0) } ?? "unknown error"
        return "\(operation) failed: \(text) (errno \(code))"
    }
}
