import AdapterIO
import Kernels
import MergeEngine

extension Wire.TaskKind {
    /// The split k-means round a task kind stands for (nil for other kinds).
    public var blockRoundKind: BlockRoundKind? {
        switch self {
        case .kmeansFirstCenter: .firstCenter
        case .kmeansOversample: .oversample
        case .kmeansDraw: .draw
        case .kmeansCandidateWeights: .candidateWeights
        case .kmeansLloyd: .lloyd
        case .kmeansReweight: .reweight
        case .mergeModule, .kmeansBlockStep, .kmeansProduct, .kmeansPrincipal: nil
        }
    }

    init(_ kind: BlockRoundKind) {
        switch kind {
        case .firstCenter: self = .kmeansFirstCenter
        case .oversample: self = .kmeansOversample
        case .draw: self = .kmeansDraw
        case .candidateWeights: self = .kmeansCandidateWeights
        case .lloyd: self = .kmeansLloyd
        case .reweight: self = .kmeansReweight
        case .probeImage, .target, .targetTimes, .targetTransposedTimes, .refitLeft, .refitRight: self = .kmeansProduct
        case .principalStart, .principalLeft, .principalRight: self = .kmeansPrincipal
        }
    }
}

extension BlockRoundKind {
    /// The `KMeansBlockTask.product` code of a product round (0 for the k-means rounds).
    var productCode: UInt32 {
        switch self {
        case .probeImage: 1
        case .target: 2
        case .targetTimes: 3
        case .targetTransposedTimes: 4
        case .refitLeft: 5
        case .refitRight: 6
        default: 0
        }
    }

    /// The `KMeansBlockTask.principal` code of a principal-direction round (0 for the other kinds).
    var principalCode: UInt32 {
        switch self {
        case .principalStart: 1
        case .principalLeft: 2
        case .principalRight: 3
        default: 0
        }
    }

    /// The principal-direction round of a `KMeansBlockTask.principal` code.
    init?(principalCode: UInt32) {
        switch principalCode {
        case 1: self = .principalStart
        case 2: self = .principalLeft
        case 3: self = .principalRight
        default: return nil
        }
    }

    /// The product round of a `KMeansBlockTask.product` code.
    init?(productCode: UInt32) {
        switch productCode {
        case 1: self = .probeImage
        case 2: self = .target
        case 3: self = .targetTimes
        case 4: self = .targetTransposedTimes
        case 5: self = .refitLeft
        case 6: self = .refitRight
        default: return nil
        }
    }
}

extension Wire.KMeansBlockTask {
    /// The round `request` of block `blockIndex` of a split module (coordinator side). `seed` is the seed of the
    /// request's track (a restart's own seed; nil: the module's). `inputMode` inline sends the block's inputs only
    /// when `inputsFollow`.
    /// `payload`: the round's centers were sent as that `RoundPayload` (id and CRC-32C); the task then refers to
    /// it and carries no centers of its own.
    public init(module: ModulePlan, blockIndex: Int, spec: MergeSpec, jobID: String, taskID: UInt64, attempt: UInt32,
                request: BlockRoundRequest, seed: UInt64? = nil, inputMode: Wire.InputMode = .shared,
                inputsFollow: Bool = false, resultChunkBytes: Int = Chunking.defaultChunkBytes,
                payload: (id: UInt64, crc32c: UInt32)? = nil) throws {
        let template = try Template(module: module, blockIndex: blockIndex, spec: spec, jobID: jobID, inputMode: inputMode,
                                    resultChunkBytes: resultChunkBytes)
        self.init(template, taskID: taskID, attempt: attempt, request: request, seed: seed, inputsFollow: inputsFollow,
                  payload: payload)
    }

    /// What every round's task of one block shares: the block's `Task` (its inputs' paths and byte ranges, the
    /// spec as JSON), built once per block instead of once per round (hundreds of rounds × blocks per module).
    public struct Template: Sendable {
        public let task: Wire.Task
        let unitIDOffset: Int

        public init(module: ModulePlan, blockIndex: Int, spec: MergeSpec, jobID: String, inputMode: Wire.InputMode,
                    resultChunkBytes: Int) throws {
            guard let blocks = module.blocks, blocks.indices.contains(blockIndex) else {
                throw WireError(.inconsistent, "module \(module.name) has no block \(blockIndex)")
            }
            let block = blocks[blockIndex]
            var task = try Wire.Task(module: SplitLego.blockPlan(module, block: block), spec: spec, jobID: jobID,
                                     taskID: 0, attempt: 0, inputMode: inputMode, resultChunkBytes: resultChunkBytes)
            task.blockIndex = UInt32(blockIndex)
            task.blockCount = UInt32(blocks.count)
            self.task = task
            unitIDOffset = block.unitIDOffset
        }
    }

    /// The round `request` of the template's block, as task (`taskID`, `attempt`).
    public init(_ template: Template, taskID: UInt64, attempt: UInt32, request: BlockRoundRequest, seed: UInt64? = nil,
                inputsFollow: Bool = false, payload: (id: UInt64, crc32c: UInt32)? = nil) {
        var task = template.task
        task.taskID = taskID
        task.attempt = attempt
        if let seed { task.seed = seed }
        task.kind = Wire.TaskKind(request.kind)
        var centers: [UInt8] = []
        if payload == nil { FloatBytes.appendLittleEndian(request.centers, to: &centers) }
        var assignment = ByteWriter()
        for cluster in request.assignment ?? [] { assignment.u32(cluster) }
        self.init(task: task, round: UInt32(clamping: request.round), unitIDOffset: UInt64(template.unitIDOffset),
                  centerCount: UInt32(clamping: request.centerCount), centers: centers,
                  oversampling: request.oversampling, farthest: UInt32(clamping: request.farthest),
                  centerOffset: UInt32(clamping: request.centerOffset), nearest: request.nearest?.encoded() ?? [],
                  inputsFollow: task.inputMode == .inline && inputsFollow, product: request.kind.productCode,
                  probes: UInt32(clamping: request.probes), principal: request.kind.principalCode,
                  assignment: assignment.bytes, payloadID: payload?.id ?? 0, payloadCRC32C: payload?.crc32c ?? 0,
                  cost: request.cost)
    }
}

/// A `KMeansBlockTask` checked on the worker: a valid lego task over the block's inputs (`ValidatedTask`), and a
/// round whose centers fit the module's dimension and the limits.
public struct ValidatedBlockTask: Sendable {
    public let validated: ValidatedTask
    public let request: BlockRoundRequest
    public let unitIDOffset: Int

    /// `sharedCenters`: the centers of the `RoundPayload` the message refers to (`payloadID` ≠ 0), as the worker
    /// holds them (checked and decoded when the payload arrived).
    public init(_ message: Wire.KMeansBlockTask, sharedCenters: [Float]? = nil, limits: TaskLimits = TaskLimits()) throws {
        let task = message.task
        validated = try ValidatedTask(task, limits: limits, kmeansRound: true)
        let context = "task \(task.taskID) (module \(task.module), block \(task.blockIndex))"
        let product = task.kind == .kmeansProduct ? BlockRoundKind(productCode: message.product) : nil
        let principal = task.kind == .kmeansPrincipal ? BlockRoundKind(principalCode: message.principal) : nil
        guard let kind = task.kind.blockRoundKind ?? product ?? principal else {
            throw WireError(.invalidField, "\(context): not a k-means round (product \(message.product), principal \(message.principal))")
        }
        var assignment: [UInt32]?
        if kind.isPrincipal {
            // Each value is checked against the block's units and clusters when the round is computed.
            guard message.assignment.count % 4 == 0 else {
                throw WireError(.invalidField, "\(context): \(message.assignment.count) assignment bytes are not whole uint32 values")
            }
            var reader = ByteReader(message.assignment, what: "assignment")
            assignment = try (0..<(message.assignment.count / 4)).map { _ in try reader.u32() }
        } else if !message.assignment.isEmpty {
            throw WireError(.invalidField, "\(context): an assignment in a \(kind) round")
        }
        let count = Int(message.centerCount)
        let values = kind.centerValues(count: min(count, limits.maxRank), outFeatures: validated.outFeatures,
                                       inFeatures: validated.inFeatures)
        let centers: [Float]
        if message.payloadID != 0 {
            guard let sharedCenters, message.centers.isEmpty else {
                throw WireError(.invalidField, "\(context): refers to round payload \(message.payloadID) but \(sharedCenters == nil ? "it is not held" : "carries centers too")")
            }
            centers = sharedCenters
        } else {
            guard message.centers.count == 4 * values else {
                throw WireError(.invalidField, "\(context): \(message.centers.count) center bytes for \(count) columns of a \(kind) round")
            }
            centers = FloatBytes.floatsLittleEndian(message.centers[...])
            guard centers.allSatisfy(\.isFinite) else { throw WireError(.invalidField, "\(context): centers hold non-finite values") }
        }
        guard count <= limits.maxRank, centers.count == values else {
            throw WireError(.invalidField, "\(context): \(4 * centers.count) center bytes for \(count) columns of a \(kind) round")
        }
        guard message.probes <= UInt32(BlockKMeans.maxProductColumns), !kind.isProduct || count <= BlockKMeans.maxProductColumns else {
            throw WireError(.invalidField, "\(context): \(message.probes) probes or \(count) sketch columns is out of range")
        }
        guard message.oversampling.isFinite, message.oversampling >= 0, message.cost.isFinite, message.cost >= 0,
              message.farthest <= UInt32(limits.maxRank),
              message.unitIDOffset <= UInt64(Int32.max), message.centerOffset <= UInt32(Int32.max) else {
            throw WireError(.invalidField, "\(context): oversampling \(message.oversampling), cost \(message.cost), farthest \(message.farthest), unit offset \(message.unitIDOffset) or candidate offset \(message.centerOffset) is out of range")
        }
        var nearest: NearestCandidates?
        if !message.nearest.isEmpty {
            do {
                nearest = try NearestCandidates.decode(message.nearest, candidates: Int(message.centerOffset))
            } catch {
                throw WireError(.invalidField, "\(context): \(error)")
            }
        }
        request = BlockRoundRequest(kind: kind, round: Int(message.round), centers: centers, centerCount: count,
                                    oversampling: message.oversampling, farthest: Int(message.farthest),
                                    centerOffset: Int(message.centerOffset), nearest: nearest,
                                    probes: Int(message.probes), assignment: assignment, cost: message.cost)
        unitIDOffset = Int(message.unitIDOffset)
    }

    /// Identifies the block's units for a worker's cache: the job, module, block and exactly its inputs.
    public var cacheKey: BlockCacheKey {
        let task = validated.task
        return BlockCacheKey(jobID: task.jobID, module: task.module, block: Int(task.blockIndex), paths: task.paths,
                             inputs: task.inputs, gauge: validated.spec.lego.gauge.rawValue, unitIDOffset: unitIDOffset)
    }
}

/// What a cached block was loaded from; equal keys mean equal units.
public struct BlockCacheKey: Hashable, Sendable {
    public var jobID: String
    public var module: String
    public var block: Int
    public var paths: [String]
    public var inputs: [Wire.InputRef]
    public var gauge: String
    public var unitIDOffset: Int
}
