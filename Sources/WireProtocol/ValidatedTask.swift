import AdapterIO
import MergeEngine

/// Bounds on what a task from the wire may ask a worker to load (a worker holds one module in memory).
public struct TaskLimits: Sendable, Equatable {
    public var maxInputs = 1 << 16
    public var maxRank = 1 << 16
    public var maxFeatures = 1 << 24
    /// Σ over inputs of the stored A and B bytes.
    public var maxInputBytes = 16 << 30

    public init() {}
}

/// A `Wire.Task` whose numbers were checked against each other (worker side): a known kind and method, options
/// that parse and agree with the method and rank, positive shapes, every input's byte lengths equal to
/// rank × features × dtype size, path indices in range (shared mode), and a total input size within `TaskLimits`.
/// Everything here came from the network; a failure is a `WireError` naming the task, module and field.
public struct ValidatedTask: Sendable {
    public let task: Wire.Task
    public let spec: MergeSpec
    public let outFeatures: Int
    public let inFeatures: Int
    /// Σ stored bytes of every factor.
    public let inputBytes: Int

    /// `kmeansRound`: the task came inside a `KMeansBlockTask`, so its kind must be a k-means round of a lego module;
    /// otherwise it must be a whole module.
    public init(_ task: Wire.Task, limits: TaskLimits = TaskLimits(), kmeansRound: Bool = false) throws {
        let context = "task \(task.taskID) (module \(task.module))"
        func invalid(_ detail: String) -> WireError { WireError(.invalidField, "\(context): \(detail)") }

        if kmeansRound {
            guard task.kind.blockRoundKind != nil || task.kind == .kmeansProduct || task.kind == .kmeansPrincipal else {
                throw invalid("task kind \(task.kind) is not a k-means round")
            }
            guard task.method == MergeMethodName.lego.rawValue else { throw invalid("k-means rounds need method lego, not \(task.method)") }
            guard task.blockCount >= 2, task.blockIndex < task.blockCount else {
                throw invalid("block \(task.blockIndex) of \(task.blockCount) is not a block of a split module")
            }
        } else {
            guard task.kind == .mergeModule else { throw invalid("task kind \(task.kind) is not supported by this worker") }
        }
        guard MergeMethodName(rawValue: task.method) != nil else { throw invalid("unknown method \"\(task.method)\"") }
        let spec: MergeSpec
        do {
            spec = try SpecJSON.decode(task.optionsJSON)
        } catch {
            throw invalid("options_json is not a MergeSpec: \(String(describing: error).prefix(200))")
        }
        guard spec.method.rawValue == task.method else {
            throw invalid("method \"\(task.method)\" disagrees with options_json method \"\(spec.method.rawValue)\"")
        }
        guard spec.rank == Int(task.rank) else { throw invalid("rank \(task.rank) disagrees with options_json rank \(spec.rank)") }
        let outFeatures = Int(task.outFeatures), inFeatures = Int(task.inFeatures)
        guard (1...limits.maxFeatures).contains(outFeatures), (1...limits.maxFeatures).contains(inFeatures) else {
            throw invalid("shape [\(outFeatures), \(inFeatures)] is outside 1...\(limits.maxFeatures)")
        }
        guard !task.inputs.isEmpty else { throw invalid("no inputs") }
        guard task.inputs.count <= limits.maxInputs else {
            throw WireError(.tooLarge, "\(context): \(task.inputs.count) inputs exceed the limit of \(limits.maxInputs)")
        }

        var total = 0
        for (index, input) in task.inputs.enumerated() {
            let rank = Int(input.rank)
            guard (1...limits.maxRank).contains(rank) else { throw invalid("input \(index) rank \(rank) is outside 1...\(limits.maxRank)") }
            guard input.coefficient.isFinite else { throw invalid("input \(index) coefficient \(input.coefficient) is not finite") }
            if task.inputMode == .shared {
                guard Int(input.pathIndex) < task.paths.count else {
                    throw invalid("input \(index) path_index \(input.pathIndex) is out of range (\(task.paths.count) paths)")
                }
            }
            // Products fit easily: maxRank · maxFeatures · 8 < 2^63.
            let aExpected = rank * inFeatures * input.aDType.byteSize
            let bExpected = rank * outFeatures * input.bDType.byteSize
            guard input.aLength == UInt64(aExpected) else {
                throw invalid("input \(index) a_length \(input.aLength) ≠ rank \(rank) × in \(inFeatures) × \(input.aDType.byteSize) bytes")
            }
            guard input.bLength == UInt64(bExpected) else {
                throw invalid("input \(index) b_length \(input.bLength) ≠ rank \(rank) × out \(outFeatures) × \(input.bDType.byteSize) bytes")
            }
            guard input.aOffset <= UInt64(Int.max) - input.aLength, input.bOffset <= UInt64(Int.max) - input.bLength else {
                throw invalid("input \(index) byte offsets \(input.aOffset)/\(input.bOffset) are out of range")
            }
            total += aExpected + bExpected
            guard total <= limits.maxInputBytes else {
                throw WireError(.tooLarge, "\(context): inputs need more than \(limits.maxInputBytes) bytes")
            }
        }
        self.task = task
        self.spec = spec
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.inputBytes = total
    }

    /// Stored byte length of input `index`'s factor `factor` (0 = A, 1 = B); nil if out of range.
    public func factorLength(input index: Int, factor: Int) -> Int? {
        guard task.inputs.indices.contains(index), factor == 0 || factor == 1 else { return nil }
        return Int(factor == 0 ? task.inputs[index].aLength : task.inputs[index].bLength)
    }

    /// Shared mode: the task as a `ModulePlan` whose `TensorRef`s point into `task.paths`, so the engine's
    /// `loadInput()` reads (re-checking every range against the file), converts and lays out the factors.
    public func modulePlan() throws -> ModulePlan {
        let sources = try task.inputs.enumerated().map { index, input -> ModuleSource in
            let rank = Int(input.rank)
            guard task.paths.indices.contains(Int(input.pathIndex)) else {
                throw WireError(.invalidField, "task \(task.taskID) (module \(task.module)): input \(index) has no path (inline task?)")
            }
            let path = task.paths[Int(input.pathIndex)]
            let a = TensorRef(path: path, dtype: input.aDType,
                              shape: input.fanInFanOut ? [inFeatures, rank] : [rank, inFeatures],
                              byteOffset: Int(input.aOffset), byteCount: Int(input.aLength), name: "\(task.module).lora_A")
            let b = TensorRef(path: path, dtype: input.bDType,
                              shape: input.fanInFanOut ? [rank, outFeatures] : [outFeatures, rank],
                              byteOffset: Int(input.bOffset), byteCount: Int(input.bLength), name: "\(task.module).lora_B")
            // alpha/scaling are irrelevant here: the coefficient already folds them in.
            let info = LoraModuleInfo(name: task.module, rank: rank, alpha: Double(rank), scaling: 1,
                                      inFeatures: inFeatures, outFeatures: outFeatures, a: a, b: b,
                                      fanInFanOut: input.fanInFanOut)
            return ModuleSource(adapterIndex: index, module: info, coefficient: input.coefficient)
        }
        return ModulePlan(name: task.module, outFeatures: outFeatures, inFeatures: inFeatures, sources: sources,
                          seed: task.seed)
    }

    /// The engine's input from each input's stored factor bytes (read from files or received inline), in input
    /// order. Converts dtypes and undoes a stored transposition; rejects non-finite values.
    public func moduleInput(factors: [(a: [UInt8], b: [UInt8])], source: String) throws -> ModuleInput {
        try termSource(factors: factors, source: source).loadAll()
    }

    /// The inline factors as a term source that decodes one term at a time (`ModuleTermSource.inline`).
    public func termSource(factors: [(a: [UInt8], b: [UInt8])], source: String) throws -> ModuleTermSource {
        guard factors.count == task.inputs.count else {
            throw WireError(.inconsistent, "task \(task.taskID) (module \(task.module)): \(factors.count) factor pairs for \(task.inputs.count) inputs")
        }
        let terms = zip(task.inputs, factors).map { input, bytes in
            InlineTerm(coefficient: input.coefficient, rank: Int(input.rank), aBytes: bytes.a, aDType: input.aDType,
                       bBytes: bytes.b, bDType: input.bDType, transposed: input.fanInFanOut)
        }
        return ModuleTermSource.inline(name: task.module, outFeatures: outFeatures, inFeatures: inFeatures, terms: terms,
                                       source: source)
    }
}
