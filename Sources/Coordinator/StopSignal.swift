import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Turns SIGTERM and SIGINT into a flag the coordinator's loop polls (it never blocks longer than one poll
/// interval), so a stop request is handled between messages rather than inside a signal handler.
public final class StopSignal: Sendable {
    private let received = Atomic<Int32>(0)
    /// Keeps the dispatch sources alive; only touched in `install`.
    nonisolated(unsafe) private var sources: [any DispatchSourceSignal] = []

    public init() {}

    /// Starts catching `signals` (default SIGTERM and SIGINT). Their default action (exit) is disabled.
    public func install(signals: [Int32] = [SIGTERM, SIGINT]) {
        let queue = DispatchQueue(label: "brickyard.stop-signal")
        var created: [any DispatchSourceSignal] = []
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [weak self] in self?.received.store(number, ordering: .sequentiallyConsistent) }
            source.resume()
            created.append(source)
        }
        sources.append(contentsOf: created)
    }

    /// Marks a stop as if `number` had been received (tests, and the merge command forwarding a stop).
    public func trigger(_ number: Int32 = SIGTERM) { received.store(number, ordering: .sequentiallyConsistent) }

    /// The signal received, or nil.
    public var signalNumber: Int32? {
        let value = received.load(ordering: .sequentiallyConsistent)
        return value == 0 ? nil : value
    }

    public var isSet: Bool { signalNumber != nil }
}
