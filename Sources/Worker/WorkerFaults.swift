import Foundation

/// TEST-ONLY fault injection, so integration tests can provoke the failures the coordinator must survive.
/// Set from hidden CLI flags or from the `BRICKYARD_TEST_WORKER_FAULTS` environment variable (inherited by the
/// workers `brickyard merge` starts), a comma-separated list:
///
/// - `fail-tasks` — every task fails with a retryable error (the job must fail after max attempts).
/// - `hang-after-tasks=N` — after N finished tasks, stop heartbeating and answering but keep the process and
///   connection alive (the coordinator must detect the silence).
/// - `die-in-task` — SIGKILL this process in the middle of its first task, after the first result chunk.
/// - `slow-tasks=MS` — every computation first sleeps MS milliseconds (a long module, on demand).
/// - `drop-payloads=N` — ignore the first N split-round payloads (`RoundPayload`) received, as if they were lost:
///   the block tasks that refer to them fail with `missing_payload` and the coordinator must resend.
/// - `once=PATH` — hang/die only in the one process that first creates PATH (O_EXCL), so in a pool of local
///   workers sharing the environment exactly one misbehaves, once.
public struct WorkerFaults: Sendable, Equatable {
    public var failTasks = false
    public var hangAfterTasks: Int?
    public var dieInTask = false
    public var onceMarkerPath: String?
    public var slowTaskMilliseconds = 0
    public var dropPayloads = 0

    public static let none = WorkerFaults()
    public static let environmentVariable = "BRICKYARD_TEST_WORKER_FAULTS"

    public init(failTasks: Bool = false, hangAfterTasks: Int? = nil, dieInTask: Bool = false, onceMarkerPath: String? = nil,
                slowTaskMilliseconds: Int = 0, dropPayloads: Int = 0) {
        self.failTasks = failTasks
        self.hangAfterTasks = hangAfterTasks
        self.dieInTask = dieInTask
        self.onceMarkerPath = onceMarkerPath
        self.slowTaskMilliseconds = slowTaskMilliseconds
        self.dropPayloads = dropPayloads
    }

    /// Parses the environment variable's syntax; unknown items are an error naming them.
    public init(specification: String) throws {
        for item in specification.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            switch (parts[0], parts.count == 2 ? parts[1] : nil) {
            case ("fail-tasks", nil), ("fail-tasks", "always"): failTasks = true
            case ("die-in-task", nil): dieInTask = true
            case ("hang-after-tasks", let value?):
                guard let count = Int(value), count >= 0 else { throw WorkerFaultsError(item: item) }
                hangAfterTasks = count
            case ("once", let path?): onceMarkerPath = path
            case ("slow-tasks", let value?):
                guard let milliseconds = Int(value), milliseconds >= 0 else { throw WorkerFaultsError(item: item) }
                slowTaskMilliseconds = milliseconds
            case ("drop-payloads", let value?):
                guard let count = Int(value), count >= 0 else { throw WorkerFaultsError(item: item) }
                dropPayloads = count
            default: throw WorkerFaultsError(item: item)
            }
        }
    }

    /// Whether the hang/die faults may fire in this process: always without `once`, else only for the process
    /// that wins the exclusive creation of the marker file (decided once, on first call).
    mutating func claimOneShot() -> Bool {
        guard let path = onceMarkerPath else { return true }
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0o644)
        onceMarkerPath = nil
        guard fd >= 0 else {
            hangAfterTasks = nil
            dieInTask = false
            return false
        }
        close(fd)
        return true
    }
}

/// A `BRICKYARD_TEST_WORKER_FAULTS` item that is not understood.
public struct WorkerFaultsError: Error, CustomStringConvertible, Sendable {
    public var item: String
    public var description: String {
        "\(WorkerFaults.environmentVariable): \"\(item)\" is not one of fail-tasks, hang-after-tasks=N, die-in-task, slow-tasks=MS, drop-payloads=N, once=PATH"
    }
}
