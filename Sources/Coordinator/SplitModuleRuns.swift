import Foundation
import Kernels
import Logging
import MergeEngine
import WireProtocol

/// The coordinator's side of split lego modules: one `SplitKMeans` per module (its restarts run side by side as
/// tracks), each track's current round of block tasks and the partials received so far. A round's partials are
/// reduced in block order once all are in; what the round changed in that track's state is then checkpointed
/// (atomically, one section file, `KMeansStateFiles.swift`) before its next round is queued, so a restarted coordinator resumes at the last reduced round of every track. The finished clustering
/// becomes the module's record like any module's.
struct SplitModuleRuns {
    /// The centers every block task of a round shares, encoded once per round and sent once per worker
    /// (`Wire.RoundPayload`); the round's block tasks refer to it by id.
    struct SharedPayload {
        let id: UInt64
        let module: Int
        let track: Int
        /// Float32 little-endian.
        let centers: [UInt8]
        let crc32c: UInt32
        /// What a worker holds at most one payload of at a time (its newest).
        var slot: PayloadSlot { PayloadSlot(module: module, track: track) }
    }

    /// A (module, track): a worker keeps the newest round payload of each.
    struct PayloadSlot: Hashable {
        let module: Int
        let track: Int
    }

    /// One track's running round (a restart's, or the final statistics round).
    struct TrackRound {
        /// Each block's request (seeding rounds carry the block's own nearest-candidate state). With a shared
        /// payload their centers are left out (the payload holds them).
        var requests: [BlockRoundRequest]
        /// The round's centers when every block gets the same ones (nil: none, or they differ per block).
        var payload: SharedPayload?
        /// Scheduler task index of each block's task.
        var taskIndices: [Int]
        var partials: [BlockPartial?]
    }

    struct Run {
        let moduleIndex: Int
        var kmeans: SplitKMeans
        /// Rounds in flight, by track (restarts run side by side).
        var rounds: [Int: TrackRound] = [:]
        /// Units (Σ ranks) per block: bounds a partial's size.
        let blockUnits: [Int]
        var seconds = 0.0
        /// Task seconds of first-center rounds (where workers load their blocks), of the other seeding rounds
        /// (oversampling, candidate weights), of Lloyd rounds, of the principal-direction rounds and of the
        /// statistics and quality rounds, summed over blocks and restarts (logged when the module finishes).
        var firstCenterSeconds = 0.0, seedingSeconds = 0.0, lloydSeconds = 0.0, principalSeconds = 0.0
        var statisticsSeconds = 0.0, refitSeconds = 0.0
        /// State bytes written to the checkpoint and the coordinator's thread CPU seconds spent encoding and writing
        /// them (the serial per-round cost; logged when the module finishes).
        var checkpointBytes = 0, checkpointSeconds = 0.0
        /// Rounds reduced (over all tracks) when this run resumed from a checkpoint (nil: started from the start).
        var resumedAtRound: Int?
    }

    private(set) var runs: [Int: Run] = [:]
    /// Scheduler task index → (module index, track, block index).
    private(set) var blockTasks: [Int: (module: Int, track: Int, block: Int)] = [:]
    /// The last round payload id handed out (ids are unique within this coordinator run, never 0).
    private var lastPayloadID: UInt64 = 0
    /// Each block's task template (its inputs and the spec, the same every round), by (module index, block).
    private var templates: [BlockTemplateKey: Wire.KMeansBlockTask.Template] = [:]

    private struct BlockTemplateKey: Hashable {
        let module: Int
        let block: Int
    }

    /// Starts (or resumes from `store`) the k-means of every split module of `plan` not in `finished`.
    init(plan: MergePlan, store: CheckpointStore, finished: Set<Int>, logger: Logger) {
        for (index, module) in plan.modules.enumerated() where !finished.contains(index) {
            guard let blocks = module.blocks else { continue }
            var kmeans = SplitLego.kmeans(module: module, spec: plan.spec, blockCount: blocks.count)
            var resumedAt: Int?
            do {
                let saved = try store.readKMeansCheckpoint(index: index)
                if !saved.sections.isEmpty {
                    kmeans = try SplitKMeans(decodingSections: saved.sections, logs: saved.logs,
                                             configuration: kmeans.configuration, restarts: kmeans.restarts,
                                             quality: kmeans.quality, principalIterations: kmeans.principalIterations,
                                             refit: kmeans.refitStart, selection: kmeans.selection)
                    resumedAt = kmeans.round
                    logger.info("resuming split module from its last checkpointed round", metadata: [
                        "module": "\(module.name)", "round": "\(kmeans.round)",
                        "phases": "\(kmeans.runs.map { "\($0.phase)" }.joined(separator: ","))",
                        "principal_rounds": "\(kmeans.principal?.step ?? 0)", "refit_rounds": "\(kmeans.refit?.step ?? 0)",
                        "selection_rounds": "\(kmeans.selecting?.step ?? 0)"])
                }
            } catch {
                logger.warning("k-means state refused; the module's rounds start over", metadata: [
                    "module": "\(module.name)", "error": "\(error)"])
                kmeans = SplitLego.kmeans(module: module, spec: plan.spec, blockCount: blocks.count)
                store.removeKMeansState(index: index)
            }
            let units = blocks.map { block in module.sources[block.sources].reduce(0) { $0 + $1.module.rank } }
            runs[index] = Run(moduleIndex: index, kmeans: kmeans, blockUnits: units, resumedAtRound: resumedAt)
        }
    }

    var moduleIndices: Set<Int> { Set(runs.keys) }

    /// Round each resumed module restarted at, by module name (for the report).
    func resumedRounds(plan: MergePlan) -> [String: Int] {
        var result: [String: Int] = [:]
        for run in runs.values { if let round = run.resumedAtRound { result[plan.modules[run.moduleIndex].name] = round } }
        return result
    }

    /// Queues the current round of every active track of module `index` not already running (one task per block).
    mutating func queueRounds(module index: Int, plan: MergePlan, scheduler: inout Scheduler) {
        guard var run = runs[index] else { return }
        let name = plan.modules[index].name
        let blocks = run.blockUnits.count
        for track in run.kmeans.activeTracks where run.rounds[track] == nil {
            var requests = (0..<blocks).compactMap { run.kmeans.request(track: track, block: $0) }
            guard requests.count == blocks else { continue }
            var payload: SharedPayload?
            if let centers = requests.first?.centers, !centers.isEmpty, requests.allSatisfy({ $0.centers == centers }) {
                var bytes: [UInt8] = []
                FloatBytes.appendLittleEndian(centers, to: &bytes)
                lastPayloadID += 1
                payload = SharedPayload(id: lastPayloadID, module: index, track: track, centers: bytes,
                                        crc32c: CRC32C.checksum(bytes))
                for block in requests.indices { requests[block].centers = [] }
            }
            let tasks = scheduler.addTasks((0..<blocks).map { TaskKey(module: name, block: $0 + 1) })
            run.rounds[track] = TrackRound(requests: requests, payload: payload, taskIndices: tasks,
                                           partials: Array(repeating: nil, count: blocks))
            for (block, task) in tasks.enumerated() { blockTasks[task] = (index, track, block) }
        }
        runs[index] = run
    }

    /// The message for a block task (nil if `taskIndex` is not a block task of a running round).
    mutating func message(taskIndex: Int, plan: MergePlan, jobID: String, attempt: UInt32, inputMode: Wire.InputMode = .shared,
                          inputsFollow: Bool = false, resultChunkBytes: Int) throws -> Wire.KMeansBlockTask? {
        guard let (module, track, block) = blockTasks[taskIndex], let run = runs[module],
              let round = run.rounds[track] else { return nil }
        let key = BlockTemplateKey(module: module, block: block)
        let template: Wire.KMeansBlockTask.Template
        if let known = templates[key], known.task.jobID == jobID, known.task.inputMode == inputMode,
           known.task.resultChunkBytes == UInt32(clamping: resultChunkBytes) {
            template = known
        } else {
            template = try Wire.KMeansBlockTask.Template(module: plan.modules[module], blockIndex: block, spec: plan.spec,
                                                         jobID: jobID, inputMode: inputMode,
                                                         resultChunkBytes: resultChunkBytes)
            templates[key] = template
        }
        return Wire.KMeansBlockTask(template, taskID: UInt64(taskIndex), attempt: attempt, request: round.requests[block],
                                    seed: run.kmeans.seed(track: track), inputsFollow: inputsFollow,
                                    payload: round.payload.map { ($0.id, $0.crc32c) })
    }

    /// The shared round payload a block task refers to (nil: its centers travel in the task, or it has none).
    func payload(of taskIndex: Int) -> SharedPayload? {
        guard let (module, track, _) = blockTasks[taskIndex] else { return nil }
        return runs[module]?.rounds[track]?.payload
    }

    /// (module index, block index) of a block task of a running round.
    func block(of taskIndex: Int) -> (module: Int, block: Int)? {
        blockTasks[taskIndex].map { ($0.module, $0.block) }
    }

    /// Upper bound of a block task's result body.
    func maxResultBytes(taskIndex: Int, plan: MergePlan) -> Int? {
        guard let (module, track, block) = blockTasks[taskIndex], let run = runs[module] else { return nil }
        let dim = plan.modules[module].outFeatures + plan.modules[module].inFeatures
        let request = run.rounds[track]?.requests[block]
        let centers = (request?.centerCount ?? 0) + (request?.centerOffset ?? 0)
        let reported = run.blockUnits[block] + (request?.farthest ?? 0) + 1
        // Quality-track products: at most [out, in] or [max(out, in), probes + width] values.
        let product = request.map { $0.kind.isProduct ? 4 * max(plan.modules[module].outFeatures * plan.modules[module].inFeatures,
                                                               dim * ($0.probes + $0.centerCount)) : 0 } ?? 0
        return 4096 + reported * (4 * dim + 64 + 12) + centers * (4 * dim + 32) + product
    }

    func isBlockTask(_ taskIndex: Int) -> Bool { blockTasks[taskIndex] != nil }

    func describe(_ taskIndex: Int, plan: MergePlan) -> String? {
        guard let (module, track, block) = blockTasks[taskIndex], let run = runs[module] else { return nil }
        let round = track < run.kmeans.restarts ? run.kmeans.runs[track].round : run.kmeans.round
        let what = track < run.kmeans.restarts ? "restart \(track) round \(round)"
            : track == run.kmeans.qualityTrack ? "quality round \(run.kmeans.quality?.step ?? 0)"
            : run.kmeans.selecting.map { !$0.isDone } == true ? "selection round \(run.kmeans.selecting?.step ?? 0)"
            : run.kmeans.principal.map { !$0.isDone } == true ? "principal directions round \(run.kmeans.principal?.step ?? 0)"
            : run.kmeans.request(track: track, block: block)?.kind.isRefit == true ? "refit round \(run.kmeans.refit?.step ?? 0)"
            : "final statistics round"
        return "\(plan.modules[module].name) block \(block) \(what)"
    }

    /// What a block result led to.
    enum Progress {
        /// Waiting for other blocks of the round.
        case waiting
        /// The round was reduced and checkpointed; queue the module's next rounds.
        case nextRound(module: Int)
        /// The module's k-means finished: write its result.
        case finished(module: Int, outcome: BlockKMeansOutcome, seconds: Double)
    }

    /// Decodes and checks a block's result body (throws: the result is rejected and the block retried).
    func partial(from body: ArraySlice<UInt8>, taskIndex: Int) throws -> BlockPartial {
        guard let (module, track, block) = blockTasks[taskIndex], let run = runs[module] else {
            throw CoordinatorError(.badResult, "no running round for task \(taskIndex)")
        }
        let partial: BlockPartial
        do {
            partial = try BlockPartial.decode(body)
            try run.kmeans.validate(partial, track: track)
        } catch {
            throw CoordinatorError(.badResult, "block \(block) partial: \(error)")
        }
        guard partial.unitCount <= run.blockUnits[block] else {
            throw CoordinatorError(.badResult, "block \(block) reports \(partial.unitCount) units; it has at most \(run.blockUnits[block])")
        }
        return partial
    }

    /// Stores a verified partial; reduces the track's round when it was the last block, checkpointing the state.
    mutating func accept(_ partial: BlockPartial, taskIndex: Int, seconds: Double, store: CheckpointStore) throws -> Progress {
        guard let (module, track, block) = blockTasks[taskIndex], var run = runs[module],
              var round = run.rounds[track] else { return .waiting }
        round.partials[block] = partial
        run.seconds += seconds
        switch partial.kind {
        case .firstCenter: run.firstCenterSeconds += seconds
        case .oversample, .draw, .candidateWeights: run.seedingSeconds += seconds
        case .lloyd: run.lloydSeconds += seconds
        case .principalStart, .principalLeft, .principalRight: run.principalSeconds += seconds
        case .refitLeft, .refitRight: run.refitSeconds += seconds
        case .reweight, .probeImage, .target, .targetTimes, .targetTransposedTimes: run.statisticsSeconds += seconds
        }
        blockTasks[taskIndex] = nil
        guard round.partials.allSatisfy({ $0 != nil }) else {
            run.rounds[track] = round
            runs[module] = run
            return .waiting
        }
        do {
            try run.kmeans.advance(track: track, with: round.partials.compactMap { $0 })
        } catch {
            throw CoordinatorError(.badResult, "module k-means track \(track) round: \(error)")
        }
        run.rounds[track] = nil
        let started = Self.threadCPUSeconds()
        // Only what the round changed: one section of the track, and a seeding round's new candidates.
        run.checkpointBytes += try store.writeKMeansCheckpoint(run.kmeans.checkpoint(track: track), index: module)
        run.checkpointSeconds += Self.threadCPUSeconds() - started
        runs[module] = run
        if let outcome = run.kmeans.outcome {
            // A job may split hundreds of modules: keep only the running ones' templates (~the inputs' paths each).
            templates = templates.filter { $0.key.module != module }
            return .finished(module: module, outcome: outcome, seconds: run.seconds)
        }
        return .nextRound(module: module)
    }

    func round(of module: Int) -> Int { runs[module]?.kmeans.round ?? 0 }

    /// CPU seconds of the calling thread (the checkpoint cost is measured in CPU, not in wall time under load).
    static func threadCPUSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) * 1e-9
    }

    /// State bytes written and CPU seconds spent checkpointing a module's rounds.
    func checkpointCost(of module: Int) -> (bytes: Int, seconds: Double) {
        guard let run = runs[module] else { return (0, 0) }
        return (run.checkpointBytes, run.checkpointSeconds)
    }

    /// Task seconds by kind of round, for the log line of a finished module.
    func secondsByKind(of module: Int) -> (firstCenter: Double, seeding: Double, lloyd: Double, principal: Double,
                                          statistics: Double, refit: Double) {
        guard let run = runs[module] else { return (0, 0, 0, 0, 0, 0) }
        return (run.firstCenterSeconds, run.seedingSeconds, run.lloydSeconds, run.principalSeconds, run.statisticsSeconds,
                run.refitSeconds)
    }
}
