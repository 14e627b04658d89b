import Dispatch
import Foundation

/// Set from any thread (signal handlers, tests) to make a running `Worker` say Disconnect and return.
/// A lock-protected value, hence `@unchecked Sendable`.
public final class WorkerStopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var reason: String?
    private var sources: [DispatchSourceSignal] = []

    public init() {}

    public func request(reason: String) {
        lock.withLock { if self.reason == nil { self.reason = reason } }
    }

    /// Why the stop was requested; nil while running.
    public var requestedReason: String? { lock.withLock { reason } }

    /// Routes SIGTERM and SIGINT to `request` (the default actions are disabled so the worker can say goodbye).
    /// Keeps the dispatch sources alive as long as the flag.
    public func installSignalHandlers(_ signals: [Int32] = [SIGTERM, SIGINT]) {
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            let name = number == SIGTERM ? "SIGTERM" : number == SIGINT ? "SIGINT" : "signal \(number)"
            source.setEventHandler { [weak self] in self?.request(reason: name) }
            source.resume()
            lock.withLock { sources.append(source) }
        }
    }
}
