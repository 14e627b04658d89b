import Foundation
import Kernels
import Logging
import MergeEngine
import WireProtocol

/// The coordinator's side of split lego modules: one `BlockKMeansDriver` per module, the current round's block
/// tasks and the partials received so far. A round's partials are reduced in block order once all are in; the
/// driver's state is then checkpointed (atomically) before the next round is queued, so a restarted coordinator
/// resumes at the last reduced round. The finished clustering becomes the module's record like any module's.
struct SplitModuleRuns {
    struct Run {
        let moduleIndex: Int
        var driver: BlockKMeansDriver
        /// The current round's request (the same for every block).
        var request: BlockRoundRequest?
        /// Scheduler task index of each block's task in the current round.
        var taskIndices: [Int] = []
        var partials: [BlockPartial?] = []
        /// Units (Σ ranks) per block: bounds a partial's size.
        let blockUnits: [Int]
        var seconds = 0.0
        /// Round at which this run resumed from a checkpoint (nil: started from the first round).
        var resumedAtRound: Int?
    }

    private(set) var runs: [Int: Run] = [:]
    /// Scheduler task index → (module index, block index).
    private(set) var blockTasks: [Int: (module: Int, block: Int)] = [:]

    /// Starts (or resumes from `store`) the k-means of every split module of `plan` not in `finished`.
    init(plan: MergePlan, store: CheckpointStore, finished: Set<Int>, logger: Logger) {
        for (index, module) in plan.modules.enumerated() where !finished.contains(index) {
            guard let blocks = module.blocks else { continue }
            let configuration = SplitLego.configuration(module: module, spec: plan.spec, blockCount: blocks.count)
            var driver = BlockKMeansDriver(configuration: configuration)
            var resumedAt: Int?
            if let bytes = store.readKMeansState(index: index) {
                do {
                    driver = try BlockKMeansDriver(decoding: bytes, configuration: configuration)
                    resumedAt = driver.round
                    logger.info("resuming split module from its last checkpointed round", metadata: [
                        "module": "\(module.name)", "round": "\(driver.round)", "phase": "\(driver.phase)"])
                } catch {
                    logger.warning("k-means state rejected; the module's rounds start over", metadata: [
                        "module": "\(module.name)", "error": "\(error)"])
                    store.removeKMeansState(index: index)
                }
            }
            let units = blocks.map { block in module.sources[block.sources].reduce(0) { $0 + $1.module.rank } }
            runs[index] = Run(moduleIndex: index, driver: driver, blockUnits: units, resumedAtRound: resumedAt)
        }
    }

    var moduleIndices: Set<Int> { Set(runs.keys) }

    /// Round each resumed module restarted at, by module name (for the report).
    func resumedRounds(plan: MergePlan) -> [String: Int] {
        var result: [String: Int] = [:]
        for run in runs.values { if let round = run.resumedAtRound { result[plan.modules[run.moduleIndex].name] = round } }
        return result
    }

    /// Queues the current round of module `index` (one task per block).
    mutating func queueRound(module index: Int, plan: MergePlan, scheduler: inout Scheduler) {
        guard var run = runs[index], let request = run.driver.request() else { return }
        let name = plan.modules[index].name
        let blocks = run.blockUnits.count
        run.request = request
        run.taskIndices = scheduler.addTasks((0..<blocks).map { TaskKey(module: name, block: $0 + 1) })
        run.partials = Array(repeating: nil, count: blocks)
        for (block, task) in run.taskIndices.enumerated() { blockTasks[task] = (index, block) }
        runs[index] = run
    }

    /// The message for a block task (nil if `taskIndex` is not a block task of a running round).
    func message(taskIndex: Int, plan: MergePlan, jobID: String, attempt: UInt32,
                 resultChunkBytes: Int) throws -> Wire.KMeansBlockTask? {
        guard let (module, block) = blockTasks[taskIndex], let run = runs[module], let request = run.request else { return nil }
        return try Wire.KMeansBlockTask(module: plan.modules[module], blockIndex: block, spec: plan.spec, jobID: jobID,
                                        taskID: UInt64(taskIndex), attempt: attempt, request: request,
                                        resultChunkBytes: resultChunkBytes)
    }

    /// Upper bound of a block task's result body.
    func maxResultBytes(taskIndex: Int, plan: MergePlan) -> Int? {
        guard let (module, block) = blockTasks[taskIndex], let run = runs[module] else { return nil }
        let dim = plan.modules[module].outFeatures + plan.modules[module].inFeatures
        let centers = run.request?.centerCount ?? 0
        let reported = run.blockUnits[block] + (run.request?.farthest ?? 0) + 1
        return 4096 + reported * (4 * dim + 64) + centers * (4 * dim + 32)
    }

    func isBlockTask(_ taskIndex: Int) -> Bool { blockTasks[taskIndex] != nil }

    func describe(_ taskIndex: Int, plan: MergePlan) -> String? {
        guard let (module, block) = blockTasks[taskIndex] else { return nil }
        return "\(plan.modules[module].name) block \(block) round \(runs[module]?.driver.round ?? -1)"
    }

    /// What a block result led to.
    enum Progress {
        /// Waiting for other blocks of the round.
        case waiting
        /// The round was reduced and checkpointed; the next one should be queued.
        case nextRound(module: Int)
        /// The module's k-means finished: write its result.
        case finished(module: Int, outcome: BlockKMeansOutcome, seconds: Double)
    }

    /// Decodes and checks a block's result body (throws: the result is rejected and the block retried).
    func partial(from body: [UInt8], taskIndex: Int) throws -> BlockPartial {
        guard let (module, block) = blockTasks[taskIndex], let run = runs[module] else {
            throw CoordinatorError(.badResult, "no running round for task \(taskIndex)")
        }
        let partial: BlockPartial
        do {
            partial = try BlockPartial.decode(body)
            try run.driver.validate(partial)
        } catch {
            throw CoordinatorError(.badResult, "block \(block) partial: \(error)")
        }
        guard partial.unitCount <= run.blockUnits[block] else {
            throw CoordinatorError(.badResult, "block \(block) reports \(partial.unitCount) units; it has at most \(run.blockUnits[block])")
        }
        return partial
    }

    /// Stores a verified partial; reduces the round when it was the last one, checkpointing the state.
    mutating func accept(_ partial: BlockPartial, taskIndex: Int, seconds: Double, store: CheckpointStore) throws -> Progress {
        guard let (module, block) = blockTasks[taskIndex], var run = runs[module] else { return .waiting }
        run.partials[block] = partial
        run.seconds += seconds
        blockTasks[taskIndex] = nil
        guard run.partials.allSatisfy({ $0 != nil }) else {
            runs[module] = run
            return .waiting
        }
        do {
            try run.driver.advance(with: run.partials.compactMap { $0 })
        } catch {
            throw CoordinatorError(.badResult, "module k-means round \(run.driver.round): \(error)")
        }
        run.partials = []
        run.taskIndices = []
        run.request = nil
        try store.writeKMeansState(run.driver.encoded(), index: module)
        runs[module] = run
        if let outcome = run.driver.outcome { return .finished(module: module, outcome: outcome, seconds: run.seconds) }
        return .nextRound(module: module)
    }

    func round(of module: Int) -> Int { runs[module]?.driver.round ?? 0 }
}
