import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One task of a symmetric cluster launch (`srun brickyard cluster-task RUN_DIR`): task 0 runs the coordinator,
/// every other task a worker that first waits for the coordinator's endpoint file in the run directory.
/// Both run as child processes of this launcher so that it can (a) record the coordinator's exit code for the
/// batch script, and (b) end a worker whose coordinator is gone instead of letting it reconnect until the
/// time limit.
public enum ClusterTask {
    public enum Role: Equatable, Sendable {
        case coordinator
        case worker(rank: Int)
    }

    /// Task 0 (`SLURM_PROCID`, else `BRICKYARD_TASK_RANK`, else 0) is the coordinator.
    public static func role(environment: [String: String]) throws -> Role {
        let text = environment["SLURM_PROCID"] ?? environment["BRICKYARD_TASK_RANK"] ?? "0"
        guard let rank = Int(text), rank >= 0 else { throw ClusterError("task rank '\(text)' (SLURM_PROCID) is not a number") }
        return rank == 0 ? .coordinator : .worker(rank: rank)
    }

    /// `brickyard coordinator …` for a run: a free port on every interface, advertised under this host's name.
    public static func coordinatorArguments(run: RunDirectory, record: RunRecord, host: String) -> [String] {
        let launch = record.launch
        let port = launch.port.map { $0 > 0 ? "\($0)" : "*" } ?? "*"
        return ["coordinator", record.jobFile, "--bind", "tcp://0.0.0.0:\(port)",
                "--advertise-host", launch.advertiseHost ?? host,
                "--out", run.outputPath, "--checkpoint", run.checkpointPath,
                "--endpoint-file", run.endpointPath, "--status-file", run.statusPath,
                "--input-mode", launch.inputMode, "--heartbeat-ms", "\(launch.heartbeatMilliseconds)",
                "--liveness", "\(launch.liveness)", "--max-attempts", "\(launch.maxAttempts)", "--log-level", "info"]
            + (launch.maxTaskMB.map { ["--max-task-mb", "\($0)"] } ?? [])
            + (launch.metricsPort.map { ["--metrics-bind", "0.0.0.0:\($0)"] } ?? [])
            + (record.curve?.coordinatorArguments ?? [])
    }

    /// `brickyard worker …` for a run, once the endpoint is known.
    public static func workerArguments(record: RunRecord, endpoint: String, workerID: String) -> [String] {
        let launch = record.launch
        return ["worker", "--connect", endpoint, "--threads", "\(launch.threadsPerWorker)", "--id", workerID,
                "--heartbeat-ms", "\(launch.heartbeatMilliseconds)", "--liveness", "\(launch.liveness)",
                "--reconnect-max-ms", "8000", "--max-failed-connections", "40"]
            + (record.curve?.workerArguments ?? [])
    }

    /// How long workers wait for the coordinator's endpoint and for themselves to leave after it exited.
    public struct Timing: Sendable {
        public var endpointTimeout: Duration = .seconds(3600)
        public var leaveGrace: Duration = .seconds(15)
        public init() {}
    }

    /// Runs this task to its end and returns the exit code to leave with.
    public static func run(run: RunDirectory, environment: [String: String], timing: Timing = Timing()) -> Int32 {
        let record: RunRecord
        let role: Role
        do {
            guard let found = try run.readRecord() else { throw ClusterError("\(run.recordPath): missing; is \(run.path) a run directory?") }
            record = found
            role = try self.role(environment: environment)
        } catch {
            say("\(error)")
            return 1
        }
        switch role {
        case .coordinator:
            return runCoordinator(run: run, record: record)
        case .worker(let rank):
            let node = environment["SLURMD_NODENAME"] ?? hostName()
            return runWorker(run: run, record: record, workerID: "\(node)-task\(rank)", timing: timing)
        }
    }

    private static func runCoordinator(run: RunDirectory, record: RunRecord) -> Int32 {
        unlink(run.coordinatorExitPath)
        let child = ChildProcess(executable: record.launch.executable)
        let signals = SignalForwarder(forwarding: [SIGTERM, SIGINT, SIGUSR2], to: child)
        defer { signals.cancel() }
        let code: Int32
        do {
            try child.start(coordinatorArguments(run: run, record: record, host: hostName()))
            code = child.waitForExit()
        } catch {
            say("\(error)")
            code = 1
        }
        do {
            try run.writeAtomically(Array("\(code)\n".utf8), to: run.coordinatorExitPath)
        } catch {
            say("\(error)")
        }
        return code
    }

    private static func runWorker(run: RunDirectory, record: RunRecord, workerID: String, timing: Timing) -> Int32 {
        // The time-limit warning is for the coordinator; a worker leaves when the coordinator says so.
        signal(SIGUSR2, SIG_IGN)
        let child = ChildProcess(executable: record.launch.executable)
        let signals = SignalForwarder(forwarding: [SIGTERM, SIGINT], to: child)
        defer { signals.cancel() }
        let waitStarted = ContinuousClock.now
        var endpoint: String?
        while endpoint == nil {
            if signals.received { return 0 }
            if FileManager.default.fileExists(atPath: run.coordinatorExitPath) {
                say("\(workerID): the coordinator exited before it listened; nothing to do")
                return 0
            }
            if ContinuousClock.now - waitStarted > timing.endpointTimeout {
                say("\(workerID): no coordinator endpoint in \(run.endpointPath) after \(timing.endpointTimeout)")
                return 1
            }
            endpoint = run.readEndpoint()
            if endpoint == nil { Thread.sleep(forTimeInterval: 0.1) }
        }
        guard let endpoint else { return 1 }
        do {
            try child.start(workerArguments(record: record, endpoint: endpoint, workerID: workerID))
        } catch {
            say("\(error)")
            return 1
        }
        var coordinatorGoneAt: ContinuousClock.Instant?
        var terminated = false
        while child.isRunning {
            Thread.sleep(forTimeInterval: 0.2)
            if coordinatorGoneAt == nil && FileManager.default.fileExists(atPath: run.coordinatorExitPath) {
                coordinatorGoneAt = .now
            }
            if let gone = coordinatorGoneAt, ContinuousClock.now - gone > timing.leaveGrace {
                // Its Disconnect did not reach this worker (link cut, coordinator killed): stop it.
                if !terminated {
                    say("\(workerID): the coordinator exited \(timing.leaveGrace) ago; stopping the worker")
                    child.signal(SIGTERM)
                    terminated = true
                } else if ContinuousClock.now - gone > timing.leaveGrace * 2 {
                    child.signal(SIGKILL)
                }
            }
        }
        return terminated ? 0 : child.waitForExit()
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func say(_ text: String) {
        FileHandle.standardError.write(Data("brickyard cluster-task: \(text)\n".utf8))
    }
}

/// A child process whose exit code is reported like a shell does (128 + signal for a signal death).
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is set once in `start` before any signal can be forwarded; Process is thread-safe
    // for `isRunning` and `processIdentifier`.
    private let executable: String
    private var process: Process?

    init(executable: String) { self.executable = executable }

    func start(_ arguments: [String]) throws {
        let process = Process()
        if executable.contains("/") {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + arguments
        }
        do {
            try process.run()
        } catch {
            throw ClusterError("\(executable): cannot start: \(error.localizedDescription)")
        }
        self.process = process
    }

    var isRunning: Bool { process?.isRunning ?? false }

    func signal(_ number: Int32) {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, number)
    }

    func waitForExit() -> Int32 {
        guard let process else { return 1 }
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }
}

/// Catches signals in this process (so the launcher itself never dies of them) and passes each one on to
/// the child.
final class SignalForwarder: @unchecked Sendable {
    // @unchecked: `sources` is set in init and only cancelled afterwards; the flag has its own lock.
    private let sources: [any DispatchSourceSignal]
    private let flag = ReceivedFlag()

    init(forwarding signals: [Int32], to child: ChildProcess) {
        let queue = DispatchQueue(label: "brickyard.cluster-task.signals")
        var sources: [any DispatchSourceSignal] = []
        for number in signals {
            Glibc.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            let flag = self.flag
            source.setEventHandler {
                flag.set()
                child.signal(number)
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    var received: Bool { flag.isSet }

    func cancel() { for source in sources { source.cancel() } }
}

private final class ReceivedFlag: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
