import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Coordinator
import Foundation
import Logging
import MergeEngine
import WireProtocol

/// Options shared by `brickyard coordinator` and the distributed path of `brickyard merge`.
struct MergeRuntimeOptions: ParsableArguments {
    @Option(name: .long, help: "Checkpoint directory: finished modules are kept there and a rerun resumes (default: a temporary one).")
    var checkpoint: String?

    @Option(name: .customLong("input-mode"), help: "shared: workers read the input files themselves; inline: the coordinator streams the tensor bytes.")
    var inputMode: InputModeArgument = .shared

    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval in milliseconds.")
    var heartbeatMilliseconds = 1000

    @Option(name: .long, help: "Heartbeat intervals a worker may miss before it is declared dead.")
    var liveness = 3

    @Option(name: .customLong("max-attempts"), help: "Failures or lost workers a module may suffer before the job fails.")
    var maxAttempts = 3

    @Option(name: .customLong("metrics-bind"), help: "Serve Prometheus metrics at http://HOST:PORT/metrics while the job runs (port 0 picks one; the address is logged).")
    var metricsBind: String?

    @Option(name: .customLong("max-task-mb"), help: "Task budget in MB: a lego module whose units (Float32) exceed it is split into blocks whose k-means rounds run across workers (default: the job's max_task_mb, else a quarter of this machine's memory).")
    var maxTaskMB: Double?

    @Option(name: .customLong("endpoint-file"), help: "Write the endpoint workers should connect to into this file once listening (atomically).")
    var endpointFile: String?

    @Option(name: .customLong("advertise-host"), help: "Host name or address workers use to reach this coordinator (replaces a wildcard bind address in --endpoint-file).")
    var advertiseHost: String?

    @Option(name: .customLong("status-file"), help: "Keep a JSON status file current (progress, workers, retries, final state); `brickyard status` reads it.")
    var statusFile: String?

    @Option(name: .customLong("result-chunk-bytes"), help: .hidden)
    var resultChunkBytes = Chunking.defaultChunkBytes

    @Option(name: .customLong("input-chunk-bytes"), help: .hidden)
    var inputChunkBytes = 1 << 20

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default: warning on a terminal, where a progress line is shown; info otherwise).")
    var logLevel: String?

    /// The chosen level, or the default for where stderr goes (`quiet`: warnings and errors only).
    func effectiveLogLevel(quiet: Bool = false) -> Logger.Level {
        if let logLevel, let level = Logger.Level(rawValue: logLevel) { return level }
        return quiet || isatty(STDERR_FILENO) != 0 ? .warning : .info
    }

    func validate() throws {
        guard heartbeatMilliseconds >= 10 else { throw ValidationError("--heartbeat-ms must be at least 10") }
        guard liveness >= 1 else { throw ValidationError("--liveness must be at least 1") }
        guard maxAttempts >= 1 else { throw ValidationError("--max-attempts must be at least 1") }
        guard resultChunkBytes >= 1024, inputChunkBytes >= 1024 else { throw ValidationError("chunk sizes must be at least 1024 bytes") }
        if let logLevel, Logger.Level(rawValue: logLevel) == nil { throw ValidationError("--log-level \(logLevel) is not a log level") }
        if let maxTaskMB, !(maxTaskMB > 0 && maxTaskMB.isFinite) { throw ValidationError("--max-task-mb must be a positive number") }
    }

    func coordinatorOptions(bind: String) -> CoordinatorOptions {
        var options = CoordinatorOptions(bind: bind, inputMode: inputMode.wire,
                           scheduler: SchedulerConfiguration(maxAttempts: maxAttempts,
                                                             heartbeatInterval: .milliseconds(heartbeatMilliseconds),
                                                             liveness: liveness),
                           resultChunkBytes: resultChunkBytes, inputChunkBytes: inputChunkBytes, endpointFile: endpointFile,
                           advertiseHost: advertiseHost, statusFile: statusFile)
        options.metricsBind = metricsBind
        return options
    }

    func distributedOptions(out: String, bind: String, overwrite: Bool, showProgress: Bool = true) -> DistributedMergeOptions {
        var coordinator = coordinatorOptions(bind: bind)
        coordinator.showProgress = showProgress
        return DistributedMergeOptions(outputDirectory: out, overwrite: overwrite, checkpointDirectory: checkpoint,
                                       coordinator: coordinator)
    }

    /// Plans a job file with the task budget of the command line (else the job's, else the default).
    func plan(jobFile: String) throws -> MergePlan {
        var plan = try Planner.plan(job: try JobSpec.load(path: jobFile))
        if maxTaskMB != nil { TaskBudget.apply(to: &plan, megabytes: maxTaskMB) }
        return plan
    }

    /// Logs to stderr at the chosen level (called once per process).
    func makeLogger(label: String, quiet: Bool = false) -> Logger {
        let level = effectiveLogLevel(quiet: quiet)
        let logger = StderrLogging.bootstrap(label: label, level: level)
        BLASCoreSelection.logChoice(logger)
        return logger
    }
}

/// `--input-mode` values.
enum InputModeArgument: String, ExpressibleByArgument, Sendable {
    case shared, inline

    var wire: Wire.InputMode { self == .shared ? .shared : .inline }
}

extension MergeCommand {
    /// The default path of `brickyard merge`: a private coordinator plus local worker processes.
    func runDistributed(plan: MergePlan) throws -> MergeReport {
        let logger = runtime.makeLogger(label: "brickyard.merge", quiet: quiet)
        let stop = StopSignal()
        stop.install()
        let count = max(1, workers ?? ProcessInfo.processInfo.activeProcessorCount)  // `validate()` checked both
        let outcome = try LocalDistributedMerge.run(
            plan: plan, options: runtime.distributedOptions(out: out, bind: "", overwrite: force, showProgress: !quiet),
            workers: count,
            threadsPerWorker: threads, extraWorkerArguments: ["--log-level", runtime.effectiveLogLevel(quiet: quiet).rawValue] + workerArguments,
            logger: logger, stop: stop)
        return outcome.report
    }
}

/// Maps a runtime error to its documented exit code after printing it on one line.
enum RuntimeFailure {
    static func exit(_ error: any Error) -> ExitCode {
        FileHandle.standardError.write(Data("brickyard: \(error)\n".utf8))
        return ExitCode(RuntimeExitCode.code(for: error))
    }
}
