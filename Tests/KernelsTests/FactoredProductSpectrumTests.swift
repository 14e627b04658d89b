import Testing
@testable import Kernels

/// The top-k route of `truncatedSVD` (Gram + partial symmetric eigen-solve in Double) on the spectra where it could
/// go wrong: rank-deficient cores (duplicate adapters, k above the rank) and near-tied σ_k / σ_{k+1}.
@Suite struct FactoredProductSpectrumTests {
    /// X [rows, inner] of rank `rank` < inner (inner columns are mixes of `rank` base columns, like duplicated
    /// adapters), times a full-rank Y: the core is rank-deficient and k exceeds its rank.
    @Test(arguments: [(40, 8, 30, 3, 5), (25, 12, 50, 4, 10), (60, 6, 20, 1, 6)])
    func rankDeficientCoreIsExactAndCutsNullDirections(rows: Int, inner: Int, cols: Int, rank: Int, k: Int) throws {
        let base = TestData.gaussian(rows * rank, seed: UInt64(rows + rank))
        let mix = TestData.gaussian(rank * inner, seed: UInt64(inner * 7 + k))
        let x = TestData.denseProduct(base, mix, m: rows, k: rank, n: inner).map { Float($0) }
        let y = TestData.gaussian(inner * cols, seed: UInt64(cols * 3 + 1))
        let svd = try FactoredProduct(left: x, right: y, rows: rows, inner: inner, cols: cols).truncatedSVD(rank: k)

        #expect(svd.rank == min(k, inner, rows, cols))
        let reference = try LinearAlgebra.svd(TestData.denseProduct(x, y, m: rows, k: inner, n: cols).map { Float($0) },
                                              rows: rows, cols: cols)
        for i in 0..<rank { #expect(abs(svd.singularValues[i] - reference.s[i]) <= 1e-4 * reference.s[0]) }
        // Directions beyond the rank are cut: σ = 0 and zero factor columns/rows, never NaN.
        for t in rank..<svd.rank {
            #expect(svd.singularValues[t] == 0)
            #expect((0..<rows).allSatisfy { svd.left[$0 * svd.rank + t] == 0 })
            #expect((0..<cols).allSatisfy { svd.right[t * cols + $0] == 0 })
        }
        #expect(svd.left.allSatisfy(\.isFinite) && svd.right.allSatisfy(\.isFinite))
        let dense = TestData.denseProduct(x, y, m: rows, k: inner, n: cols)
        let approx = TestData.denseProduct(svd.left, svd.right, m: rows, k: svd.rank, n: cols)
        #expect(TestData.relativeDifference(approx, dense) < 1e-5)
        #expect(svd.floor < 1e-5)
        #expect(abs(svd.frobeniusNorm - TestData.frobenius(dense)) <= 1e-5 * svd.frobeniusNorm)
    }

    /// T = U diag(s) Vᵀ with s_{k+1} = s_k (1 − gap): the top-k subspace is (nearly) ambiguous, but the error must
    /// still equal the Eckart–Young floor and the reported floor must match the dense one.
    @Test(arguments: [1e-2, 1e-4, 1e-6, 0])
    func nearTiedSingularValuesGiveTheFloor(gap: Double) throws {
        let (rows, inner, cols, k) = (48, 10, 36, 4)
        let left = try LinearAlgebra.svd(TestData.gaussian(rows * inner, seed: 21), rows: rows, cols: inner).u
        let right = try LinearAlgebra.svd(TestData.gaussian(inner * cols, seed: 22), rows: inner, cols: cols).vt
        var spectrum = [Double](repeating: 0, count: inner)
        for t in 0..<inner { spectrum[t] = 3.0 - 0.2 * Double(t) }
        spectrum[k] = spectrum[k - 1] * (1 - gap)
        // X = U diag(s) [rows, inner], Y = Vᵀ [inner, cols] (rows of the reference's vt are orthonormal).
        var x = [Float](repeating: 0, count: rows * inner)
        for i in 0..<rows { for t in 0..<inner { x[i * inner + t] = left[i * inner + t] * Float(spectrum[t]) } }
        let y = right
        let svd = try FactoredProduct(left: x, right: y, rows: rows, inner: inner, cols: cols).truncatedSVD(rank: k)

        let dense = TestData.denseProduct(x, y, m: rows, k: inner, n: cols)
        let reference = try LinearAlgebra.svd(dense.map { Float($0) }, rows: rows, cols: cols)
        let floor = TruncatedSVD.tailFraction(reference.s, rank: k)
        let approx = TestData.denseProduct(svd.left, svd.right, m: rows, k: svd.rank, n: cols)
        #expect(abs(TestData.relativeDifference(approx, dense) - floor) <= 1e-4 * floor)
        #expect(abs(svd.floor - floor) <= 1e-4 * floor)
        for i in 0..<k { #expect(abs(svd.singularValues[i] - reference.s[i]) <= 1e-4 * reference.s[0]) }
        // Balanced: B' columns are orthogonal with squared norms σ_t.
        for s in 0..<k { for t in s..<k {
            var dot = 0.0
            for i in 0..<rows { dot += Double(svd.left[i * k + s]) * Double(svd.left[i * k + t]) }
            let expected = s == t ? Double(svd.singularValues[t]) : 0
            #expect(abs(dot - expected) <= 1e-4 * Double(svd.singularValues[0]))
        } }
    }

    /// The floor reported with the truncation equals the dense Eckart–Young floor on random products.
    @Test(arguments: [(30, 12, 25, 3), (12, 20, 40, 5), (50, 9, 9, 9)])
    func reportedFloorMatchesDenseFloor(rows: Int, inner: Int, cols: Int, k: Int) throws {
        let x = TestData.gaussian(rows * inner, seed: UInt64(rows * 5 + k))
        let y = TestData.gaussian(inner * cols, seed: UInt64(cols * 11 + inner))
        let svd = try FactoredProduct(left: x, right: y, rows: rows, inner: inner, cols: cols).truncatedSVD(rank: k)
        let dense = TestData.denseProduct(x, y, m: rows, k: inner, n: cols)
        let reference = try LinearAlgebra.svd(dense.map { Float($0) }, rows: rows, cols: cols)
        let floor = TruncatedSVD.tailFraction(reference.s, rank: svd.rank)
        #expect(abs(svd.floor - floor) <= 1e-4 * floor + 1e-6)
        #expect(abs(svd.frobeniusNorm - TestData.frobenius(dense)) <= 1e-5 * svd.frobeniusNorm)
    }

    /// LAPACK runs without LAPACKE's NaN scan (`_work` entry points): a non-finite factor must still end in an error,
    /// not in NaN factors.
    @Test(arguments: [(Float.nan, true), (Float.infinity, true), (-Float.infinity, false), (Float.nan, false)])
    func nonFiniteFactorsAreAnError(value: Float, inLeft: Bool) throws {
        let (rows, inner, cols) = (30, 4, 20)
        var x = TestData.gaussian(rows * inner, seed: 5), y = TestData.gaussian(inner * cols, seed: 6)
        if inLeft { x[17] = value } else { y[33] = value }
        #expect(throws: KernelShapeError.self) {
            _ = try FactoredProduct(left: x, right: y, rows: rows, inner: inner, cols: cols).truncatedSVD(rank: 2)
        }
    }
}
