import AdapterIO

/// One adapter's factors for one module, as the planner found them.
public struct ModuleSource: Sendable, Codable, Equatable {
    /// Index of the adapter in the job's adapter list (fixes the summation order).
    public var adapterIndex: Int
    public var module: LoraModuleInfo
    /// `c_i = w_i · s_i` (normalised weight times PEFT scaling).
    public var coefficient: Double

    public init(adapterIndex: Int, module: LoraModuleInfo, coefficient: Double) {
        self.adapterIndex = adapterIndex
        self.module = module
        self.coefficient = coefficient
    }
}

/// The unit of work: one module of the output, with every adapter that has it.
public struct ModulePlan: Sendable, Codable, Equatable {
    public var name: String
    public var outFeatures: Int
    public var inFeatures: Int
    /// In job order; adapters lacking the module are absent (they contribute zero).
    public var sources: [ModuleSource]
    /// Derived from (job seed, module name) only.
    public var seed: UInt64
    /// Set when the module is split (`TaskBudget`): its k-means runs over these blocks of sources, in order.
    public var blocks: [ModuleBlock]?

    public init(name: String, outFeatures: Int, inFeatures: Int, sources: [ModuleSource], seed: UInt64,
                blocks: [ModuleBlock]? = nil) {
        self.name = name
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.sources = sources
        self.seed = seed
        self.blocks = blocks
    }
}

/// One block of a split module: a contiguous range of its sources (adapters), fixed by the job's task budget.
public struct ModuleBlock: Sendable, Codable, Equatable {
    /// Indices into `ModulePlan.sources`.
    public var sources: Range<Int>
    /// Id of the block's first unit: Σ ranks of the sources before it (unit ids are fixed by the job).
    public var unitIDOffset: Int

    public init(sources: Range<Int>, unitIDOffset: Int) {
        self.sources = sources
        self.unitIDOffset = unitIDOffset
    }
}

/// What a job will compute: the resolved spec and one `ModulePlan` per output module, sorted by name,
/// plus what the output adapter_config.json carries over from the inputs.
public struct MergePlan: Sendable {
    public var job: JobSpec
    public var spec: MergeSpec
    public var modules: [ModulePlan]
    /// Carried into the output adapter_config.json.
    public var baseModelNameOrPath: String?
    public var taskType: String?
    /// Union of the inputs' `target_modules`, sorted.
    public var targetModules: [String]
    /// Plain-language warnings found while planning (inputs that name different base models); the CLI prints them
    /// before merging.
    public var warnings: [String] = []

    public init(job: JobSpec, spec: MergeSpec, modules: [ModulePlan], baseModelNameOrPath: String?,
                taskType: String?, targetModules: [String]) {
        self.job = job
        self.spec = spec
        self.modules = modules
        self.baseModelNameOrPath = baseModelNameOrPath
        self.taskType = taskType
        self.targetModules = targetModules
    }
}
