import Testing
@testable import Kernels
@testable import MergeEngine

@Suite struct SVDMergeTests {
    static let cases: [(out: Int, in: Int, ranks: [Int], rank: Int)] = [
        (24, 16, [4, 2, 3], 3), (10, 40, [8, 8], 5), (8, 8, [6, 6], 4), (33, 21, [1, 2, 3, 4], 10), (16, 16, [2], 4),
    ]

    @Test(arguments: cases)
    func equalsDenseTruncatedSVDAndReachesTheFloor(out: Int, in inFeatures: Int, ranks: [Int], rank: Int) throws {
        let input = RandomModules.input(out: out, in: inFeatures, ranks: ranks, seed: UInt64(out + 100 * rank))
        let result = try ModuleMerger.merge(input, spec: MergeSpec(method: .svd, rank: rank), seed: 1)
        let target = RandomModules.target(input)
        let reference = try LinearAlgebra.svd(target.map { Float($0) }, rows: out, cols: inFeatures)
        let p = min(out, inFeatures)
        let expectedRank = min(rank, input.totalRank, p)
        #expect(result.rank == expectedRank)

        // B'A' ≈ T_k from the dense SVD.
        var truncated = [Double](repeating: 0, count: out * inFeatures)
        for t in 0..<expectedRank { for i in 0..<out { for j in 0..<inFeatures {
            truncated[i * inFeatures + j] += Double(reference.u[i * p + t]) * Double(reference.s[t])
                * Double(reference.vt[t * inFeatures + j])
        } } }
        let merged = RandomModules.dense(result)
        #expect(RandomModules.relativeError(merged, truncated) < 1e-4)

        // Error equals the Eckart–Young floor (dense, independent) and the reported figures agree with it.
        let floor = TruncatedSVD.tailFraction(reference.s, rank: expectedRank)
        let error = RandomModules.relativeError(merged, target)
        #expect(abs(error - floor) <= 1e-4 * floor + 1e-6)
        #expect(abs(result.stats.relativeError - floor) <= 1e-4 * floor + 1e-6)
        #expect(abs((result.stats.svdFloor ?? -1) - floor) <= 1e-4 * floor + 1e-6)
    }

    /// Σr = 8 ≪ 2000: the method only touches [2000, 8]-sized factors (by design; a dense T would be 4M floats).
    @Test func wideModuleWithSmallTotalRankIsExactAtFullRank() throws {
        let input = RandomModules.input(out: 2000, in: 2000, ranks: [4, 4], seed: 5)
        let result = try ModuleMerger.merge(input, spec: MergeSpec(method: .svd, rank: 16), seed: 1)
        #expect(result.rank == 8)
        #expect(result.stats.relativeError < 1e-5)
        #expect(result.stats.svdFloor == 0)
    }

    @Test func zeroTargetGivesOneZeroUnit() throws {
        let input = RandomModules.input(out: 6, in: 5, ranks: [2, 3], coefficients: [0, 0], seed: 2)
        let result = try ModuleMerger.merge(input, spec: MergeSpec(method: .svd, rank: 2), seed: 1)
        #expect(result.rank >= 1)
        #expect(result.b.allSatisfy { $0 == 0 } || result.a.allSatisfy { $0 == 0 })
        #expect(result.stats.relativeError == 0)
    }
}
