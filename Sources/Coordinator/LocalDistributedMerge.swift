import Foundation
import Logging
import MergeEngine

/// `brickyard merge` on the distributed runtime: a coordinator on a private ipc:// endpoint in a temporary
/// directory plus N worker processes of this same executable, supervised (respawned within a bound) until
/// the job ends. The same code path as a cluster run, only the workers are local.
public enum LocalDistributedMerge {
    public static func run(plan: MergePlan, options: DistributedMergeOptions, workers: Int, threadsPerWorker: Int,
                           extraWorkerArguments: [String] = [], logger: Logger, stop: StopSignal) throws -> DistributedMergeOutcome {
        removeDirectoriesOfDeadMerges()
        let directory = NSTemporaryDirectory() + "\(directoryPrefix)\(getpid())-\(UUID().uuidString.prefix(8))"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CoordinatorError(.io, "\(directory): cannot create the private endpoint directory: \(error.localizedDescription)")
        }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var coordinator = options.coordinator
        coordinator.bind = "ipc://\(directory)/coordinator.sock"
        var runOptions = options
        runOptions.coordinator = coordinator

        let pool = LocalWorkerPool(configuration: .init(executable: LocalWorkerPool.currentExecutable(),
                                                        endpoint: coordinator.bind, count: workers,
                                                        threadsPerWorker: threadsPerWorker,
                                                        extraArguments: extraWorkerArguments), logger: logger)
        defer { pool.stopAll() }
        return try DistributedMerge.run(plan: plan, options: runOptions, logger: logger, stop: stop,
                                        listening: { _ in try pool.start() }, tick: pool.superviseTick,
                                        workerLost: pool.replaceHung)
    }

    static let directoryPrefix = "brickyard-merge-"

    /// A merge killed with SIGKILL leaves its endpoint directory (just a socket) behind; the next merge removes
    /// those whose process no longer exists. Directories of live processes, or that this user may not remove,
    /// are left alone.
    static func removeDirectoriesOfDeadMerges() {
        let temporary = NSTemporaryDirectory()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? []
        for entry in entries where entry.hasPrefix(directoryPrefix) {
            let fields = entry.dropFirst(directoryPrefix.count).split(separator: "-")
            guard fields.count == 2, let pid = Int32(fields[0]), pid > 0 else { continue }
            if kill(pid, 0) == 0 || errno != ESRCH { continue }
            try? FileManager.default.removeItem(atPath: temporary + entry)
        }
    }
}
