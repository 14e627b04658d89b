/// What `brickyard inspect` reports for one adapter; Codable in the `--json` layout (snake_case keys).
public struct AdapterSummary: Sendable, Codable, Equatable {
    /// One module's line of the report.
    public struct Module: Sendable, Codable, Equatable {
        public var name: String
        public var rank: Int
        public var alpha: Double
        public var scaling: Double
        public var inFeatures: Int
        public var outFeatures: Int
        /// ‖ΔW‖_F = ‖scaling·B·A‖_F, only with `--norms`.
        public var norm: Double?

        enum CodingKeys: String, CodingKey {
            case name, rank, alpha, scaling, norm
            case inFeatures = "in_features"
            case outFeatures = "out_features"
        }
    }

    public var path: String
    public var dtype: String
    public var baseModel: String?
    public var taskType: String?
    public var useRslora: Bool
    public var parameters: Int
    public var fileSize: Int
    public var modules: [Module]

    enum CodingKeys: String, CodingKey {
        case path, dtype, parameters, modules
        case baseModel = "base_model"
        case taskType = "task_type"
        case useRslora = "use_rslora"
        case fileSize = "file_size"
    }

    /// `base_model` and `task_type` are always present (null when unset): the documented JSON shape has them.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encode(dtype, forKey: .dtype)
        try container.encode(baseModel, forKey: .baseModel)
        try container.encode(taskType, forKey: .taskType)
        try container.encode(useRslora, forKey: .useRslora)
        try container.encode(parameters, forKey: .parameters)
        try container.encode(fileSize, forKey: .fileSize)
        try container.encode(modules, forKey: .modules)
    }

    /// Builds the report; with `norms`, reads every factor (low-rank norm, no dense ΔW).
    public init(adapter: PeftAdapter, norms: Bool = false) throws {
        path = adapter.path
        dtype = adapter.dtypeSummary
        baseModel = adapter.config.baseModelNameOrPath
        taskType = adapter.config.taskType
        useRslora = adapter.config.useRslora
        parameters = adapter.parameterCount
        fileSize = adapter.fileSize
        modules = try adapter.modules.map { info in
            var norm: Double?
            if norms {
                let (a, b) = try adapter.loadFactors(info)
                norm = LowRankNorm.frobenius(a: a, b: b, rank: info.rank, inFeatures: info.inFeatures,
                                             outFeatures: info.outFeatures, scaling: info.scaling)
            }
            return Module(name: info.name, rank: info.rank, alpha: info.alpha, scaling: info.scaling,
                          inFeatures: info.inFeatures, outFeatures: info.outFeatures, norm: norm)
        }
    }

    /// Distinct ranks, ascending.
    public var ranks: [Int] { Array(Set(modules.map(\.rank))).sorted() }
    public var alphas: [Double] { Array(Set(modules.map(\.alpha))).sorted() }
    public var scalings: [Double] { Array(Set(modules.map(\.scaling))).sorted() }
}
