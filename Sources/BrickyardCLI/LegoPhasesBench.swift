import ArgumentParser
import Foundation
import Kernels
import MergeEngine

/// `brickyard bench-engine lego-phases JOB --module NAME`: where one lego module's time goes, on a real pool, one
/// thread, this process's CPU seconds: unit extraction (read, bf16 → f32, canonical basis), the k-means alone on
/// those units with the job's options (restarts, iterations, tolerance, k), and the whole module merge
/// (`ModuleMerger`, as a worker runs it) with `report: minimal` and with the job's report. Prints one `key=value`
/// line with `merge_over_kmeans` (issue 9's goal: a lego module ≤ 2× its k-means). scripts/bench-scale records it.
struct LegoPhasesBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lego-phases")

    @Argument(help: "A lego job file.") var job: String
    @Option(help: "The module to measure (a suffix of its name is enough, e.g. up_proj).") var module = "up_proj"

    func run() throws {
        let plan = try Planner.plan(job: try JobSpec.load(path: job))
        guard plan.spec.method == .lego else { throw ValidationError("\(job): method is \(plan.spec.method.rawValue), not lego") }
        guard let modulePlan = plan.modules.first(where: { $0.name == module || $0.name.hasSuffix("." + module) }) else {
            throw ValidationError("\(job): no module named \(module)")
        }
        let source = modulePlan.termSource()
        let options = plan.spec.lego
        var units = 0, dimension = 0, iterations = 0
        let kmeans = KMeansOptions(iterations: max(0, options.iterations), tolerance: max(0, options.tolerance),
                                   restarts: max(1, options.restarts),
                                   seedingRounds: options.initialization.seedingRounds)
        let k = options.effectiveOversample > 1 ? plan.spec.rank * options.effectiveOversample : plan.spec.rank
        var kmeansSeconds = 0.0
        let extractSeconds = try BLAS.singleThreaded { () throws -> Double in
            var extracted: RankOneUnits?
            let seconds = try BenchTiming.seconds(.process) {
                extracted = try RankOneUnits.extract(ranks: source.ranks, outFeatures: source.outFeatures,
                                                     inFeatures: source.inFeatures, gauge: options.gauge == .raw ? .raw : .balanced,
                                                     basis: options.basis == .raw ? .raw : .svd) { try source.term($0) }
            }
            guard let extracted else { return seconds }
            units = extracted.count
            dimension = extracted.dimension
            kmeansSeconds = try BenchTiming.seconds(.process) {
                let clustering = try SignInvariantKMeans.cluster(units: extracted.vectors, count: extracted.count,
                                                                 dimension: extracted.dimension, k: min(k, extracted.count),
                                                                 options: kmeans, seed: modulePlan.seed)
                iterations = clustering.iterations
            }
            return seconds
        }
        var minimal = plan.spec
        minimal.report = .minimal
        let minimalSeconds = try BenchTiming.seconds(.process) { _ = try ModuleMerger.merge(source, spec: minimal, seed: modulePlan.seed) }
        let reportSeconds = try BenchTiming.seconds(.process) { _ = try ModuleMerger.merge(source, spec: plan.spec, seed: modulePlan.seed) }
        print(String(format: "lego-phases module=%@ units=%d dim=%d k=%d restarts=%d iterations=%d extract_s=%.2f "
                     + "kmeans_s=%.2f merge_minimal_s=%.2f merge_report_s=%.2f merge_over_kmeans=%.2f "
                     + "report_share=%.2f core=%@",
                     modulePlan.name, units, dimension, k, kmeans.restarts, iterations, extractSeconds, kmeansSeconds,
                     minimalSeconds, reportSeconds, kmeansSeconds > 0 ? minimalSeconds / kmeansSeconds : 0,
                     reportSeconds > 0 ? 1 - minimalSeconds / reportSeconds : 0, BLASCore.current))
    }
}
