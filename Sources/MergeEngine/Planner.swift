import AdapterIO

/// What the planner needs to know about one input adapter (its modules with their factors' locations, and what
/// the output config carries over). Built from a PEFT directory by `Planner.plan(job:)`, or in code for tests.
public struct LoadedAdapter: Sendable {
    public var path: String
    public var modules: [LoraModuleInfo]
    public var targetModules: [String]
    public var baseModelNameOrPath: String?
    public var taskType: String?

    public init(path: String, modules: [LoraModuleInfo], targetModules: [String] = [],
                baseModelNameOrPath: String? = nil, taskType: String? = nil) {
        self.path = path
        self.modules = modules
        self.targetModules = targetModules
        self.baseModelNameOrPath = baseModelNameOrPath
        self.taskType = taskType
    }
}

/// Turns a job into a `MergePlan`: loads every adapter's header, normalises the weights, computes each module's
/// coefficients `c_i = w_i · s_i`, and lists the output modules (the union over adapters, sorted by name).
public enum Planner {
    /// Plans `job` with adapters supplied by `loadAdapter` (called once per entry, in job order).
    public static func plan(job: JobSpec, loadAdapter: (AdapterEntry) throws -> LoadedAdapter) throws -> MergePlan {
        let file = job.sourcePath ?? "job"
        guard !job.adapters.isEmpty else { throw MergeError("\(file): adapters: the pool is empty") }
        let weights = try normalizedWeights(job, file: file)
        let adapters = try job.adapters.map(loadAdapter)

        var sourcesByModule: [String: [ModuleSource]] = [:]
        var shapeOwner: [String: (out: Int, in: Int, adapter: Int)] = [:]
        for (index, adapter) in adapters.enumerated() {
            for module in adapter.modules {
                if let known = shapeOwner[module.name] {
                    guard known.out == module.outFeatures, known.in == module.inFeatures else {
                        throw MergeError("\(file): module \(module.name) is [\(known.out), \(known.in)] in \(adapters[known.adapter].path) "
                            + "but [\(module.outFeatures), \(module.inFeatures)] in \(adapter.path)")
                    }
                } else {
                    shapeOwner[module.name] = (module.outFeatures, module.inFeatures, index)
                }
                sourcesByModule[module.name, default: []].append(
                    ModuleSource(adapterIndex: index, module: module, coefficient: weights[index] * module.scaling))
            }
        }
        guard !sourcesByModule.isEmpty else { throw MergeError("\(file): adapters: no input adapter has any LoRA module") }

        let largestRank = adapters.flatMap(\.modules).map(\.rank).max() ?? 0
        let spec = try MergeSpec.resolve(job: job, largestInputRank: largestRank)
        if spec.method == .linear { try checkEqualRanks(sourcesByModule, adapters: adapters, file: file) }
        let names = sourcesByModule.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let modules = names.map { name -> ModulePlan in
            let sources = sourcesByModule[name] ?? []
            let shape = shapeOwner[name] ?? (0, 0, 0)
            return ModulePlan(name: name, outFeatures: shape.out, inFeatures: shape.in, sources: sources,
                              seed: ModuleSeed.derive(jobSeed: job.seed, module: name))
        }
        var plan = MergePlan(job: job, spec: spec, modules: modules,
                             baseModelNameOrPath: adapters.lazy.compactMap(\.baseModelNameOrPath).first,
                             taskType: adapters.lazy.compactMap(\.taskType).first,
                             targetModules: Set(adapters.flatMap(\.targetModules)).sorted())
        plan.warnings = baseModelWarnings(adapters)
        TaskBudget.apply(to: &plan)
        return plan
    }

    /// Adapters whose configs name different base models (same shapes, or planning would have failed): merged
    /// anyway, since one model can go by several names (a hub id, a local path, a fine-tuned variant), but said.
    static func baseModelWarnings(_ adapters: [LoadedAdapter]) -> [String] {
        var order: [String] = []
        var paths: [String: [String]] = [:]
        for adapter in adapters {
            guard let base = adapter.baseModelNameOrPath, !base.isEmpty else { continue }
            if paths[base] == nil { order.append(base) }
            paths[base, default: []].append(adapter.path)
        }
        guard order.count > 1 else { return [] }
        let named = order.map { base in
            let list = paths[base] ?? []
            return "\(base) (\(list.count) adapter\(list.count == 1 ? "" : "s"), e.g. \(list[0]))"
        }
        return ["the adapters name \(order.count) different base models: \(named.joined(separator: ", ")); merged "
                + "anyway (their shapes agree), the output names \(order[0])"]
    }

    /// `linear` averages factors, so every module needs one rank across the adapters that have it.
    private static func checkEqualRanks(_ sources: [String: [ModuleSource]], adapters: [LoadedAdapter], file: String) throws {
        for name in sources.keys.sorted() {
            guard let first = sources[name]?.first,
                  let other = sources[name]?.first(where: { $0.module.rank != first.module.rank }) else { continue }
            throw MergeError("\(file): method linear needs equal ranks, but module \(name) has rank \(first.module.rank) in "
                + "\(adapters[first.adapterIndex].path) and \(other.module.rank) in \(adapters[other.adapterIndex].path) (use cat, svd or lego)")
        }
    }

    /// The job's weights, divided by their sum when `normalize` is set.
    static func normalizedWeights(_ job: JobSpec, file: String) throws -> [Double] {
        let weights = job.adapters.map(\.weight)
        if let bad = weights.firstIndex(where: { !$0.isFinite }) {
            throw MergeError("\(file): adapters[\(bad)].weight: must be a finite number, got \(weights[bad])")
        }
        guard job.normalize else { return weights }
        // Fixed left-to-right order: the sum (and so every coefficient) is the same on every machine.
        let sum = weights.reduce(0, +)
        guard sum != 0 else {
            throw MergeError("\(file): normalize: the adapter weights sum to 0, so they cannot be normalised (set normalize: false or change the weights)")
        }
        return weights.map { $0 / sum }
    }
}

extension Planner {
    /// Plans `job`, opening every adapter from disk (headers only: factors are read per module later).
    public static func plan(job: JobSpec) throws -> MergePlan {
        try plan(job: job) { entry in LoadedAdapter(try PeftAdapter.load(path: entry.path, rank: entry.rank, alpha: entry.alpha)) }
    }
}

extension LoadedAdapter {
    /// The planner's view of an opened PEFT adapter.
    public init(_ adapter: PeftAdapter) {
        self.init(path: adapter.path, modules: adapter.modules, targetModules: adapter.mergeTargetModules,
                  baseModelNameOrPath: adapter.config.baseModelNameOrPath, taskType: adapter.config.taskType)
    }
}
