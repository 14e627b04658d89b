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
            Exit codes: 0 dismissed by the coordinator or stopped by SIGTERM/SIGINT (the coordinator is told and \
            requeues the current task); 1 setup failed; 2 rejected by the coordinator (version mismatch); \
            3 coordinator unreachable after --max-failed-connections attempts.
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
        if let blockCacheMB, !(blockCacheMB >= 0 && blockCacheMB.isFinite) { throw ValidationError("--block-cache-mb must be a non-negative number") }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "brickyard.worker")
        logger.logLevel = level
        // Child processes (none today) inherit the BLAS thread count; this process sets it via BLAS.threadCount.
        setenv("OPENBLAS_NUM_THREADS", "\(threads)", 1)

        var faults = WorkerFaults.none
        if let specification = ProcessInfo.processInfo.environment[WorkerFaults.environmentVariable] {
            do { faults = try WorkerFaults(specification: specification) } catch {
                FileHandle.standardError.write(Data("brickyard: \(error)\n".utf8))
                throw ExitCode(1)
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
        if let blockCacheMB { configuration.blockCacheBytes = Int(blockCacheMB * 1_048_576) }
        // SIGUSR2 is a batch scheduler's time-limit warning for the coordinator (submit slurm sends it to the
        // whole step); a worker leaves when the coordinator dismisses it, so the warning must not kill it.
        signal(SIGUSR2, SIG_IGN)
        let stop = WorkerStopFlag()
        stop.installSignalHandlers()
        if let parent = exitWithParent { stop.stopWhenParentExits(parent) }
        let status = Worker(configuration: configuration, logger: logger, stopFlag: stop).run()
        if status != 0 { throw ExitCode(status) }
    }
}
