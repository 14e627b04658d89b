import ArgumentParser
import Foundation
import Kernels
import MergeEngine

/// `brickyard bench-engine kmeans-seeding JOB`: greedy k-means++ against k-means|| seeding on a real pool's units,
/// one thread, this process's CPU seconds. For every module of a lego job (or the `--module` ones) and every
/// seeding variant: seconds of the seeding alone, of the whole k-means (seeding + Lloyd, the job's iterations,
/// tolerance, restarts and k), the Lloyd steps computed (up to the fixed point), and the final objective as a share of Σ‖x‖² (lower is
/// better: what the clustering leaves unexplained). Prints one `key=value` line per module and variant.
struct KMeansSeedingBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kmeans-seeding")

    @Argument(help: "A lego job file.") var job: String
    @Option(help: "Modules to measure (suffixes of their names, comma-separated); default every module.") var module = ""
    @Option(help: "k-means|| rounds to compare against greedy seeding (0 = greedy), comma-separated.")
    var rounds = "0,1,2,3,5"
    @Option(help: "k-means|| candidates per cluster per round.") var factor = 2.0
    @Option(help: "Greedy k-means++ candidates per step (default 2 + log k).") var candidates: Int?
    @Option(help: "Clusters (default: the job's rank times its oversampling factor).") var k: Int?
    @Option(help: "Seeds per module and variant (the module seed plus 0, 1, …); figures are their means.") var seeds = 1

    func run() throws {
        let plan = try Planner.plan(job: try JobSpec.load(path: job))
        guard plan.spec.method == .lego else { throw ValidationError("\(job): method is \(plan.spec.method.rawValue), not lego") }
        let wanted = module.split(separator: ",").map(String.init)
        let modules = plan.modules.filter { m in wanted.isEmpty || wanted.contains { m.name == $0 || m.name.hasSuffix("." + $0) } }
        let variants = try rounds.split(separator: ",").map { text -> Int in
            guard let value = Int(text), value >= 0 else { throw ValidationError("bad rounds value \(text)") }
            return value
        }
        let options = plan.spec.lego
        let clusters = k ?? plan.spec.rank * max(1, options.effectiveOversample)
        try BLAS.singleThreaded {
            for modulePlan in modules {
                let source = modulePlan.termSource()
                let units = try RankOneUnits.extract(ranks: source.ranks, outFeatures: source.outFeatures,
                                                     inFeatures: source.inFeatures,
                                                     gauge: options.gauge == .raw ? .raw : .balanced,
                                                     basis: options.basis == .raw ? .raw : .svd) { try source.term($0) }
                let norms = SignInvariantKMeans.rowNormsSquared(units.vectors, count: units.count, dimension: units.dimension)
                let energy = norms.reduce(0, +)
                let clusterCount = min(clusters, units.count)
                for variant in variants {
                    let kmeans = KMeansOptions(iterations: max(0, options.iterations), tolerance: max(0, options.tolerance),
                                               restarts: max(1, options.restarts), seedingCandidates: candidates,
                                               seedingRounds: variant,
                                               oversamplingFactor: factor)
                    var seeding = 0.0, total = 0.0, iterations = 0, unexplained = 0.0
                    for s in 0..<max(1, seeds) {
                        let seed = modulePlan.seed &+ UInt64(s)
                        seeding += BenchTiming.seconds(.process) {
                            _ = SignInvariantKMeans.initialCentroids(units: units.vectors, count: units.count,
                                                                     dimension: units.dimension, k: clusterCount,
                                                                     unitNormsSquared: norms, options: kmeans, seed: seed)
                        }
                        var result: KMeansResult?
                        total += try BenchTiming.seconds(.process) {
                            result = try SignInvariantKMeans.cluster(units: units.vectors, count: units.count,
                                                                     dimension: units.dimension, k: clusterCount,
                                                                     options: kmeans, seed: seed)
                        }
                        guard let result else { continue }
                        // Lloyd steps computed: the history repeats its last objective after a fixed point.
                        var steps = result.objectiveHistory.count
                        while steps > 1 && result.objectiveHistory[steps - 1] == result.objectiveHistory[steps - 2] { steps -= 1 }
                        iterations += steps - 1
                        unexplained += energy > 0 ? result.finalObjective / energy : 0
                    }
                    let runs = Double(max(1, seeds))
                    print(String(format: "kmeans-seeding module=%@ units=%d dim=%d k=%d restarts=%d seeds=%d seeding=%@ "
                                 + "seeding_s=%.3f kmeans_s=%.3f iterations=%.1f unexplained=%.6f",
                                 modulePlan.name, units.count, units.dimension, clusterCount, kmeans.restarts, max(1, seeds),
                                 kmeans.seedsInParallel(count: units.count, k: clusterCount) ? "parallel\(variant)" : "greedy",
                                 seeding / runs, total / runs, Double(iterations) / runs, unexplained / runs))
                }
            }
        }
    }
}
