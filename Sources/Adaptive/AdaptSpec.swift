import MergeEngine

/// How the adapters of the pool are chosen before learning (`adapt.select`).
public struct SelectionSpec: Sendable, Codable, Equatable {
    public enum Criterion: String, Sendable, Codable, CaseIterable {
        /// Lowest training loss of each adapter applied alone.
        case loss
        /// Highest exact-match accuracy on the training examples of each adapter alone.
        case accuracy
        /// Highest cosine of ΔW with a target adapter (`target`), from Gram matrices; no model needed.
        case similarity
        /// Keep the whole pool.
        case none
    }
    public var by: Criterion = .none
    /// How many adapters to keep (nil: all).
    public var topK: Int?
    /// `similarity`: the target adapter's directory.
    public var target: String?

    public init(by: Criterion = .none, topK: Int? = nil, target: String? = nil) {
        self.by = by; self.topK = topK; self.target = target
    }
}

/// Which optimiser learns the coefficients.
public enum OptimizerName: String, Sendable, Codable, CaseIterable {
    case adamw
    case cmaES = "cma_es"
    case nelderMead = "nelder_mead"

    /// CMA-ES and Nelder–Mead only need losses.
    public var isGradientFree: Bool { self != .adamw }
}

/// How the final adapter is built from the learned coefficients.
public struct AdaptOutputSpec: Sendable, Codable, Equatable {
    public var method: MergeMethodName = .cat
    /// svd / lego only: output rank (nil: the largest input rank).
    public var rank: Int?

    public init(method: MergeMethodName = .cat, rank: Int? = nil) {
        self.method = method; self.rank = rank
    }
}

/// The `adapt:` section of a job file, with defaults resolved. Gradient route defaults follow the Recycling
/// study's best recipe (per-module coefficients, LeakyReLU 0.01, init 0, AdamW lr 5e-2, 100 steps, the best
/// validation loss kept); the gradient-free route follows LoraHub (one weight per adapter, bounds ±1.5,
/// L1 0.05·mean|w|, 40 evaluations).
public struct AdaptSpec: Sendable, Codable, Equatable {
    public var select: SelectionSpec = SelectionSpec()
    public var coefficients: CoefficientLayout.Granularity = .perModule
    public var activation: Activation = .leakyReLU
    /// Initial value of every raw parameter θ.
    public var initialValue: Double = 0
    public var optimizer: OptimizerName = .adamw
    public var learningRate: Double = 5e-2
    /// AdamW: optimisation steps. Gradient-free: loss evaluations (the LoraHub budget).
    public var steps: Int = 100
    /// AdamW: training examples per step (nil: all of them).
    public var batchSize: Int? = 8
    /// Validate every this many steps (and after the last one).
    public var validateEvery: Int = 10
    /// L1 penalty weight on the effective coefficients: `l1 · mean |λ|`.
    public var l1: Double = 0
    /// Gradient-free: box for the coefficients (|w| ≤ bound).
    public var bound: Double = 1.5
    /// AdamW decoupled weight decay.
    public var weightDecay: Double = 0
    /// Examples per evaluator request (the unit of sharding).
    public var examplesPerRequest: Int = 4
    public var output: AdaptOutputSpec = AdaptOutputSpec()

    public init() {}

    /// LoraHub's defaults for the gradient-free optimisers.
    public static func gradientFreeDefaults(_ optimizer: OptimizerName) -> AdaptSpec {
        var spec = AdaptSpec()
        spec.optimizer = optimizer
        spec.coefficients = .perAdapter
        spec.activation = .linear
        spec.l1 = 0.05
        spec.steps = 40
        spec.batchSize = nil
        spec.validateEvery = 10
        return spec
    }
}

/// Where the task data comes from.
public struct AdaptDataSpec: Sendable, Codable, Equatable {
    /// JSONL training file (and the validation examples too when `validation` is nil).
    public var train: String
    public var validation: String?
    /// With one file: the fraction held out for validation (split fixed by the job seed).
    public var validationFraction: Double = 0.2

    public init(train: String, validation: String? = nil, validationFraction: Double = 0.2) {
        self.train = train; self.validation = validation; self.validationFraction = validationFraction
    }
}

/// A whole `brickyard adapt` job: the pool (a merge job's adapters and seed), the base model, the data and the
/// `adapt:` section.
public struct AdaptJob: Sendable {
    public var pool: JobSpec
    public var baseModel: String
    public var data: AdaptDataSpec
    public var adapt: AdaptSpec

    public init(pool: JobSpec, baseModel: String, data: AdaptDataSpec, adapt: AdaptSpec) {
        self.pool = pool; self.baseModel = baseModel; self.data = data; self.adapt = adapt
    }
}
