import Foundation
import WireProtocol

/// How a worker connects and keeps its connection alive.
public struct WorkerConfiguration: Sendable {
    /// Coordinator endpoint, e.g. `tcp://host:5555` or `ipc:///tmp/x/coordinator`.
    public var endpoint: String
    /// Reported in Hello and in the merge report; also the prefix of the socket identity.
    public var workerID: String
    /// OpenBLAS threads for this process (processes are the unit of parallelism; default 1).
    public var threads: Int
    /// Heartbeat period. The coordinator's Welcome overrides it (and `heartbeatLiveness`) when it sends values.
    public var heartbeatIntervalMilliseconds: Int
    /// Intervals without any message from the coordinator before the connection counts as dead.
    public var heartbeatLiveness: Int
    /// Reconnect backoff: starts here, doubles after every failed connection, capped at the maximum.
    public var reconnectInitialDelayMilliseconds: Int
    public var reconnectMaxDelayMilliseconds: Int
    /// Give up (exit status `WorkerExit.coordinatorUnreachable`) after this many consecutive connections that
    /// never got a Welcome; nil keeps trying forever (a restarted coordinator finds its workers again).
    public var maxFailedConnections: Int?
    public var limits: TaskLimits
    /// Bytes of split-module blocks kept loaded between k-means rounds (default: a quarter of the machine's memory).
    public var blockCacheBytes: Int
    /// Test-only misbehaviour; `.none` in production.
    public var faults: WorkerFaults

    public init(endpoint: String, workerID: String = WorkerConfiguration.defaultWorkerID(), threads: Int = 1,
                heartbeatIntervalMilliseconds: Int = 1000, heartbeatLiveness: Int = 3,
                reconnectInitialDelayMilliseconds: Int = 1000, reconnectMaxDelayMilliseconds: Int = 32_000,
                maxFailedConnections: Int? = nil, limits: TaskLimits = TaskLimits(), faults: WorkerFaults = .none,
                blockCacheBytes: Int = Int(ProcessInfo.processInfo.physicalMemory / 4)) {
        self.endpoint = endpoint
        self.workerID = workerID
        self.threads = max(1, threads)
        self.heartbeatIntervalMilliseconds = max(1, heartbeatIntervalMilliseconds)
        self.heartbeatLiveness = max(1, heartbeatLiveness)
        self.reconnectInitialDelayMilliseconds = max(1, reconnectInitialDelayMilliseconds)
        self.reconnectMaxDelayMilliseconds = max(self.reconnectInitialDelayMilliseconds, reconnectMaxDelayMilliseconds)
        self.maxFailedConnections = maxFailedConnections
        self.limits = limits
        self.faults = faults
        self.blockCacheBytes = blockCacheBytes
    }

    /// `hostname-pid`: unique per process on a cluster, readable in logs.
    public static func defaultWorkerID() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }
}

/// Process exit statuses of `brickyard worker`.
public enum WorkerExit {
    /// Stopped by SIGTERM/SIGINT or told to leave by the coordinator (job done).
    public static let success: Int32 = 0
    /// Could not set up (bad endpoint, ZeroMQ failure).
    public static let setupFailed: Int32 = 1
    /// The coordinator rejected this worker (protocol or tool version mismatch).
    public static let rejected: Int32 = 2
    /// `maxFailedConnections` consecutive connections without a Welcome.
    public static let coordinatorUnreachable: Int32 = 3
}
