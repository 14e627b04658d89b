import Testing
@testable import Kernels

@Suite struct FactoredProductTests {
    /// Shapes (rows, inner, cols, k): tall and wide, inner above rows or cols, k above the rank.
    static let shapes = [(12, 4, 9, 2), (9, 6, 15, 3), (5, 8, 7, 4), (20, 10, 6, 10), (6, 3, 6, 5)]

    @Test(arguments: shapes)
    func truncatedSVDEqualsDenseTruncatedSVD(rows: Int, inner: Int, cols: Int, k: Int) throws {
        let x = TestData.gaussian(rows * inner, seed: UInt64(rows * 31 + inner))
        let y = TestData.gaussian(inner * cols, seed: UInt64(cols * 17 + k))
        let dense = TestData.denseProduct(x, y, m: rows, k: inner, n: cols)
        let svd = try FactoredProduct(left: x, right: y, rows: rows, inner: inner, cols: cols).truncatedSVD(rank: k)

        let reference = try LinearAlgebra.svd(dense.map { Float($0) }, rows: rows, cols: cols)
        let p = min(rows, cols, inner)
        #expect(svd.rank == min(k, p))
        for i in 0..<svd.rank { #expect(abs(svd.singularValues[i] - reference.s[i]) <= 1e-4 * reference.s[0]) }

        // B'A' equals T_k (dense truncated SVD built from the reference factors, in Double).
        let kept = svd.rank
        var truncated = [Double](repeating: 0, count: rows * cols)
        let q = min(rows, cols)
        for t in 0..<kept { for i in 0..<rows { for j in 0..<cols {
            truncated[i * cols + j] += Double(reference.u[i * q + t]) * Double(reference.s[t]) * Double(reference.vt[t * cols + j])
        } } }
        let approx = TestData.denseProduct(svd.left, svd.right, m: rows, k: kept, n: cols)
        #expect(TestData.relativeDifference(approx, truncated) < 1e-4)

        // Error equals the Eckart–Young floor.
        let error = TestData.relativeDifference(approx, dense)
        let floor = TruncatedSVD.tailFraction(reference.s, rank: kept)
        #expect(abs(error - floor) <= 1e-4 * floor + 1e-6)

        // Balanced factors: column t of B' and row t of A' have equal norms (√σ_t each).
        for t in 0..<kept {
            var nb = 0.0, na = 0.0
            for i in 0..<rows { nb += Double(svd.left[i * kept + t] * svd.left[i * kept + t]) }
            for j in 0..<cols { na += Double(svd.right[t * cols + j] * svd.right[t * cols + j]) }
            #expect(abs(nb - na) <= 1e-4 * max(nb, 1e-6))
        }
    }

    /// out = in = 2000 with inner 8: only O((out + in)·inner) memory is touched (the dense product would be 4M).
    @Test func wideModuleWithSmallInnerRank() throws {
        let (rows, inner, cols) = (2000, 8, 2000)
        let x = TestData.gaussian(rows * inner, seed: 1), y = TestData.gaussian(inner * cols, seed: 2)
        let svd = try FactoredProduct(left: x, right: y, rows: rows, inner: inner, cols: cols).truncatedSVD(rank: 8)
        #expect(svd.rank == 8)
        #expect(svd.left.count == rows * 8 && svd.right.count == 8 * cols)
        // Exact at full rank: check a few entries against the dense product.
        for (i, j) in [(0, 0), (1999, 3), (512, 1999), (77, 1234)] {
            var expected = 0.0, got = 0.0
            for t in 0..<inner { expected += Double(x[i * inner + t]) * Double(y[t * cols + j]) }
            for t in 0..<8 { got += Double(svd.left[i * 8 + t]) * Double(svd.right[t * cols + j]) }
            #expect(abs(got - expected) < 1e-3)
        }
    }

    @Test func singularValuesAreSignStableAcrossRuns() throws {
        let x = TestData.gaussian(30 * 5, seed: 8), y = TestData.gaussian(5 * 20, seed: 9)
        let a = try FactoredProduct(left: x, right: y, rows: 30, inner: 5, cols: 20).truncatedSVD(rank: 3)
        let b = try FactoredProduct(left: x, right: y, rows: 30, inner: 5, cols: 20).truncatedSVD(rank: 3)
        #expect(a.left.map(\.bitPattern) == b.left.map(\.bitPattern))
        for t in 0..<3 {
            let column = (0..<30).map { a.left[$0 * 3 + t] }
            let largest = column.max { abs($0) < abs($1) } ?? 0
            #expect(largest > 0)
        }
    }
}

extension FactoredProductTests {
    /// Degenerate spectra: all-zero product, and all singular values tied (orthonormal factors).
    @Test(arguments: [true, false])
    func degenerateSpectraAreHandled(zero: Bool) throws {
        let (rows, inner, cols, k) = (9, 4, 7, 2)
        var x = [Float](repeating: 0, count: rows * inner), y = [Float](repeating: 0, count: inner * cols)
        if !zero { for t in 0..<inner { x[t * inner + t] = 1; y[t * cols + t] = 1 } }
        let svd = try FactoredProduct(left: x, right: y, rows: rows, inner: inner, cols: cols).truncatedSVD(rank: k)
        #expect(svd.rank == k)
        let approx = TestData.denseProduct(svd.left, svd.right, m: rows, k: k, n: cols)
        let dense = TestData.denseProduct(x, y, m: rows, k: inner, n: cols)
        if zero {
            #expect(approx.allSatisfy { $0 == 0 })
        } else {
            #expect(abs(TestData.relativeDifference(approx, dense) - (2.0 / 4.0).squareRoot()) < 1e-5)
            #expect(svd.singularValues.allSatisfy { abs($0 - 1) < 1e-5 })
        }
    }
}
