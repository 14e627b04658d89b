import Dispatch
import Foundation

/// Set from any thread (signal handlers, tests) to make a running `Worker` say Disconnect and return.
/// A lock-protected value, hence `@unchecked Sendable`.
public final class WorkerStopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var reason: String?
    private var sources: [any DispatchSourceProtocol] = []

    public init() {}

    public func request(reason: String) {
        lock.withLock { if self.reason == nil { self.reason = reason } }
    }

    /// Why the stop was requested; nil while running.
    public var requestedReason: String? { lock.withLock { reason } }

    /// Routes SIGTERM, SIGINT and SIGUSR2 (Slurm's preemption warning) to `request` (the default actions, which
    /// end the process by signal, are disabled so the worker can say goodbye and exit with its status).
    /// Keeps the dispatch sources alive as long as the flag.
    public func installSignalHandlers(_ signals: [Int32] = [SIGTERM, SIGINT, SIGUSR2]) {
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            let name = switch number {
            case SIGTERM: "SIGTERM"
            case SIGINT: "SIGINT"
            case SIGUSR2: "SIGUSR2"
            default: "signal \(number)"
            }
            source.setEventHandler { [weak self] in self?.request(reason: name) }
            source.resume()
            lock.withLock { sources.append(source) }
        }
    }

    /// Requests a stop once `parent` is no longer this process's parent (it exited and the process was
    /// re-parented; also when that had happened before this call), checking every `interval`.
    /// Local workers of `brickyard merge` use it: a merge killed with SIGKILL cannot stop its workers, and
    /// without this they would keep reconnecting to a coordinator that no longer exists.
    public func stopWhenParentExits(_ parent: pid_t, checkEvery interval: DispatchTimeInterval = .milliseconds(200)) {
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now(), repeating: interval)
        timer.setEventHandler { [weak self] in
            if getppid() != parent { self?.request(reason: "parent process \(parent) exited") }
        }
        timer.resume()
        lock.withLock { sources.append(timer) }
    }
}
