import Foundation
import Testing
@testable import Kernels
@testable import MergeEngine

/// The report's quality figures when exact ones do not fit a quarter of the merge: estimated with standard
/// errors that cover the dense reference; `report: exact` gives the exact figures whatever the budget.
@Suite struct EstimatedQualityTests {
    static func pool(seed: UInt64) -> ModuleInput {
        ScaleQualityTests.pool(out: 80, in: 64, count: 900, seed: seed)
    }

    static func clusteringStandIn(_ input: ModuleInput, rank: Int, seed: UInt64) -> ModuleResult {
        var random = DeterministicRandom(seed: seed)
        return ModuleResult(name: input.name, rank: rank, outFeatures: input.outFeatures, inFeatures: input.inFeatures,
                            b: (0..<(input.outFeatures * rank)).map { _ in Float(random.nextGaussian()) },
                            a: (0..<(rank * input.inFeatures)).map { _ in Float(random.nextGaussian() * 0.3) },
                            stats: ModuleStats(relativeError: -1))
    }

    /// Any result, a budget below the exact cost: estimated figures, flagged, within 4 standard errors of the
    /// dense reference for every seed and within 2 for most; `report: exact` gives the reference itself.
    @Test func anyResultEstimatedUnderATightBudgetExactOnRequest() throws {
        let input = Self.pool(seed: 4)
        let target = RandomModules.target(input)
        let sigma = try RandomModules.singularValues(target, out: 80, in: 64)
        let floor = TruncatedSVD.tailFraction(sigma, rank: 5)
        var within2 = 0
        for seed in UInt64(0)..<30 {
            var result = Self.clusteringStandIn(input, rank: 5, seed: 1)
            let expected = RandomModules.relativeError(RandomModules.dense(result), target)
            try ModuleQuality.fillStats(&result, input: input, seed: seed, mergeFlops: 1)
            #expect(result.stats.qualityEstimated == true)
            let se = try #require(result.stats.relativeErrorStandardError)
            #expect(abs(result.stats.relativeError - expected) <= 4 * se)
            if abs(result.stats.relativeError - expected) <= 2 * se { within2 += 1 }
            let floorSE = try #require(result.stats.svdFloorStandardError)
            #expect(abs((result.stats.svdFloor ?? -1) - floor) <= 4 * floorSE + StackedProduct.sketchTolerance)
        }
        #expect(within2 >= 24)
        var exact = Self.clusteringStandIn(input, rank: 5, seed: 1)
        try ModuleQuality.fillStats(&exact, input: input, seed: 0, report: .exact, mergeFlops: 1)
        #expect(exact.stats.qualityEstimated == nil && exact.stats.relativeErrorStandardError == nil)
        let expected = RandomModules.relativeError(RandomModules.dense(exact), target)
        #expect(abs(exact.stats.relativeError - expected) <= 1e-5 * expected)
        #expect(abs((exact.stats.svdFloor ?? -1) - floor) <= 1e-4)
    }

    /// svd on the Krylov route: the estimated error (= floor) covers the dense one; exact on request.
    @Test func svdKrylovEstimatedAndExact() throws {
        let input = Self.pool(seed: 6)
        let target = RandomModules.target(input)
        let floor = TruncatedSVD.tailFraction(try RandomModules.singularValues(target, out: 80, in: 64), rank: 4)
        var within2 = 0
        for seed in UInt64(0)..<30 {
            var result = try SVDMerge.merge(input, rank: 4, seed: seed, wantQuality: false, route: .krylov)
            let actual = RandomModules.relativeError(RandomModules.dense(result), target)
            try ModuleQuality.fillStats(&result, input: input, seed: seed, mergeFlops: 1)
            #expect(result.stats.qualityEstimated == true && result.stats.svdRoute == "krylov")
            let se = try #require(result.stats.relativeErrorStandardError)
            #expect(abs(result.stats.relativeError - actual) <= 4 * se)
            if abs(result.stats.relativeError - actual) <= 2 * se { within2 += 1 }
            #expect(actual - floor <= StackedProduct.krylovTolerance)
        }
        #expect(within2 >= 24)
        var exact = try SVDMerge.merge(input, rank: 4, seed: 1, wantQuality: false, route: .krylov)
        try ModuleQuality.fillStats(&exact, input: input, seed: 1, report: .exact, mergeFlops: 1)
        #expect(exact.stats.qualityEstimated == nil)
        #expect(abs(exact.stats.relativeError - RandomModules.relativeError(RandomModules.dense(exact), target)) <= 1e-5)
    }

    /// The modelled merge cost the budget is a quarter of: svd counts its Krylov steps, lego its restarts and
    /// Lloyd steps; a generous budget keeps exact figures.
    @Test func budgetFromTheModelledMergeCost() throws {
        let input = Self.pool(seed: 2)
        let svd = try ModuleMerger.merge(input, spec: MergeSpec(method: .svd, rank: 4), seed: 3)
        #expect(ModuleQuality.modelledMergeFlops(spec: MergeSpec(method: .svd, rank: 4), input: input, result: svd) > 0)
        var spec = MergeSpec(method: .lego, rank: 4)
        spec.lego.restarts = 2
        spec.lego.oversample = 3  // the k-means runs at 3·k clusters (the pool has far more than 4·3·k units)
        var lego = Self.clusteringStandIn(input, rank: 4, seed: 2)
        lego.stats.iterations = 3
        let flops = ModuleQuality.modelledMergeFlops(spec: spec, input: input, result: lego)
        #expect(flops == 2 * 5 * 4 * Double(input.totalRank) * Double(80 + 64) * 4 * 3)
        try ModuleQuality.fillStats(&lego, input: input, seed: 0, mergeFlops: 1e15)
        #expect(lego.stats.qualityEstimated == nil)
    }

    @Test func jobFileReportExact() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("brickyard-exact-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/a", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let job = try JobSpec.parse(yaml: "method: lego\nreport: exact\nadapters: [{path: a}]", baseDirectory: root,
                                    fileName: "job.yaml")
        #expect(job.report == .exact)
        #expect(try MergeSpec.resolve(job: job, largestInputRank: 4).report == .exact)
        let full = try JobSpec.parse(yaml: "method: lego\nreport: full\nadapters: [{path: a}]", baseDirectory: root,
                                     fileName: "job.yaml")
        #expect(try MergeSpec.resolve(job: full, largestInputRank: 4).report == nil)
    }
}
