import Foundation

/// Which modules are too large for one task, and how they split. A lego module whose units
/// (Σ ranks × (out + in) Float32) exceed the budget is cut into blocks of whole adapters, in job order, each
/// holding at most budget / (4 (out + in)) units (an adapter larger than that is a block of its own). The blocks
/// depend on the job and the budget only, never on the number of workers, so the split module's bytes are the
/// same for any worker count; the budget is part of the plan and so of the checkpoint's job hash.
public enum TaskBudget {
    /// Default budget when neither the job nor the command line sets one: a quarter of this machine's memory
    /// (the local workers' machine for `merge`; set `max_task_mb` in the job to make a plan machine-independent).
    public static var defaultMegabytes: Double {
        Double(ProcessInfo.processInfo.physicalMemory) / 4 / 1_048_576
    }

    /// Splits the plan's oversized lego modules. `megabytes` overrides the job's `max_task_mb`.
    public static func apply(to plan: inout MergePlan, megabytes: Double? = nil) {
        let budget = megabytes ?? plan.job.maxTaskMB ?? defaultMegabytes
        guard plan.spec.method == .lego, budget > 0, budget.isFinite else { return }
        for index in plan.modules.indices {
            plan.modules[index].blocks = blocks(for: plan.modules[index], rank: plan.spec.rank, budgetBytes: budget * 1_048_576)
        }
    }

    /// The block plan of one module, or nil when it fits (or clustering has nothing to do: Σ ranks ≤ k).
    public static func blocks(for module: ModulePlan, rank k: Int, budgetBytes: Double) -> [ModuleBlock]? {
        let ranks = module.sources.map(\.module.rank)
        let total = ranks.reduce(0, +)
        let unitBytes = 4.0 * Double(module.outFeatures + module.inFeatures)
        guard total > k, Double(total) * unitBytes > budgetBytes else { return nil }
        let perBlock = max(1, Int(budgetBytes / unitBytes))
        var result: [ModuleBlock] = []
        var start = 0, units = 0, offset = 0
        for (index, rank) in ranks.enumerated() {
            if index > start && units + rank > perBlock {
                result.append(ModuleBlock(sources: start..<index, unitIDOffset: offset))
                offset += units
                start = index
                units = 0
            }
            units += rank
        }
        result.append(ModuleBlock(sources: start..<ranks.count, unitIDOffset: offset))
        return result.count > 1 ? result : nil
    }
}
