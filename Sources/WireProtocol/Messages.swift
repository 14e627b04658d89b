import AdapterIO

/// Swift mirrors of the messages in proto/brickyard.proto. `WireCodec` converts them to and from protobuf-c
/// bytes; nothing else in Brickyard touches protobuf-c directly.
public enum Wire {
    /// Bumped on any incompatible change to proto/brickyard.proto. 2: split rounds send their shared centers once
    /// per worker and round (`RoundPayload`), block tasks refer to them, refit product codes 5 and 6. 3: k-means||
    /// draws are a round of their own (`kmeansDraw`, `KMeansBlockTask.cost`), so blocks send only the kept draws.
    public static let protocolVersion: UInt32 = 3

    public enum TaskKind: Sendable, Equatable {
        case mergeModule, kmeansBlockStep
        /// Rounds of a split lego module's k-means (sent in a `KMeansBlockTask`).
        case kmeansFirstCenter, kmeansOversample, kmeansDraw, kmeansCandidateWeights, kmeansLloyd, kmeansReweight
        /// A quality-track product of a split module's block (which one: `KMeansBlockTask.product`).
        case kmeansProduct
        /// A principal-direction round of a split module's block (which one: `KMeansBlockTask.principal`).
        case kmeansPrincipal
    }
    public enum InputMode: Sendable, Equatable { case shared, inline }

    public struct Hello: Sendable, Equatable {
        public var workerID: String
        public var version: String
        public var cores: UInt32
        public var blasThreads: UInt32
        public var pid: UInt32
        public var hostname: String
        /// Merge worker (the default) or evaluator.
        public var role: PeerRole
        /// Evaluators: "cpu" or "cuda".
        public var device: String
        /// Evaluators: "float32" or "bfloat16".
        public var dtype: String
        public init(workerID: String, version: String, cores: UInt32, blasThreads: UInt32, pid: UInt32, hostname: String,
                    role: PeerRole = .mergeWorker, device: String = "", dtype: String = "") {
            self.workerID = workerID; self.version = version; self.cores = cores
            self.blasThreads = blasThreads; self.pid = pid; self.hostname = hostname
            self.role = role; self.device = device; self.dtype = dtype
        }
    }

    public struct Welcome: Sendable, Equatable {
        public var jobID: String
        public var heartbeatIntervalMilliseconds: UInt32
        public var heartbeatLiveness: UInt32
        /// Evaluators only: the local base model directory to load once.
        public var baseModelPath: String
        public init(jobID: String, heartbeatIntervalMilliseconds: UInt32, heartbeatLiveness: UInt32, baseModelPath: String = "") {
            self.jobID = jobID; self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
            self.heartbeatLiveness = heartbeatLiveness; self.baseModelPath = baseModelPath
        }
    }

    /// One adapter's factors for the task's module (see `InputRef` in the proto).
    public struct InputRef: Sendable, Hashable {
        public var pathIndex: UInt32
        public var coefficient: Double
        public var rank: UInt32
        public var aDType: DType
        public var aOffset: UInt64
        public var aLength: UInt64
        public var bDType: DType
        public var bOffset: UInt64
        public var bLength: UInt64
        public var fanInFanOut: Bool
        public init(pathIndex: UInt32, coefficient: Double, rank: UInt32, aDType: DType, aOffset: UInt64, aLength: UInt64,
                    bDType: DType, bOffset: UInt64, bLength: UInt64, fanInFanOut: Bool) {
            self.pathIndex = pathIndex; self.coefficient = coefficient; self.rank = rank
            self.aDType = aDType; self.aOffset = aOffset; self.aLength = aLength
            self.bDType = bDType; self.bOffset = bOffset; self.bLength = bLength; self.fanInFanOut = fanInFanOut
        }
    }

    public struct Task: Sendable, Equatable {
        public var jobID: String
        public var taskID: UInt64
        public var attempt: UInt32
        public var kind: TaskKind
        public var module: String
        public var method: String
        /// Canonical JSON of the full `MergeSpec`.
        public var optionsJSON: String
        public var rank: UInt32
        public var seed: UInt64
        public var outFeatures: UInt32
        public var inFeatures: UInt32
        public var inputMode: InputMode
        public var paths: [String]
        public var inputs: [InputRef]
        public var blockIndex: UInt32
        public var blockCount: UInt32
        public var resultChunkBytes: UInt32
        public init(jobID: String, taskID: UInt64, attempt: UInt32, kind: TaskKind = .mergeModule, module: String,
                    method: String, optionsJSON: String, rank: UInt32, seed: UInt64, outFeatures: UInt32,
                    inFeatures: UInt32, inputMode: InputMode, paths: [String], inputs: [InputRef],
                    blockIndex: UInt32 = 0, blockCount: UInt32 = 1, resultChunkBytes: UInt32) {
            self.jobID = jobID; self.taskID = taskID; self.attempt = attempt; self.kind = kind; self.module = module
            self.method = method; self.optionsJSON = optionsJSON; self.rank = rank; self.seed = seed
            self.outFeatures = outFeatures; self.inFeatures = inFeatures; self.inputMode = inputMode
            self.paths = paths; self.inputs = inputs; self.blockIndex = blockIndex; self.blockCount = blockCount
            self.resultChunkBytes = resultChunkBytes
        }
    }

    /// Inline mode: a piece of input `inputIndex`'s factor (`factor` 0 = A, 1 = B), raw stored bytes.
    public struct InputChunk: Sendable, Equatable {
        public var taskID: UInt64
        public var attempt: UInt32
        public var inputIndex: UInt32
        public var factor: UInt32
        public var sequence: UInt32
        public var total: UInt32
        public var payload: [UInt8]
        /// CRC-32C (Castagnoli) of `payload`; `Chunking.inputChunks` fills it and the reassembler checks it.
        public var crc32c: UInt32
        public init(taskID: UInt64, attempt: UInt32, inputIndex: UInt32, factor: UInt32, sequence: UInt32, total: UInt32,
                    payload: [UInt8], crc32c: UInt32 = 0) {
            self.taskID = taskID; self.attempt = attempt; self.inputIndex = inputIndex; self.factor = factor
            self.sequence = sequence; self.total = total; self.payload = payload; self.crc32c = crc32c
        }
    }

    public struct ResultChunk: Sendable, Equatable {
        public var taskID: UInt64
        public var attempt: UInt32
        public var sequence: UInt32
        public var total: UInt32
        public var payload: [UInt8]
        public var crc32c: UInt32
        public init(taskID: UInt64, attempt: UInt32, sequence: UInt32, total: UInt32, payload: [UInt8], crc32c: UInt32) {
            self.taskID = taskID; self.attempt = attempt; self.sequence = sequence; self.total = total
            self.payload = payload; self.crc32c = crc32c
        }
    }

    public struct TaskDone: Sendable, Equatable {
        public var taskID: UInt64
        public var attempt: UInt32
        public var outRank: UInt32
        public var resultBytes: UInt64
        public var resultCRC32C: UInt32
        /// JSON of `ModuleStats`.
        public var statsJSON: String
        public var seconds: Double
        public init(taskID: UInt64, attempt: UInt32, outRank: UInt32, resultBytes: UInt64, resultCRC32C: UInt32, statsJSON: String, seconds: Double) {
            self.taskID = taskID; self.attempt = attempt; self.outRank = outRank; self.resultBytes = resultBytes
            self.resultCRC32C = resultCRC32C; self.statsJSON = statsJSON; self.seconds = seconds
        }
    }

    public struct TaskFailed: Sendable, Equatable {
        public var taskID: UInt64
        public var attempt: UInt32
        public var error: String
        public var retryable: Bool
        /// A split block task referred to a round payload this worker does not hold: its id (0: another failure).
        public var missingPayload: UInt64
        public init(taskID: UInt64, attempt: UInt32, error: String, retryable: Bool, missingPayload: UInt64 = 0) {
            self.taskID = taskID; self.attempt = attempt; self.error = error; self.retryable = retryable
            self.missingPayload = missingPayload
        }
    }
}

extension Wire {
    /// One round of a split module's k-means on one block (see `KMeansBlockTask` in the proto).
    public struct KMeansBlockTask: Sendable, Equatable {
        public var task: Task
        public var round: UInt32
        public var unitIDOffset: UInt64
        public var centerCount: UInt32
        /// Float32 little-endian, row-major [centerCount, out + in].
        public var centers: [UInt8]
        public var oversampling: Double
        public var farthest: UInt32
        /// Seeding rounds: index of the first of `centers` among all candidates drawn so far.
        public var centerOffset: UInt32
        /// Seeding rounds: the block's nearest-candidate state (`NearestCandidates.encoded()`), empty before any.
        public var nearest: [UInt8]
        /// Inline mode: the block's inputs follow as InputChunks (false: the worker should hold the block).
        public var inputsFollow: Bool
        /// Product rounds: 1 probe image, 2 the block's target, 3 T_b·M, 4 T_bᵀ·M (0 for the other kinds).
        public var product: UInt32
        /// Product round 1: Gaussian probe columns the worker builds from the task's seed.
        public var probes: UInt32
        /// Principal-direction rounds: 1 start, 2 LEFT, 3 RIGHT (0 for the other kinds).
        public var principal: UInt32
        /// Principal-direction rounds: the block's final assignment, uint32 little-endian per unit.
        public var assignment: [UInt8]
        /// Non-zero: `centers` is empty and the round's centers are the `RoundPayload` with this id.
        public var payloadID: UInt64
        /// CRC-32C of the referenced payload's bytes (checked against the worker's copy).
        public var payloadCRC32C: UInt32
        /// Draw rounds: φ, the module's total cost after the oversampling round (0 for the other kinds).
        public var cost: Double

        public init(task: Task, round: UInt32, unitIDOffset: UInt64, centerCount: UInt32, centers: [UInt8],
                    oversampling: Double, farthest: UInt32, centerOffset: UInt32 = 0, nearest: [UInt8] = [],
                    inputsFollow: Bool = false, product: UInt32 = 0, probes: UInt32 = 0, principal: UInt32 = 0,
                    assignment: [UInt8] = [], payloadID: UInt64 = 0, payloadCRC32C: UInt32 = 0, cost: Double = 0) {
            self.task = task; self.round = round; self.unitIDOffset = unitIDOffset; self.centerCount = centerCount
            self.centers = centers; self.oversampling = oversampling; self.farthest = farthest
            self.centerOffset = centerOffset; self.nearest = nearest; self.inputsFollow = inputsFollow
            self.product = product; self.probes = probes; self.principal = principal; self.assignment = assignment
            self.payloadID = payloadID; self.payloadCRC32C = payloadCRC32C; self.cost = cost
        }
    }

    /// The centers every block task of one split round shares, sent once per worker and round (see `RoundPayload`
    /// in the proto). Block tasks refer to it by `payloadID`.
    public struct RoundPayload: Sendable, Equatable {
        /// Unique within one coordinator run; never 0.
        public var payloadID: UInt64
        public var module: String
        /// The track whose round this is: a worker keeps the newest payload per (module, track).
        public var track: UInt32
        /// Float32 little-endian, as `KMeansBlockTask.centers`.
        public var centers: [UInt8]
        /// CRC-32C of `centers`.
        public var crc32c: UInt32

        public init(payloadID: UInt64, module: String, track: UInt32, centers: [UInt8], crc32c: UInt32) {
            self.payloadID = payloadID; self.module = module; self.track = track; self.centers = centers
            self.crc32c = crc32c
        }
    }
}

/// One protocol message: the body of an `Envelope`.
public enum WireMessage: Sendable, Equatable {
    case hello(Wire.Hello)
    case welcome(Wire.Welcome)
    case reject(reason: String)
    case heartbeat(sequence: UInt64)
    case task(Wire.Task)
    case inputChunk(Wire.InputChunk)
    case resultChunk(Wire.ResultChunk)
    case taskDone(Wire.TaskDone)
    case taskFailed(Wire.TaskFailed)
    case disconnect(reason: String)
    case evalRequest(Wire.EvalRequest)
    case evalResult(Wire.EvalResult)
    case evalFailed(Wire.EvalFailed)
    case kmeansBlockTask(Wire.KMeansBlockTask)
    case roundPayload(Wire.RoundPayload)

    /// The message's proto field name (for logs).
    public var kindName: String {
        switch self {
        case .hello: "hello"
        case .welcome: "welcome"
        case .reject: "reject"
        case .heartbeat: "heartbeat"
        case .task: "task"
        case .inputChunk: "input_chunk"
        case .resultChunk: "result_chunk"
        case .taskDone: "task_done"
        case .taskFailed: "task_failed"
        case .disconnect: "disconnect"
        case .evalRequest: "eval_request"
        case .evalResult: "eval_result"
        case .evalFailed: "eval_failed"
        case .kmeansBlockTask: "kmeans_block_task"
        case .roundPayload: "round_payload"
        }
    }
}
