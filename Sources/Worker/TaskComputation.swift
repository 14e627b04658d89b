import AdapterIO
import Foundation
import Kernels
import MergeEngine
import WireProtocol

/// A finished task's result, ready to stream.
struct ComputedTask: Sendable {
    /// `ResultBody` bytes: B' then A'.
    var body: [UInt8]
    var bodyCRC32C: UInt32
    var outRank: Int
    var statsJSON: String
    var seconds: Double
}

/// Why a task could not be computed, and whether another attempt (maybe elsewhere) could succeed.
struct TaskFailure: Error, Sendable, CustomStringConvertible {
    var message: String
    var retryable: Bool
    var description: String { message }

    init(message: String, retryable: Bool) {
        self.message = message
        self.retryable = retryable
    }

    /// Bad input and impossible merges fail the same way every time; I/O and anything unexpected may not.
    init(_ error: any Error) {
        message = String(describing: error)
        switch error {
        case let failure as TaskFailure: retryable = failure.retryable
        // Corrupted transfers (crc, chunk totals) may succeed on a resend; bad numbers in a task never will.
        case let error as WireError: retryable = error.code == .inconsistent
        case is MergeError: retryable = false
        case let error as AdapterIOError: retryable = error.code == .io
        default: retryable = true
        }
    }
}

/// Loads one task's input and runs `ModuleMerger.merge` on a dedicated thread, so the socket's owner thread
/// keeps heartbeating while a long module computes. The owner polls `outcome` when `wake` is raised (the thread
/// raises it once the outcome is set); the lock is the only shared state, hence `@unchecked Sendable`.
final class TaskComputation: @unchecked Sendable {
    let task: Wire.Task
    private let lock = NSLock()
    private var result: Result<ComputedTask, TaskFailure>?

    private init(task: Wire.Task) { self.task = task }

    /// Starts computing. `inlineFactors` holds every input's stored (A, B) bytes in inline mode; nil in shared
    /// mode, where the thread reads the files itself.
    /// `delayMilliseconds` (test-only `slow-tasks`) sleeps first, to stand for a long module.
    static func start(_ validated: ValidatedTask, inlineFactors: [(a: [UInt8], b: [UInt8])]?,
                      delayMilliseconds: Int = 0, wake: WakeSignal? = nil) -> TaskComputation {
        run(validated.task, threadName: "brickyard-task-\(validated.task.taskID)", delayMilliseconds: delayMilliseconds,
            wake: wake) { try compute(validated, inlineFactors: inlineFactors) }
    }

    /// Starts one k-means round on one block of a split module: the block comes from `cache` when this worker
    /// holds it, else it is built from `inlineFactors` (inline mode) or loaded (shared mode), and cached. An inline
    /// task without its inputs whose block is not cached fails, retryable. The result body is the encoded
    /// `BlockPartial`.
    static func start(block: ValidatedBlockTask, cache: BlockCache, inlineFactors: [(a: [UInt8], b: [UInt8])]? = nil,
                      delayMilliseconds: Int = 0, wake: WakeSignal? = nil) -> TaskComputation {
        run(block.validated.task, threadName: "brickyard-block-\(block.validated.task.taskID)",
            delayMilliseconds: delayMilliseconds, wake: wake) {
            try computeRound(block, cache: cache, inlineFactors: inlineFactors)
        }
    }

    /// Runs `work` on a thread of its own (16 MB stack), stores its outcome, then raises `wake`.
    private static func run(_ task: Wire.Task, threadName: String, delayMilliseconds: Int, wake: WakeSignal?,
                            work: @escaping @Sendable () throws -> ComputedTask) -> TaskComputation {
        let computation = TaskComputation(task: task)
        let thread = Thread {
            if delayMilliseconds > 0 { Thread.sleep(forTimeInterval: Double(delayMilliseconds) / 1000) }
            let outcome: Result<ComputedTask, TaskFailure>
            do {
                outcome = .success(try work())
            } catch {
                outcome = .failure(TaskFailure(error))
            }
            computation.lock.withLock { computation.result = outcome }
            wake?.raise()
        }
        thread.name = threadName
        thread.stackSize = 16 << 20
        thread.start()
        return computation
    }

    private static func computeRound(_ block: ValidatedBlockTask, cache: BlockCache,
                                     inlineFactors: [(a: [UInt8], b: [UInt8])]?) throws -> ComputedTask {
        let start = ContinuousClock.now
        let validated = block.validated
        cache.keepOnly(jobID: validated.task.jobID)
        let (units, cached) = try cache.block(for: block.cacheKey) {
            let input: ModuleInput
            if let inlineFactors {
                input = try validated.moduleInput(factors: inlineFactors,
                                                  source: "inline input of block task \(validated.task.taskID)")
            } else if validated.task.inputMode == .inline {
                throw TaskFailure(message: "block \(validated.task.blockIndex) of module \(validated.task.module) is not "
                                  + "held by this worker and its inputs were not sent", retryable: true)
            } else {
                input = try validated.modulePlan().loadInput()
            }
            return try SplitLego.unitBlock(input, spec: validated.spec, unitIDOffset: block.unitIDOffset)
        }
        let partial: BlockPartial
        do {
            partial = try BlockKMeans.compute(block.request, block: units, seed: validated.task.seed)
        } catch let error as KernelShapeError {
            throw MergeError("module \(validated.task.module) block \(validated.task.blockIndex): \(error)")
        }
        let body = partial.encoded()
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return ComputedTask(body: body, bodyCRC32C: CRC32C.checksum(body), outRank: 0,
                            statsJSON: "{\"cached\":\(cached)}", seconds: seconds)
    }

    /// nil while the computation runs.
    var outcome: Result<ComputedTask, TaskFailure>? { lock.withLock { result } }

    private static func compute(_ validated: ValidatedTask, inlineFactors: [(a: [UInt8], b: [UInt8])]?) throws -> ComputedTask {
        let start = ContinuousClock.now
        // Terms are read (or decoded) as the method asks for them: lego never holds the whole Float32 input.
        let source: ModuleTermSource
        if let inlineFactors {
            source = try validated.termSource(factors: inlineFactors, source: "inline input of task \(validated.task.taskID)")
        } else {
            source = try validated.modulePlan().termSource()
        }
        let result = try ModuleMerger.merge(source, spec: validated.spec, seed: validated.task.seed)
        guard result.outFeatures == validated.outFeatures, result.inFeatures == validated.inFeatures,
              result.b.count == result.outFeatures * result.rank, result.a.count == result.rank * result.inFeatures else {
            throw MergeError("module \(validated.task.module): engine returned factors inconsistent with rank \(result.rank)")
        }
        let body = ResultBody.encode(result)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let stats = String(decoding: try encoder.encode(result.stats), as: UTF8.self)
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return ComputedTask(body: body, bodyCRC32C: CRC32C.checksum(body), outRank: result.rank, statsJSON: stats,
                            seconds: seconds)
    }
}
