import AdapterIO
import Foundation
import Logging

/// Progress of a running merge, reported after each finished module.
public struct MergeProgress: Sendable {
    public var done: Int
    public var total: Int
    public var module: String
    public var elapsedSeconds: Double
}

/// The in-process runtime: loads, merges and writes every module of a plan in this process, one module after
/// another. The distributed runtime uses the same pieces (`ModulePlan.loadInput`, `ModuleMerger.merge`,
/// `OutputAssembler`) from its workers and coordinator.
public enum LocalMerge {
    /// Runs `plan` and writes the output directory; returns the report that was written.
    /// Nothing is written if any module fails.
    @discardableResult
    public static func run(plan: MergePlan, outputDirectory: String, overwrite: Bool = false,
                           logger: Logger = Logger(label: "brickyard.merge"),
                           progress: (MergeProgress) -> Void = { _ in }) throws -> MergeReport {
        try OutputAssembler.checkDestination(outputDirectory, overwrite: overwrite)
        let start = Date()
        var results: [ModuleResult] = []
        var entries: [MergeReport.Module] = []
        results.reserveCapacity(plan.modules.count)
        for module in plan.modules {
            let moduleStart = Date()
            let result = try mergeModule(module, spec: plan.spec)
            let seconds = Date().timeIntervalSince(moduleStart)
            logger.debug("merged module", metadata: ["module": "\(module.name)", "rank": "\(result.rank)", "seconds": "\(seconds)"])
            entries.append(MergeReport.Module(plan: module, method: plan.spec.method, result: result,
                                              workerID: "local", attempts: 1, seconds: seconds))
            results.append(result)
            progress(MergeProgress(done: results.count, total: plan.modules.count, module: module.name,
                                   elapsedSeconds: Date().timeIntervalSince(start)))
        }
        let report = MergeReport(plan: plan, modules: entries, wallSeconds: Date().timeIntervalSince(start))
        try OutputAssembler.assemble(plan: plan, to: outputDirectory, overwrite: overwrite, results: results, report: report)
        return report
    }

    /// Loads and merges one module; errors that do not already say where they happened get the module's name.
    public static func mergeModule(_ module: ModulePlan, spec: MergeSpec) throws -> ModuleResult {
        do {
            if module.blocks != nil { return try SplitLego.mergeInProcess(module, spec: spec) }
            return try ModuleMerger.merge(module.termSource(), spec: spec, seed: module.seed)
        } catch let error as MergeError {
            throw error
        } catch let error as AdapterIOError {
            throw error
        } catch {
            throw MergeError("module \(module.name): \(error)")
        }
    }
}
