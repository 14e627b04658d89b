import AdapterIO

/// A scalar from the `parameters` map of a job file.
public enum ParameterValue: Sendable, Equatable, Codable {
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
}

/// One input adapter of a job, after globs are expanded and paths resolved.
public struct AdapterEntry: Sendable, Equatable, Codable {
    /// Absolute path of a PEFT adapter directory or a bare .safetensors file.
    public var path: String
    /// Merge weight before normalisation (default 1).
    public var weight: Double
    /// For a bare .safetensors file: its rank and alpha (no adapter_config.json to read them from).
    public var rank: Int?
    public var alpha: Double?

    public init(path: String, weight: Double = 1, rank: Int? = nil, alpha: Double? = nil) {
        self.path = path
        self.weight = weight
        self.rank = rank
        self.alpha = alpha
    }
}

/// A parsed mergekit-style YAML job file (see README "Job files").
public struct JobSpec: Sendable, Equatable {
    public var method: MergeMethodName
    /// Output rank; nil means the largest input rank.
    public var rank: Int?
    public var normalize: Bool = true
    /// Global strength λ multiplying every module's merged update (default 1; finite, non-zero).
    public var scale: Double = 1
    public var seed: UInt64 = 0
    public var parameters: [String: ParameterValue] = [:]
    public var outputDType: DType = .f32
    public var adapters: [AdapterEntry]
    /// The job file itself (absolute), or nil for jobs built in code.
    public var sourcePath: String?
    /// `report: full | exact | minimal` (nil: full).
    public var report: ReportLevel?
    /// Task budget in MB (`max_task_mb`): a lego module whose units exceed it is split into blocks
    /// (`TaskBudget`); nil leaves the choice to the runtime (`--max-task-mb`, else its default).
    public var maxTaskMB: Double?

    public init(method: MergeMethodName, rank: Int? = nil, normalize: Bool = true, scale: Double = 1, seed: UInt64 = 0,
                parameters: [String: ParameterValue] = [:], outputDType: DType = .f32,
                adapters: [AdapterEntry], sourcePath: String? = nil) {
        self.method = method
        self.rank = rank
        self.normalize = normalize
        self.scale = scale
        self.seed = seed
        self.parameters = parameters
        self.outputDType = outputDType
        self.adapters = adapters
        self.sourcePath = sourcePath
    }
}
