import Testing
@testable import Kernels

@Suite struct LowRankErrorTests {
    @Test(arguments: [(10, 4, 8, 2), (6, 9, 5, 3), (15, 3, 20, 6)])
    func relativeErrorMatchesDenseComputation(rows: Int, targetRank: Int, cols: Int, rank: Int) throws {
        let tb = TestData.gaussian(rows * targetRank, seed: 1), ta = TestData.gaussian(targetRank * cols, seed: 2)
        let b = TestData.gaussian(rows * rank, seed: 3), a = TestData.gaussian(rank * cols, seed: 4)
        let comparison = try LowRankError.compare(targetLeftColumns: FactoredProduct.transposed(tb, rows: rows, cols: targetRank), targetRight: ta, targetRank: targetRank,
                                                  approximationLeft: b, approximationRight: a, rank: rank,
                                                  rows: rows, cols: cols, wantSpectrum: true)
        let target = TestData.denseProduct(tb, ta, m: rows, k: targetRank, n: cols)
        let approx = TestData.denseProduct(b, a, m: rows, k: rank, n: cols)
        let expected = TestData.relativeDifference(approx, target)
        #expect(abs(comparison.relativeError - expected) <= 1e-5 * expected)
        #expect(abs(comparison.targetNorm - TestData.frobenius(target)) <= 1e-5 * comparison.targetNorm)
        let reference = try LinearAlgebra.svd(target.map { Float($0) }, rows: rows, cols: cols)
        let spectrum = try #require(comparison.targetSingularValues)
        for i in 0..<min(spectrum.count, reference.s.count) {
            #expect(abs(spectrum[i] - reference.s[i]) <= 1e-4 * reference.s[0])
        }
    }

    /// An exact result must read as exact (~1e-7), not as Float cancellation noise (~1e-3).
    @Test func exactApproximationReportsNearZero() throws {
        let (rows, r, cols) = (300, 12, 200)
        let tb = TestData.gaussian(rows * r, seed: 5), ta = TestData.gaussian(r * cols, seed: 6)
        // Same product, factors rescaled: B·2 and A/2.
        let comparison = try LowRankError.compare(targetLeftColumns: FactoredProduct.transposed(tb, rows: rows, cols: r), targetRight: ta, targetRank: r,
                                                  approximationLeft: tb.map { $0 * 2 }, approximationRight: ta.map { $0 / 2 },
                                                  rank: r, rows: rows, cols: cols, wantSpectrum: false)
        #expect(comparison.relativeError < 1e-6)
        #expect(comparison.targetSingularValues == nil)
    }
}
