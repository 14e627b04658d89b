import AdapterIO
import Foundation
import Logging
import MergeEngine
import WireProtocol

/// What a distributed run needs besides the plan.
public struct DistributedMergeOptions: Sendable {
    public var outputDirectory: String
    public var overwrite: Bool
    /// nil: a temporary checkpoint, removed when the run ends.
    public var checkpointDirectory: String?
    public var coordinator: CoordinatorOptions

    public init(outputDirectory: String, overwrite: Bool = false, checkpointDirectory: String? = nil, coordinator: CoordinatorOptions) {
        self.outputDirectory = outputDirectory
        self.overwrite = overwrite
        self.checkpointDirectory = checkpointDirectory
        self.coordinator = coordinator
    }
}

/// The result of a distributed run: the report written, plus the runtime figures the CLI prints.
public struct DistributedMergeOutcome: Sendable {
    public var report: MergeReport
    public var resumed: Int
    public var retries: Int
}

/// A whole job on the distributed runtime: checkpoint (adopt or create), serve tasks to workers until every
/// module is checkpointed, then assemble the output adapter from the checkpoint records, one record at a time.
public enum DistributedMerge {
    /// `listening` runs once the coordinator's socket is bound; `tick` on every loop iteration and `workerLost`
    /// when a worker misses its heartbeats (local worker supervision).
    public static func run(plan: MergePlan, options: DistributedMergeOptions, logger: Logger, stop: StopSignal,
                           listening: ((String) throws -> Void)? = nil, tick: (() -> Void)? = nil,
                           workerLost: ((String) -> Void)? = nil) throws -> DistributedMergeOutcome {
        try OutputAssembler.checkDestination(options.outputDirectory, overwrite: options.overwrite)
        let started = Date()
        let jobHash = try JobFingerprint.compute(plan: plan)
        let temporary = options.checkpointDirectory == nil
        let directory = options.checkpointDirectory
            ?? NSTemporaryDirectory() + "brickyard-checkpoint-\(getpid())-\(UUID().uuidString.prefix(8))"
        let status = options.coordinator.statusFile.map {
            CoordinatorStatusWriter(path: $0, jobHash: jobHash, total: plan.modules.count)
        }
        let store: CheckpointStore
        let server: CoordinatorServer
        do {
            store = try CheckpointStore(directory: directory, jobHash: jobHash, taskCount: plan.modules.count, logger: logger)
            server = try CoordinatorServer(plan: plan, store: store, options: options.coordinator,
                                           jobID: String(jobHash.prefix(16)), logger: logger, stop: stop)
        } catch {
            status?.finish(.failed, message: "\(error)")
            throw error
        }
        defer { if temporary { store.removeAll() } }
        server.onTick = tick
        server.onListening = listening
        server.onWorkerLost = workerLost
        server.status = status
        let summary: ServeSummary
        let report: MergeReport
        do {
            do {
                summary = try server.run()
            } catch let error as CoordinatorError where error.code == .interrupted {
                throw CoordinatorError(.interrupted, error.message + (temporary
                    ? " (temporary checkpoint, removed: pass --checkpoint DIR to be able to resume)"
                    : "; rerun the same command to resume"))
            }
            status?.finish(.assembling)
            report = try assemble(plan: plan, store: store, headers: server.finishedHeaders, summary: summary,
                                  outputDirectory: options.outputDirectory, overwrite: options.overwrite,
                                  wallSeconds: Date().timeIntervalSince(started))
        } catch {
            let interrupted = (error as? CoordinatorError)?.code == .interrupted
            status?.finish(interrupted ? .stopped : .failed, message: "\(error)")
            throw error
        }
        status?.finish(.done)
        logger.info("merge written", metadata: ["out": "\(options.outputDirectory)", "resumed": "\(summary.resumed)",
                                                "computed": "\(summary.computed)", "retries": "\(summary.retries)"])
        return DistributedMergeOutcome(report: report, resumed: summary.resumed, retries: summary.retries)
    }

    /// Writes the output from the checkpoint: every record is mapped and verified again as it is streamed to
    /// the writer (Float32 output straight from the mapping), so a record damaged after it was written cannot
    /// reach the output.
    static func assemble(plan: MergePlan, store: CheckpointStore, headers: [Int: CheckpointRecordHeader],
                         summary: ServeSummary, outputDirectory: String, overwrite: Bool,
                         wallSeconds: Double) throws -> MergeReport {
        var entries: [MergeReport.Module] = []
        var declared: [PeftOutputModule] = []
        for (index, module) in plan.modules.enumerated() {
            guard let header = headers[index] else {
                throw CoordinatorError(.corruptRecord, "\(store.directory): no checkpoint record for module \(module.name)")
            }
            let shapeOnly = ModuleResult(name: module.name, rank: header.rank, outFeatures: module.outFeatures,
                                         inFeatures: module.inFeatures, b: [], a: [], stats: header.stats)
            entries.append(MergeReport.Module(plan: module, method: plan.spec.method, result: shapeOnly,
                                              workerID: header.workerID, attempts: header.attempts, seconds: header.seconds))
            declared.append(PeftOutputModule(name: module.name, rank: header.rank, inFeatures: module.inFeatures,
                                             outFeatures: module.outFeatures))
        }
        var report = MergeReport(plan: plan, modules: entries, wallSeconds: wallSeconds)
        report.runtime = MergeReport.Runtime(resumedModules: summary.resumed, computedModules: summary.computed,
                                             retries: summary.retries)
        if !summary.resumedRounds.isEmpty { report.runtime?.resumedRounds = summary.resumedRounds }
        try OutputAssembler.assemble(plan: plan, to: outputDirectory, overwrite: overwrite, modules: declared,
                                     report: report) { sink in
            for (index, module) in plan.modules.enumerated() {
                let key = TaskKey(module: module.name)
                // Mapped, verified, and written from the mapping: no decoding, no copy of the body here.
                let written: Void? = try store.withRecord(index: index, key: key, outFeatures: module.outFeatures,
                                                          inFeatures: module.inFeatures) { header, body in
                    try sink.write(name: module.name, rank: header.rank, outFeatures: module.outFeatures,
                                   inFeatures: module.inFeatures, body: body)
                }
                guard written != nil else {
                    throw CoordinatorError(.corruptRecord, "\(store.recordPath(index: index, key: key)): record vanished before assembly")
                }
            }
        }
        return report
    }
}
