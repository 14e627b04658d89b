import AdapterIO
import Foundation

/// The small JSON file a coordinator keeps current while it serves (`--status-file`): progress, workers,
/// retries and how the run ended. `brickyard status` reads it; it is rewritten atomically (temp, fsync,
/// rename), so a reader never sees half a file.
public struct CoordinatorStatus: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        /// Serving tasks.
        case running
        /// Every module is checkpointed; the output is being written.
        case assembling
        /// The output adapter is written.
        case done
        /// Stopped by a signal (SIGTERM, SIGINT, SIGUSR2) with finished modules checkpointed: resumable.
        case stopped
        /// The job failed (see `message`).
        case failed
    }

    public static let currentFormat = 1
    public var format: Int
    public var state: State
    public var jobHash: String
    public var modulesDone: Int
    public var modulesTotal: Int
    /// Modules taken from the checkpoint when this coordinator started (non-zero after a requeue).
    public var resumed: Int
    public var workers: Int
    public var retries: Int
    /// Tasks handed out so far by this coordinator (retries included).
    public var tasksSent: Int
    /// Where workers reach the coordinator (the advertised endpoint when one is set).
    public var endpoint: String?
    public var host: String
    public var pid: Int32
    /// Wall-clock times, seconds since 1970.
    public var startedAt: Double
    public var firstTaskSentAt: Double?
    public var updatedAt: Double
    /// Why the run stopped or failed.
    public var message: String?
    /// `http://HOST:PORT/metrics` when the coordinator serves Prometheus metrics (`--metrics-bind`), with the
    /// advertised host in place of a wildcard address.
    public var metrics: String? = nil
}

/// Keeps a `CoordinatorStatus` file current: rewritten when progress changes (finished modules, workers,
/// retries) and at most every `interval` otherwise, then once more with the final state.
/// Used from the coordinator's loop thread only.
public final class CoordinatorStatusWriter {
    public let path: String
    private var status: CoordinatorStatus
    private let interval: Duration
    private var lastWrite: ContinuousClock.Instant?
    private var failedOnce = false

    public init(path: String, jobHash: String, total: Int, interval: Duration = .seconds(2)) {
        self.path = path
        self.interval = interval
        let now = Date().timeIntervalSince1970
        status = CoordinatorStatus(format: CoordinatorStatus.currentFormat, state: .running, jobHash: jobHash,
                                   modulesDone: 0, modulesTotal: total, resumed: 0, workers: 0, retries: 0, tasksSent: 0,
                                   endpoint: nil, host: ProcessInfo.processInfo.hostName,
                                   pid: ProcessInfo.processInfo.processIdentifier, startedAt: now,
                                   firstTaskSentAt: nil, updatedAt: now, message: nil)
    }

    /// The endpoint workers should use, once the socket is bound (and the metrics URL, if any).
    public func listening(on endpoint: String, resumed: Int, done: Int, metrics: String? = nil) {
        status.endpoint = endpoint
        status.metrics = metrics
        status.resumed = resumed
        status.modulesDone = done
        write()
    }

    /// Called from the serve loop with the current figures; writes only when something a reader cares about
    /// changed or the interval passed.
    public func progress(done: Int, workers: Int, retries: Int, tasksSent: Int) {
        let changed = done != status.modulesDone || workers != status.workers || retries != status.retries
            || (tasksSent > 0 && status.firstTaskSentAt == nil)
        if tasksSent > 0 && status.firstTaskSentAt == nil { status.firstTaskSentAt = Date().timeIntervalSince1970 }
        status.modulesDone = done
        status.workers = workers
        status.retries = retries
        status.tasksSent = tasksSent
        if changed || lastWrite.map({ ContinuousClock.now - $0 >= interval }) ?? true { write() }
    }

    /// Records the final (or assembling) state and writes it.
    public func finish(_ state: CoordinatorStatus.State, message: String? = nil) {
        status.state = state
        status.message = message
        if state == .assembling || state == .done { status.modulesDone = status.modulesTotal }
        if state != .running && state != .assembling { status.workers = 0 }
        write()
    }

    private func write() {
        status.updatedAt = Date().timeIntervalSince1970
        lastWrite = .now
        do {
            try AtomicFile.write(try Self.encode(status), to: path)
        } catch {
            // A status file is a convenience: a full disk must not fail the merge. Say so once.
            if !failedOnce { writeToStandardError("brickyard: cannot write status file \(path): \(error)\n") }
            failedOnce = true
        }
    }

    public static func encode(_ status: CoordinatorStatus) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return Array(try encoder.encode(status)) + [0x0A]
    }

    /// Reads a status file; nil if it does not exist yet.
    public static func read(path: String) throws -> CoordinatorStatus? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            return try JSONDecoder().decode(CoordinatorStatus.self, from: data)
        } catch {
            throw CoordinatorError(.io, "\(path): unreadable status file: \(error)")
        }
    }
}
