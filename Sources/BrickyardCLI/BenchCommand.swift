import ArgumentParser
import Foundation
import Kernels
import MergeEngine

/// `brickyard bench-engine`: kernel benchmarks behind scripts/bench-engine (hidden from help). Each subcommand
/// prints one `key=value` line so the script can collect figures.
struct BenchEngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-engine",
        abstract: "Benchmark the merge kernels (Lloyd iterations, low-rank svd, determinism).",
        shouldDisplay: false,
        subcommands: [LloydBench.self, SVDBench.self, DeterminismCheck.self, SplitSeedingBench.self, LegoPhasesBench.self,
                      KMeansSeedingBench.self]
    )
}

/// A module of `adapters` random rank-`rank` terms with normalised weights (scaling 2, like alpha = 2r).
private func syntheticModule(out: Int, in inFeatures: Int, adapters: Int, rank: Int, seed: UInt64) -> ModuleInput {
    let terms = (0..<adapters).map { (i: Int) -> LoraTerm in
        let seedA: UInt64 = seed &+ UInt64(2 * i)
        let a = BenchTiming.gaussian(rank * inFeatures, seed: seedA, scale: 0.02)
        let b = BenchTiming.gaussian(out * rank, seed: seedA &+ 1, scale: 0.02)
        return LoraTerm(coefficient: 2.0 / Double(adapters), rank: rank, a: a, b: b)
    }
    return ModuleInput(name: "bench.module", outFeatures: out, inFeatures: inFeatures, terms: terms)
}

/// Lloyd iterations (distance GEMM + signed-assignment update GEMM per iteration) against the same two GEMMs
/// alone, in the current OpenBLAS thread count (the script sets OPENBLAS_NUM_THREADS=1).
struct LloydBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lloyd")

    @Option var units = 1024
    @Option var dimension = 4096 + 14336
    @Option var clusters = 16
    @Option var iterations = 10

    func run() throws {
        guard units > clusters, clusters > 0, dimension > 0, iterations > 0 else {
            throw ValidationError("need units > clusters > 0, dimension > 0, iterations > 0")
        }
        let (n, d, k) = (units, dimension, clusters)
        let x = BenchTiming.gaussian(n * d, seed: 1)
        let norms = SignInvariantKMeans.rowNormsSquared(x, count: n, dimension: d)
        let initial = Array(x[0..<(k * d)])

        // Warm-up, then Lloyd iterations exactly as `cluster` runs them.
        var centroids = initial
        var step = SignInvariantKMeans.lloydStep(units: x, count: n, dimension: d, unitNormsSquared: norms,
                                                 centroids: centroids, k: k, blockSize: KMeansOptions.defaultBlockSize)
        let lloydSeconds = BenchTiming.seconds {
            for _ in 0..<iterations {
                centroids = SignInvariantKMeans.updateCentroids(&step, units: x, dimension: d, k: k)
                step = SignInvariantKMeans.lloydStep(units: x, count: n, dimension: d, unitNormsSquared: norms,
                                                     centroids: centroids, k: k,
                                                     blockSize: KMeansOptions.defaultBlockSize)
            }
        }

        // The same two GEMMs alone: X Mᵀ [n, k] and Sᵀ X [k, d].
        var dots = [Float](repeating: 0, count: n * k)
        var signed = [Float](repeating: 0, count: n * k)
        for i in 0..<n { signed[i * k + i % k] = i % 2 == 0 ? 1 : -1 }
        var sums = [Float](repeating: 0, count: k * d)
        let gemmSeconds = BenchTiming.seconds {
            for _ in 0..<iterations {
                BLAS.multiply(x, centroids, into: &dots, m: n, n: k, k: d, transB: .transpose)
                BLAS.multiply(signed, x, into: &sums, m: k, n: d, k: n, transA: .transpose)
            }
        }
        var clusterOptions = KMeansOptions(iterations: iterations, tolerance: 0)
        clusterOptions.blockSize = KMeansOptions.defaultBlockSize
        let clusterSeconds = try BenchTiming.seconds {
            _ = try SignInvariantKMeans.cluster(units: x, count: n, dimension: d, k: k, options: clusterOptions, seed: 7)
        }
        let flops = 4.0 * Double(n) * Double(k) * Double(d) * Double(iterations)
        let lloyd = flops / lloydSeconds / 1e9, gemm = flops / gemmSeconds / 1e9
        print(String(format: "lloyd units=%d dim=%d k=%d iterations=%d threads=%d lloyd_s=%.4f lloyd_gflops=%.1f "
                     + "sgemm_s=%.4f sgemm_gflops=%.1f ratio=%.3f cluster_total_s=%.4f",
                     n, d, k, iterations, BLAS.threadCount, lloydSeconds, lloyd, gemmSeconds, gemm, lloyd / gemm,
                     clusterSeconds))
    }
}

/// The factored svd route (two thin QRs + top-k triplets of the small core) against forming T densely and running LAPACK sgesdd on it.
struct SVDBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "svd")

    @Option var out = 4096
    @Option(name: .customLong("in")) var inFeatures = 4096
    @Option var adapters = 64
    @Option var rank = 16
    @Option var k = 16
    @Flag(help: "Skip the dense route (it takes minutes on wide modules).") var skipDense = false

    func run() throws {
        let input = syntheticModule(out: out, in: inFeatures, adapters: adapters, rank: rank, seed: 11)
        let total = input.totalRank
        // Stacked factors Bc = [c_i B_i] column-major [out, R], Ac = [A_i] [R, in] (shared by both routes, not timed).
        var stackedB = [Float](repeating: 0, count: out * total)
        var stackedA: [Float] = []
        var offset = 0
        for term in input.terms {
            for i in 0..<out { for j in 0..<term.rank {
                stackedB[(offset + j) * out + i] = Float(term.coefficient) * term.b[i * term.rank + j]
            } }
            stackedA += term.a
            offset += term.rank
        }
        var factored: TruncatedSVD?
        let factoredSeconds = try BenchTiming.seconds {
            factored = try FactoredProduct(leftColumns: stackedB, right: stackedA, rows: out, inner: total, cols: inFeatures)
                .truncatedSVD(rank: k)
        }
        guard let factored else { throw ValidationError("svd produced no result") }
        var result: ModuleResult?
        let mergeSeconds = try BenchTiming.seconds { result = try ModuleMerger.merge(input, spec: MergeSpec(method: .svd, rank: k), seed: 0) }
        guard let result else { throw ValidationError("svd merge produced no result") }

        var line = String(format: "svd out=%d in=%d R=%d k=%d threads=%d factored_s=%.3f merge_with_stats_s=%.3f "
                          + "rel_error=%.6f floor=%.6f", out, inFeatures, total, k, BLAS.threadCount, factoredSeconds,
                          mergeSeconds, result.stats.relativeError, result.stats.svdFloor ?? -1)
        if !skipDense {
            var denseSigma: [Float] = []
            let denseSeconds = try BenchTiming.seconds {
                // PEFT's route: T densely (one GEMM), then a full dense SVD.
                let dense = BLAS.matmul(stackedB, stackedA, m: out, n: inFeatures, k: total, transA: .transpose)
                denseSigma = try LinearAlgebra.svd(dense, rows: out, cols: inFeatures).s
            }
            let p = min(factored.singularValues.count, denseSigma.count)
            var worst = 0.0
            for i in 0..<min(p, k) {
                worst = max(worst, Double(abs(factored.singularValues[i] - denseSigma[i]) / max(denseSigma[0], .leastNonzeroMagnitude)))
            }
            line += String(format: " dense_s=%.3f speedup=%.1f top_k_sigma_max_rel_diff=%.2e", denseSeconds,
                           denseSeconds / factoredSeconds, worst)
        }
        print(line)
    }
}

/// Merges one synthetic module with lego and svd and prints a hash of the result bytes and stats, so a script
/// can compare runs under different OPENBLAS_NUM_THREADS.
struct DeterminismCheck: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "determinism")

    func run() throws {
        let input = syntheticModule(out: 768, in: 512, adapters: 16, rank: 8, seed: 3)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ value: UInt64) { hash = (hash ^ value) &* 0x0000_0100_0000_01b3 }
        var options = LegoOptions()
        options.reweight = .optimal
        for spec in [MergeSpec(method: .lego, rank: 16), MergeSpec(method: .lego, rank: 16, lego: options),
                     MergeSpec(method: .svd, rank: 16)] {
            let result = try ModuleMerger.merge(input, spec: spec, seed: 42)
            for value in result.b { mix(UInt64(value.bitPattern)) }
            for value in result.a { mix(UInt64(value.bitPattern)) }
            mix(result.stats.relativeError.bitPattern)
            mix((result.stats.svdFloor ?? 0).bitPattern)
            mix((result.stats.finalDistance ?? 0).bitPattern)
        }
        print(String(format: "determinism threads_env=%@ hash=%016llx",
                     ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] ?? "unset", hash))
    }
}
