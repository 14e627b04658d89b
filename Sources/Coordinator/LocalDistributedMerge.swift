import Foundation
import Logging
import MergeEngine

/// `brickyard merge` on the distributed runtime: a coordinator on a private ipc:// endpoint in a temporary
/// directory plus N worker processes of this same executable, supervised (respawned within a bound) until
/// the job ends. The same code path as a cluster run, only the workers are local.
public enum LocalDistributedMerge {
    public static func run(plan: MergePlan, options: DistributedMergeOptions, workers: Int, threadsPerWorker: Int,
                           extraWorkerArguments: [String] = [], logger: Logger, stop: StopSignal) throws -> DistributedMergeOutcome {
        let directory = NSTemporaryDirectory() + "brickyard-merge-\(getpid())-\(UUID().uuidString.prefix(8))"
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
}
