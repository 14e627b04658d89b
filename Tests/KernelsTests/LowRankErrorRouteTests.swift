import Testing
@testable import Kernels

/// The dense-block route (large pools) must give the same error and norm as the factored route and as a dense
/// computation, including exact results, blocks that do not divide the rows, and targets with more ranks than
/// rows or columns.
@Suite struct LowRankErrorRouteTests {
    @Test(arguments: [(10, 4, 8, 2), (6, 9, 5, 3), (2000, 3, 7, 2), (9, 40, 11, 5)])
    func denseBlocksMatchDenseComputation(rows: Int, targetRank: Int, cols: Int, rank: Int) throws {
        let tb = TestData.gaussian(rows * targetRank, seed: 11), ta = TestData.gaussian(targetRank * cols, seed: 12)
        let b = TestData.gaussian(rows * rank, seed: 13), a = TestData.gaussian(rank * cols, seed: 14)
        let target = TestData.denseProduct(tb, ta, m: rows, k: targetRank, n: cols)
        let expected = TestData.relativeDifference(TestData.denseProduct(b, a, m: rows, k: rank, n: cols), target)
        for route in [LowRankError.Route.denseBlocks, .factored] {
            let comparison = try LowRankError.compare(
                targetLeftColumns: FactoredProduct.transposed(tb, rows: rows, cols: targetRank), targetRight: ta,
                targetRank: targetRank, approximationLeft: b, approximationRight: a, rank: rank,
                rows: rows, cols: cols, wantSpectrum: false, route: route)
            #expect(abs(comparison.relativeError - expected) <= 1e-5 * expected, "\(route)")
            #expect(abs(comparison.targetNorm - TestData.frobenius(target)) <= 1e-5 * comparison.targetNorm, "\(route)")
        }
    }

    /// Rows beyond one dense block (16 MB / cols) with an exact approximation: the difference is formed entry by
    /// entry, so an exact result reads at Float rounding, not at the cancellation level of ‖T‖² − ‖B'A'‖².
    @Test func exactResultReadsNearZeroAcrossBlocks() throws {
        let (cols, r) = (4, 3)
        let rows = LowRankError.denseBlockRows(cols: cols) + 17
        let tb = TestData.gaussian(rows * r, seed: 15), ta = TestData.gaussian(r * cols, seed: 16)
        let comparison = try LowRankError.compare(
            targetLeftColumns: FactoredProduct.transposed(tb, rows: rows, cols: r), targetRight: ta, targetRank: r,
            approximationLeft: tb.map { $0 * 2 }, approximationRight: ta.map { $0 / 2 }, rank: r,
            rows: rows, cols: cols, wantSpectrum: false, route: .denseBlocks)
        #expect(comparison.relativeError < 1e-6)
        #expect(comparison.targetNorm > 0)
    }

    /// The automatic choice keeps the spectrum (SVD floor) while it is affordable, and switches to dense blocks
    /// only where they are cheaper.
    @Test func automaticRouteChoice() {
        #expect(!LowRankError.prefersDenseBlocks(rows: 4096, cols: 4096, inner: 1040))
        #expect(LowRankError.prefersDenseBlocks(rows: 4096, cols: 4096, inner: 4112))
        #expect(LowRankError.prefersDenseBlocks(rows: 64, cols: 64, inner: 40))
        #expect(!LowRankError.prefersDenseBlocks(rows: 14336, cols: 4096, inner: 1040))
    }
}
