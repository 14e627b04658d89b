import Foundation
import Kernels
import Logging
import WireProtocol

/// A Brickyard worker process's main loop: connects a DEALER to the coordinator, says Hello, and computes the
/// tasks it is given, one at a time, until the coordinator says Disconnect or a stop is requested.
///
/// Connection handling follows ZeroMQ's Paranoid Pirate pattern: heartbeats both ways; when nothing has arrived
/// from the coordinator for liveness × interval, the socket is closed and a new one connects after an
/// exponential backoff (`reconnectInitialDelayMilliseconds` doubling up to the maximum), saying Hello again.
/// Each connection uses a fresh socket identity (`workerID/nonce/N`), so a coordinator never confuses a new
/// connection with the old one.
///
/// `run()` blocks the calling thread, which owns the socket; merges run on a separate thread.
public final class Worker {
    public let configuration: WorkerConfiguration
    public let stopFlag: WorkerStopFlag
    let logger: Logger
    var faults: WorkerFaults
    /// Tasks finished (done or failed) over the process's life, for `hang-after-tasks`.
    var tasksFinished = 0
    /// A computation whose connection died; waited for before reconnecting (one module in memory at a time).
    var orphanedComputation: TaskComputation?
    /// Split-module blocks kept between k-means rounds (across reconnections too).
    let blockCache: BlockCache
    /// Distinguishes this process's socket identities from any other worker's (see `WorkerSession`).
    let identityNonce = String(UInt32.random(in: 0...UInt32.max), radix: 36)

    public init(configuration: WorkerConfiguration, logger: Logger, stopFlag: WorkerStopFlag = WorkerStopFlag()) {
        self.configuration = configuration
        self.stopFlag = stopFlag
        self.faults = configuration.faults
        self.blockCache = BlockCache(capacityBytes: configuration.blockCacheBytes)
        var logger = logger
        logger[metadataKey: "worker.id"] = "\(configuration.workerID)"
        self.logger = logger
    }

    /// Runs until the coordinator dismisses the worker or a stop is requested; returns the process exit status
    /// (`WorkerExit`).
    public func run() -> Int32 {
        BLAS.threadCount = configuration.threads
        if faults != .none { logger.warning("TEST-ONLY fault injection active", metadata: ["faults": "\(faults)"]) }
        let context: ZMQContext
        do {
            context = try ZMQContext()
        } catch {
            logger.error("cannot create a ZeroMQ context", metadata: ["error": "\(error)"])
            return WorkerExit.setupFailed
        }
        var backoff = configuration.reconnectInitialDelayMilliseconds
        var failedConnections = 0
        var connection = 0
        while true {
            connection += 1
            let outcome: SessionOutcome
            do {
                var session = try WorkerSession(worker: self, context: context, connection: connection)
                outcome = session.run()
            } catch {
                logger.error("cannot connect", metadata: ["endpoint": "\(configuration.endpoint)", "error": "\(error)"])
                return WorkerExit.setupFailed
            }
            switch outcome {
            case .stopped(let reason):
                logger.info("worker stopping", metadata: ["reason": "\(reason)"])
                return WorkerExit.success
            case .dismissed(let reason):
                logger.info("coordinator dismissed the worker", metadata: ["reason": "\(reason)"])
                return WorkerExit.success
            case .rejected(let reason):
                logger.error("coordinator rejected the worker", metadata: ["reason": "\(reason)"])
                return WorkerExit.rejected
            case .lost(let wasWelcomed):
                if wasWelcomed {
                    failedConnections = 0
                    backoff = configuration.reconnectInitialDelayMilliseconds
                } else {
                    failedConnections += 1
                }
                if let limit = configuration.maxFailedConnections, failedConnections >= limit {
                    logger.error("coordinator unreachable; giving up", metadata: ["attempts": "\(failedConnections)"])
                    return WorkerExit.coordinatorUnreachable
                }
                logger.warning("coordinator silent; reconnecting", metadata: ["delay.ms": "\(backoff)"])
                guard pauseBeforeReconnect(milliseconds: backoff) else {
                    logger.info("worker stopping", metadata: ["reason": "\(stopFlag.requestedReason ?? "stop")"])
                    return WorkerExit.success
                }
                backoff = min(backoff * 2, configuration.reconnectMaxDelayMilliseconds)
            }
        }
    }

    /// Sleeps for the backoff and until an orphaned computation has finished (its result is discarded: the
    /// coordinator requeued the task). Returns false if a stop was requested meanwhile.
    private func pauseBeforeReconnect(milliseconds: Int) -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(milliseconds)
        while ContinuousClock.now < deadline || orphanedComputation.map({ $0.outcome == nil }) == true {
            if stopFlag.requestedReason != nil { return false }
            Thread.sleep(forTimeInterval: 0.01)
        }
        if orphanedComputation != nil {
            logger.info("discarded the result of a task from the lost connection")
            orphanedComputation = nil
        }
        return true
    }
}

/// How one connection ended.
enum SessionOutcome: Equatable {
    /// A stop was requested (signal); Disconnect was sent.
    case stopped(String)
    /// The coordinator sent Disconnect (job done or coordinator stopping).
    case dismissed(String)
    case rejected(String)
    /// Heartbeats stopped or a send failed; `wasWelcomed` tells whether this connection ever got a Welcome.
    case lost(wasWelcomed: Bool)
}
