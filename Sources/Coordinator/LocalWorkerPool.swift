import Foundation
import Kernels
import Logging

/// The worker processes `brickyard merge` runs on this machine: N copies of this executable running
/// `worker --connect ENDPOINT`, each with one BLAS thread per `--threads`. A worker that dies is respawned
/// (up to a bound), so a local merge finishes even if a worker crashes; the coordinator requeues its task.
public final class LocalWorkerPool {
    /// Which executable to run, against which endpoint, how many, and how often to replace them.
    public struct Configuration: Sendable {
        public var executable: String
        public var endpoint: String
        public var count: Int
        public var threadsPerWorker: Int
        /// Total respawns allowed over the job (beyond the initial `count` starts).
        public var maxRespawns: Int
        /// Extra arguments for every worker (hidden test options).
        public var extraArguments: [String]
        /// Evaluators instead of merge workers: this command (program and its own arguments) is run with
        /// `--connect ENDPOINT --id local-N --exit-with-parent PID --max-failed-connections 5` and one torch/BLAS
        /// thread, offline (`HF_HUB_OFFLINE=1`).
        public var evaluatorCommand: [String]?

        public init(executable: String, endpoint: String, count: Int, threadsPerWorker: Int = 1,
                    maxRespawns: Int? = nil, extraArguments: [String] = []) {
            self.executable = executable
            self.endpoint = endpoint
            self.count = max(1, count)
            self.threadsPerWorker = max(1, threadsPerWorker)
            self.maxRespawns = maxRespawns ?? 2 * max(1, count)
            self.extraArguments = extraArguments
            self.evaluatorCommand = nil
        }

        /// N local evaluators running `command`.
        public static func evaluators(command: [String], endpoint: String, count: Int, maxRespawns: Int? = nil,
                                      extraArguments: [String] = []) -> Configuration {
            var configuration = Configuration(executable: command.first ?? "", endpoint: endpoint, count: count,
                                              maxRespawns: maxRespawns, extraArguments: extraArguments)
            configuration.evaluatorCommand = command
            return configuration
        }
    }

    public let configuration: Configuration
    private let logger: Logger
    private var processes: [Process] = []
    /// The `--id` each process was started with, by pid.
    private var workerIDs: [Int32: String] = [:]
    private var respawns = 0
    /// Workers whose end was already logged (each is logged once).
    private var loggedExits: Set<Int32> = []
    private var started = 0

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// The running executable's path (`/proc/self/exe`), so workers run exactly the same build.
    public static func currentExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    public func start() throws {
        for _ in 0..<configuration.count { processes.append(try spawn()) }
    }

    /// Replaces workers that exited, within the respawn budget. Called from the coordinator's loop.
    public func superviseTick() {
        for index in processes.indices where !processes[index].isRunning {
            let old = processes[index]
            logExit(old)
            guard respawns < configuration.maxRespawns else { continue }
            respawns += 1
            logger.warning("local worker exited; starting a replacement", metadata: [
                "pid": "\(old.processIdentifier)", "status": "\(old.terminationStatus)", "respawns": "\(respawns)"])
            do {
                processes[index] = try spawn()
            } catch {
                logger.error("cannot start a replacement worker", metadata: ["error": "\(error)"])
            }
        }
    }

    /// A local worker the coordinator declared dead while its process still runs (hung): kill it, so the next
    /// `superviseTick` starts a replacement. Worker IDs that are not ours (remote workers) are ignored.
    public func replaceHung(workerID: String) {
        guard let process = processes.first(where: { workerIDs[$0.processIdentifier] == workerID }), process.isRunning else { return }
        logger.warning("local worker stopped heartbeating; killing it", metadata: [
            "worker.id": "\(workerID)", "pid": "\(process.processIdentifier)"])
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// True once every process has exited and the respawn budget is spent (nobody local is left to do the work).
    public var isExhausted: Bool { respawns >= configuration.maxRespawns && !processes.contains(where: \.isRunning) }

    /// Exit status of the most recently exited process, if any.
    public var lastExitStatus: Int32? { processes.last(where: { !$0.isRunning })?.terminationStatus }

    /// Pids of the current worker processes (tests kill them).
    public var processIdentifiers: [Int32] { processes.map(\.processIdentifier) }

    /// Asks every worker to stop (SIGTERM), waits up to `grace`, then SIGKILLs the rest.
    ///
    /// A worker still starting up has SIGTERM's default action (this process's handler does not survive exec:
    /// `SignalDisposition`), so it gets no SIGTERM until it catches or ignores it; then SIGTERM is repeated every
    /// 100 ms, because a worker between ignoring the signal and installing its handler discards one. Once the
    /// handler is in place the next signal reaches it and the worker leaves with its status, never by the signal.
    public func stopAll(grace: Duration = .seconds(5)) {
        let deadline = ContinuousClock.now + grace
        var nextSignal = ContinuousClock.now
        while processes.contains(where: \.isRunning) && ContinuousClock.now < deadline {
            if ContinuousClock.now >= nextSignal {
                for process in processes where process.isRunning
                    && SignalDisposition.handles(SIGTERM, pid: process.processIdentifier) != false {
                    kill(process.processIdentifier, SIGTERM)
                }
                nextSignal = ContinuousClock.now + .milliseconds(100)
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        for process in processes where process.isRunning {
            logger.warning("local worker did not stop within the grace period; killing it", metadata: [
                "pid": "\(process.processIdentifier)"])
            kill(process.processIdentifier, SIGKILL)
        }
        for process in processes {
            process.waitUntilExit()
            logExit(process)
        }
        processes = []
    }

    /// One line per finished worker with how it ended (tests check that no worker ends by a signal).
    private func logExit(_ process: Process) {
        guard loggedExits.insert(process.processIdentifier).inserted else { return }
        let how = process.terminationReason == .uncaughtSignal ? "signal" : "exit"
        let message: Logger.Message = "local worker ended"
        let metadata: Logger.Metadata = ["pid": "\(process.processIdentifier)", "worker.id": "\(workerIDs[process.processIdentifier] ?? "?")",
                                         "ended.by": "\(how)", "status": "\(process.terminationStatus)"]
        if how == "signal" { logger.warning(message, metadata: metadata) } else { logger.info(message, metadata: metadata) }
    }

    private func spawn() throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: configuration.executable)
        started += 1
        // If this process dies without stopping them (SIGKILL), workers notice they were re-parented and leave;
        // the bounded reconnect budget is a second line of defence.
        let parent = "\(ProcessInfo.processInfo.processIdentifier)"
        var environment = ProcessInfo.processInfo.environment
        if let command = configuration.evaluatorCommand {
            process.arguments = Array(command.dropFirst()) + [
                "--connect", configuration.endpoint, "--id", "local-\(started)", "--max-failed-connections", "5",
                "--exit-with-parent", parent] + configuration.extraArguments
            environment["OMP_NUM_THREADS"] = "1"
            environment["MKL_NUM_THREADS"] = "1"
            environment["HF_HUB_OFFLINE"] = "1"
            environment["TOKENIZERS_PARALLELISM"] = "false"
        } else {
            process.arguments = ["worker", "--connect", configuration.endpoint, "--threads", "\(configuration.threadsPerWorker)",
                                 "--id", "local-\(started)", "--max-failed-connections", "5", "--exit-with-parent", parent]
                + configuration.extraArguments
            // Merge workers use this process's OpenBLAS kernels: the same bits as an in-process merge (BLASCore).
            environment.merge(BLASCore.childEnvironment) { $1 }
        }
        environment["OPENBLAS_NUM_THREADS"] = "\(configuration.threadsPerWorker)"
        process.environment = environment
        do {
            try process.run()
        } catch {
            throw CoordinatorError(.io, "\(configuration.executable): cannot start worker: \(error.localizedDescription)")
        }
        workerIDs[process.processIdentifier] = "local-\(started)"
        logger.info("local worker started", metadata: ["pid": "\(process.processIdentifier)", "worker.id": "local-\(started)"])
        return process
    }
}
