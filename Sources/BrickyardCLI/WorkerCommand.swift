import ArgumentParser
import Foundation
import Logging
import Worker

/// `brickyard worker --connect tcp://HOST:5555`: compute tasks for a coordinator until it says the job is done.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Compute merge tasks for a `brickyard coordinator` (or `brickyard merge`).",
        discussion: """
            Exit codes: 0 dismissed by the coordinator, or stopped by SIGTERM/SIGINT/SIGUSR2 or its parent's exit \
            (the coordinator is told and requeues the current task; the process leaves with _exit right away, \
            never by a signal); 1 setup failed; 2 rejected by the coordinator (version mismatch); \
            3 coordinator unreachable after --max-failed-connections attempts; 4 the coordinator refused this \
            worker's CURVE key (or the CURVE handshake failed).
            """)

    @Option(name: .long, help: "Coordinator endpoint, e.g. tcp://HOST:5555.")
    var connect: String

    @Option(name: .long, help: "OpenBLAS threads for this worker (run one worker per core for throughput).")
    var threads: Int = 1

    @Option(name: .long, help: "Worker name for logs and the merge report (default: HOSTNAME-PID).")
    var id: String?

    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval until the coordinator sets its own.")
    var heartbeatMilliseconds: Int = 1000

    @Option(name: .long, help: "Missed heartbeat intervals before the coordinator counts as lost.")
    var liveness: Int = 3

    @Option(name: .customLong("reconnect-max-ms"), help: "Upper bound of the reconnect backoff (starts at 1 s).")
    var reconnectMaxMilliseconds: Int = 32_000

    @Option(name: .customLong("max-failed-connections"), help: "Exit after this many connections without a welcome (default: retry forever).")
    var maxFailedConnections: Int?

    @Option(name: .customLong("block-cache-mb"), help: "Memory for blocks of split modules kept loaded between k-means rounds (default: a quarter of this machine's memory).")
    var blockCacheMB: Double?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: .customLong("curve-server-key"), help: "CURVE: the coordinator's .public key file; requires --curve-secret.")
    var curveServerKey: String?

    @Option(name: .customLong("curve-secret"), help: "CURVE: this worker's .secret key file (its public key must be in the coordinator's --allow directory).")
    var curveSecret: String?

    // TEST-ONLY fault injection (also via BRICKYARD_TEST_WORKER_FAULTS); see WorkerFaults.
    @Option(name: .customLong("fail-tasks"), help: .hidden)
    var failTasks: FailTasksMode?
    @Option(name: .customLong("hang-after-tasks"), help: .hidden)
    var hangAfterTasks: Int?
    @Flag(name: .customLong("die-in-task"), help: .hidden)
    var dieInTask = false
    @Option(name: .customLong("fault-once"), help: .hidden)
    var faultOnce: String?
    @Option(name: .customLong("slow-tasks-ms"), help: .hidden)
    var slowTasksMilliseconds: Int?
    @Option(name: .customLong("exit-with-parent"), help: .hidden)
    var exitWithParent: Int32?
    @Option(name: .customLong("reconnect-initial-ms"), help: .hidden)
    var reconnectInitialMilliseconds: Int = 1000

    enum FailTasksMode: String, ExpressibleByArgument { case always }

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard heartbeatMilliseconds >= 1, liveness >= 1 else { throw ValidationError("--heartbeat-ms and --liveness must be positive") }
        guard (curveServerKey == nil) == (curveSecret == nil) else {
            throw ValidationError("--curve-server-key and --curve-secret go together (the coordinator's public key and this worker's secret key)")
        }
        if let blockCacheMB, !(blockCacheMB >= 0 && blockCacheMB.isFinite) { throw ValidationError("--block-cache-mb must be a non-negative number") }
    }

    func run() throws {
        // First of all: from here on a stop request is a flag, never the default (killing) signal action.
        let stop = WorkerStopFlag()
        stop.installSignalHandlers()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let logger = StderrLogging.bootstrap(label: "brickyard.worker", level: level)
        // Child processes (none today) inherit the BLAS thread count; this process sets it via BLAS.threadCount.
        setenv("OPENBLAS_NUM_THREADS", "\(threads)", 1)

        var faults = WorkerFaults.none
        if let specification = ProcessInfo.processInfo.environment[WorkerFaults.environmentVariable] {
            do { faults = try WorkerFaults(specification: specification) } catch {
                FileHandle.standardError.write(Data("brickyard: \(error)\n".utf8))
                WorkerProcess.exit(WorkerExit.setupFailed, worker: nil, logger: logger)
            }
        }
        if failTasks != nil { faults.failTasks = true }
        if let hangAfterTasks { faults.hangAfterTasks = hangAfterTasks }
        if dieInTask { faults.dieInTask = true }
        if let faultOnce { faults.onceMarkerPath = faultOnce }
        if let slowTasksMilliseconds { faults.slowTaskMilliseconds = max(0, slowTasksMilliseconds) }

        var configuration = WorkerConfiguration(
            endpoint: connect, workerID: id ?? WorkerConfiguration.defaultWorkerID(), threads: threads,
            heartbeatIntervalMilliseconds: heartbeatMilliseconds, heartbeatLiveness: liveness,
            reconnectInitialDelayMilliseconds: reconnectInitialMilliseconds, reconnectMaxDelayMilliseconds: reconnectMaxMilliseconds,
            maxFailedConnections: maxFailedConnections, faults: faults)
        if let curveServerKey, let curveSecret {
            configuration.curve = CurveClientOptions(serverKeyFile: curveServerKey, secretKeyFile: curveSecret)
        }
        if let blockCacheMB { configuration.blockCacheBytes = Int(blockCacheMB * 1_048_576) }
        if let parent = exitWithParent { stop.stopWhenParentExits(parent) }
        let worker = Worker(configuration: configuration, logger: logger, stopFlag: stop)
        let status = worker.run()
        WorkerProcess.exit(status, worker: worker, logger: logger)
    }
}
