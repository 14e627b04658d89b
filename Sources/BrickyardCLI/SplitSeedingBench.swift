import ArgumentParser
import Foundation
import Kernels

/// `brickyard bench-engine split-seeding`: what the k-means|| seeding of a split module costs against its Lloyd
/// rounds, on random units in blocks, one thread. Every seeding round is also computed the way it was before
/// incremental seeding (distances of every unit to every candidate drawn so far, from scratch), on the same
/// requests, so the line gives both shares from one run. Times are this thread's CPU seconds. Prints one
/// `key=value` line.
struct SplitSeedingBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "split-seeding")

    @Option var blocks = 4
    @Option(name: .customLong("units-per-block")) var unitsPerBlock = 960
    @Option var outFeatures = 14336
    @Option var inFeatures = 4096
    @Option var clusters = 16
    @Option var iterations = 4

    func run() throws {
        guard blocks > 0, unitsPerBlock > 0, outFeatures > 0, inFeatures > 0, clusters > 0, iterations >= 0 else {
            throw ValidationError("need positive blocks, units, features and clusters")
        }
        let dimension = outFeatures + inFeatures
        let unitBlocks = (0..<blocks).map { b -> UnitBlock in
            let vectors = BenchTiming.gaussian(unitsPerBlock * dimension, seed: 100 + UInt64(b), scale: 0.02)
            return UnitBlock(vectors: vectors, count: unitsPerBlock, dimension: dimension, outFeatures: outFeatures,
                             ids: (0..<unitsPerBlock).map { UInt64(b * unitsPerBlock + $0) })
        }
        let seed: UInt64 = 5
        let configuration = BlockKMeansConfiguration(k: clusters, dimension: dimension, outFeatures: outFeatures, seed: seed,
                                                     iterations: iterations, tolerance: 0, blockCount: blocks,
                                                     reweightRound: false)
        var driver = BlockKMeansDriver(configuration: configuration)
        var seeding = 0.0, lloyd = 0.0, seedingBefore = 0.0
        var columns = 0, columnsBefore = 0, lloydColumns = 0
        var allCandidates: [Float] = []
        while !driver.isDone {
            let requests = try unitBlocks.indices.map { b -> BlockRoundRequest in
                guard let request = driver.request(block: b) else { throw ValidationError("driver has no request") }
                return request
            }
            let kind = requests[0].kind
            var partials: [BlockPartial] = []
            let elapsed = try BenchTiming.seconds(.thread) {
                partials = try unitBlocks.indices.map { try BlockKMeans.compute(requests[$0], block: unitBlocks[$0], seed: seed) }
            }
            switch kind {
            case .firstCenter:
                seeding += elapsed
                seedingBefore += elapsed
            case .oversample, .draw, .candidateWeights:
                seeding += elapsed
                columns += requests[0].centerCount
                allCandidates += requests[0].centers
                // Before: every candidate so far, no carried state.
                var full = requests[0]
                full.centers = allCandidates
                full.centerCount = allCandidates.count / dimension
                full.centerOffset = 0
                full.nearest = nil
                columnsBefore += full.centerCount
                seedingBefore += try BenchTiming.seconds(.thread) {
                    for block in unitBlocks { _ = try BlockKMeans.compute(full, block: block, seed: seed) }
                }
            case .lloyd, .reweight:
                lloyd += elapsed
                lloydColumns += requests[0].centerCount
            case .probeImage, .target, .targetTimes, .targetTransposedTimes, .principalStart, .principalLeft, .principalRight,
                 .refitLeft, .refitRight:
                break  // a plain driver runs no quality-track or principal-direction rounds
            }
            try driver.advance(with: partials)
        }
        print(String(format: "split-seeding blocks=%d units=%d dim=%d k=%d lloyd_rounds=%d seeding_s=%.3f lloyd_s=%.3f "
                     + "seeding_share=%.3f seeding_before_s=%.3f seeding_share_before=%.3f candidate_columns=%d "
                     + "candidate_columns_before=%d lloyd_columns=%d",
                     blocks, blocks * unitsPerBlock, dimension, clusters, iterations + 1, seeding, lloyd,
                     seeding / max(1e-12, seeding + lloyd), seedingBefore, seedingBefore / max(1e-12, seedingBefore + lloyd),
                     columns, columnsBefore, lloydColumns))
    }
}
