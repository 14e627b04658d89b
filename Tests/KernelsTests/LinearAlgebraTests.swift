import Testing
import Foundation
@testable import Kernels

@Suite struct LinearAlgebraTests {
    /// Deterministic test data without a random generator dependency.
    static func sample(_ count: Int, seed: Int) -> [Float] {
        (0..<count).map { i in
            let x = Double(i * 7 + seed * 13) * 0.731
            let y = Double(i * i + seed) * 0.117
            return Float(sin(x) + cos(y))
        }
    }

    @Test(arguments: [(5, 3, 4), (1, 7, 2), (8, 8, 8), (3, 1, 5)])
    func gemmMatchesNaiveProduct(m: Int, n: Int, k: Int) {
        let a = Self.sample(m * k, seed: 1), b = Self.sample(k * n, seed: 2)
        let c = BLAS.matmul(a, b, m: m, n: n, k: k)
        for i in 0..<m { for j in 0..<n {
            var expected = 0.0
            for t in 0..<k { expected += Double(a[i * k + t]) * Double(b[t * n + j]) }
            #expect(abs(Double(c[i * n + j]) - expected) < 1e-4)
        } }
    }

    @Test func gemmTransposedOperands() {
        let (m, n, k) = (4, 3, 5)
        let at = Self.sample(k * m, seed: 3), bt = Self.sample(n * k, seed: 4)
        let c = BLAS.matmul(at, bt, m: m, n: n, k: k, transA: .transpose, transB: .transpose)
        for i in 0..<m { for j in 0..<n {
            var expected = 0.0
            for t in 0..<k { expected += Double(at[t * m + i]) * Double(bt[j * k + t]) }
            #expect(abs(Double(c[i * n + j]) - expected) < 1e-4)
        } }
    }

    /// `BLAS.multiply` on column windows of wider arrays (offset + row stride, as FactorRefit reads [x_B ; x_A]
    /// rows) gives the bits of `matmul` on packed copies of the windows, for every transpose combination.
    @Test(arguments: [(BLAS.Transpose.none, BLAS.Transpose.none), (.transpose, .none), (.none, .transpose),
                      (.transpose, .transpose)])
    func multiplyOnWindowsMatchesPackedOperands(transA: BLAS.Transpose, transB: BLAS.Transpose) {
        let (m, n, k) = (5, 3, 4)
        // Stored operand shapes: [m, k] or [k, m] for A, [k, n] or [n, k] for B, inside arrays 3 columns wider.
        let (aRows, aCols) = transA == .none ? (m, k) : (k, m)
        let (bRows, bCols) = transB == .none ? (k, n) : (n, k)
        let (aWide, bWide) = (aCols + 3, bCols + 3)
        let aStore = Self.sample(aRows * aWide, seed: 6), bStore = Self.sample(bRows * bWide, seed: 7)
        func window(_ store: [Float], rows: Int, cols: Int, wide: Int, offset: Int) -> [Float] {
            (0..<rows).flatMap { r in store[(r * wide + offset)..<(r * wide + offset + cols)] }
        }
        let expected = BLAS.matmul(window(aStore, rows: aRows, cols: aCols, wide: aWide, offset: 2),
                                   window(bStore, rows: bRows, cols: bCols, wide: bWide, offset: 1),
                                   m: m, n: n, k: k, transA: transA, transB: transB)
        var c = [Float](repeating: .nan, count: m * n)
        BLAS.multiply(aStore, bStore, into: &c, m: m, n: n, k: k, transA: transA, aOffset: 2, lda: aWide,
                      transB: transB, bOffset: 1, ldb: bWide)
        #expect(c.map(\.bitPattern) == expected.map(\.bitPattern))
        // alpha and beta: c ← c − A·B is `subtractProduct`'s zero here.
        BLAS.multiply(aStore, bStore, into: &c, m: m, n: n, k: k, transA: transA, aOffset: 2, lda: aWide,
                      transB: transB, bOffset: 1, ldb: bWide, alpha: -1, beta: 1)
        #expect(c.allSatisfy { $0 == 0 })
    }

    @Test(arguments: [(6, 3), (4, 4), (10, 1)])
    func thinQRReconstructsAndIsOrthonormal(rows: Int, cols: Int) throws {
        let a = Self.sample(rows * cols, seed: 5)
        let (q, r, p) = try LinearAlgebra.thinQR(a, rows: rows, cols: cols)
        let qr = BLAS.matmul(q, r, m: rows, n: cols, k: p)
        for i in 0..<(rows * cols) { #expect(abs(qr[i] - a[i]) < 1e-4) }
        let qtq = BLAS.matmul(q, q, m: p, n: p, k: rows, transA: .transpose)
        for i in 0..<p { for j in 0..<p { #expect(abs(qtq[i * p + j] - (i == j ? 1 : 0)) < 1e-5) } }
    }

    @Test(arguments: [(6, 4), (3, 7), (5, 5)])
    func svdReconstructsWithDescendingValues(rows: Int, cols: Int) throws {
        let a = Self.sample(rows * cols, seed: 6)
        let (u, s, vt) = try LinearAlgebra.svd(a, rows: rows, cols: cols)
        let p = min(rows, cols)
        var us = u
        for i in 0..<rows { for j in 0..<p { us[i * p + j] *= s[j] } }
        let back = BLAS.matmul(us, vt, m: rows, n: cols, k: p)
        for i in 0..<(rows * cols) { #expect(abs(back[i] - a[i]) < 1e-4) }
        for j in 1..<p { #expect(s[j - 1] >= s[j]) }
    }
}

extension LinearAlgebraTests {
    @Test func positiveDefiniteSystemIsSolvedExactly() throws {
        let g: [Double] = [4, 1, 1, 3], h: [Double] = [1, 2]
        let beta = try LinearAlgebra.solveSymmetricPositiveSemidefinite(g, h, n: 2)
        #expect(abs(4 * beta[0] + beta[1] - 1) < 1e-12 && abs(beta[0] + 3 * beta[1] - 2) < 1e-12)
    }

    /// Singular G (two identical rank-one matrices): the minimum-norm least-squares solution splits the weight.
    @Test func singularSystemFallsBackToMinimumNormLeastSquares() throws {
        let beta = try LinearAlgebra.solveSymmetricPositiveSemidefinite([1, 1, 1, 1], [2, 2], n: 2)
        #expect(abs(beta[0] - 1) < 1e-9 && abs(beta[1] - 1) < 1e-9)
    }
}
