import Foundation
import Testing
@testable import Kernels

/// `FactorRefit` against the dense alternating least-squares step: B' = T A'ᵀ (A' A'ᵀ)⁻¹ then A' = (B'ᵀB')⁻¹ B'ᵀ T,
/// with T = Σ x_B x_Aᵀ formed densely and the normal equations solved by the test's own Gaussian elimination.
@Suite struct FactorRefitTests {
    /// Dense T = Σ_i x_B,i x_A,iᵀ (Double, row-major [out, in]).
    static func target(_ units: [Float], count: Int, out: Int, in inFeatures: Int) -> [Double] {
        let d = out + inFeatures
        var t = [Double](repeating: 0, count: out * inFeatures)
        for i in 0..<count { for r in 0..<out { for c in 0..<inFeatures {
            t[r * inFeatures + c] += Double(units[i * d + r]) * Double(units[i * d + out + c])
        } } }
        return t
    }

    /// x with G x = y for a small dense G (Gaussian elimination, partial pivoting).
    static func solve(_ g: [Double], _ y: [Double], n: Int) -> [Double] {
        var m = g, x = y
        for col in 0..<n {
            let pivot = (col..<n).max { abs(m[$0 * n + col]) < abs(m[$1 * n + col]) } ?? col
            if pivot != col { for j in 0..<n { m.swapAt(col * n + j, pivot * n + j) }; x.swapAt(col, pivot) }
            for row in (col + 1)..<n {
                let f = m[row * n + col] / m[col * n + col]
                for j in col..<n { m[row * n + j] -= f * m[col * n + j] }
                x[row] -= f * x[col]
            }
        }
        for row in stride(from: n - 1, through: 0, by: -1) {
            x[row] = ((row + 1)..<n).reduce(x[row]) { $0 - m[row * n + $1] * x[$1] } / m[row * n + row]
        }
        return x
    }

    /// One dense ALS round from (B [out, k], A [k, in]); returns the product B'A' [out, in].
    static func denseRound(t: [Double], b: [Float], a: [Float], out: Int, in inFeatures: Int, k: Int) -> [Double] {
        let a64 = a.map(Double.init)
        // B' rows: solve (A Aᵀ) x = (T Aᵀ) row.
        let gA = (0..<(k * k)).map { i in (0..<inFeatures).reduce(0.0) { $0 + a64[(i / k) * inFeatures + $1] * a64[(i % k) * inFeatures + $1] } }
        var newB = [Double](repeating: 0, count: out * k)
        for r in 0..<out {
            let rhs = (0..<k).map { s in (0..<inFeatures).reduce(0.0) { $0 + t[r * inFeatures + $1] * a64[s * inFeatures + $1] } }
            let x = solve(gA, rhs, n: k)
            for s in 0..<k { newB[r * k + s] = x[s] }
        }
        // A' columns: solve (B'ᵀB') x = (B'ᵀ T) column.
        let gB = (0..<(k * k)).map { i in (0..<out).reduce(0.0) { $0 + newB[$1 * k + i / k] * newB[$1 * k + i % k] } }
        var newA = [Double](repeating: 0, count: k * inFeatures)
        for c in 0..<inFeatures {
            let rhs = (0..<k).map { s in (0..<out).reduce(0.0) { $0 + newB[$1 * k + s] * t[$1 * inFeatures + c] } }
            let x = solve(gB, rhs, n: k)
            for s in 0..<k { newA[s * inFeatures + c] = x[s] }
        }
        return (0..<(out * inFeatures)).map { i in
            (0..<k).reduce(0.0) { $0 + newB[(i / inFeatures) * k + $1] * newA[$1 * inFeatures + i % inFeatures] }
        }
    }

    static func product(_ b: [Float], _ a: [Float], out: Int, in inFeatures: Int, k: Int) -> [Double] {
        (0..<(out * inFeatures)).map { i in
            (0..<k).reduce(0.0) { $0 + Double(b[(i / inFeatures) * k + $1]) * Double(a[$1 * inFeatures + i % inFeatures]) }
        }
    }

    static func error(_ t: [Double], _ m: [Double]) -> Double {
        TestData.frobenius(zip(t, m).map { $0 - $1 }) / TestData.frobenius(t)
    }

    @Test(arguments: [UInt64(1), 2, 3, 4])
    func oneRoundEqualsTheDenseLeastSquaresStep(seed: UInt64) throws {
        let (count, out, inFeatures, k) = (11, 9, 7, 3)
        let units = TestData.gaussian(count * (out + inFeatures), seed: seed)
        var b = TestData.gaussian(out * k, seed: seed + 100), a = TestData.gaussian(k * inFeatures, seed: seed + 200)
        let t = Self.target(units, count: count, out: out, in: inFeatures)
        let expected = Self.denseRound(t: t, b: b, a: a, out: out, in: inFeatures, k: k)
        try FactorRefit.refit(units: units, count: count, outFeatures: out, inFeatures: inFeatures, b: &b, a: &a, k: k,
                              rounds: 1)
        #expect(Self.error(expected, Self.product(b, a, out: out, in: inFeatures, k: k)) < 1e-4)
        // Balanced ranks: ‖b_t‖ = ‖a_t‖.
        for s in 0..<k {
            let nb = (0..<out).reduce(0.0) { $0 + Double(b[$1 * k + s] * b[$1 * k + s]) }.squareRoot()
            let na = (0..<inFeatures).reduce(0.0) { $0 + Double(a[s * inFeatures + $1] * a[s * inFeatures + $1]) }.squareRoot()
            #expect(abs(nb - na) <= 1e-4 * max(nb, na))
        }
    }

    /// Every half-step is a least-squares minimiser, so more rounds never raise the error; an exact start stays exact.
    @Test(arguments: [UInt64(5), 6, 7])
    func roundsNeverRaiseTheErrorAndKeepAnExactFit(seed: UInt64) throws {
        let (count, out, inFeatures, k) = (14, 12, 10, 4)
        let units = TestData.gaussian(count * (out + inFeatures), seed: seed)
        let t = Self.target(units, count: count, out: out, in: inFeatures)
        var b = TestData.gaussian(out * k, seed: seed + 100), a = TestData.gaussian(k * inFeatures, seed: seed + 200)
        var last = Self.error(t, Self.product(b, a, out: out, in: inFeatures, k: k))
        for _ in 0..<4 {
            try FactorRefit.refit(units: units, count: count, outFeatures: out, inFeatures: inFeatures, b: &b, a: &a,
                                  k: k, rounds: 1)
            let now = Self.error(t, Self.product(b, a, out: out, in: inFeatures, k: k))
            #expect(now <= last * (1 + 1e-5) + 1e-6)
            last = now
        }
        // T of rank 2 (two units), fitted exactly at k = 2 from its own units: the refit keeps it exact.
        let two = Array(units[0..<(2 * (out + inFeatures))])
        let t2 = Self.target(two, count: 2, out: out, in: inFeatures)
        var b2 = [Float](repeating: 0, count: out * 2), a2 = [Float](repeating: 0, count: 2 * inFeatures)
        for s in 0..<2 {
            for r in 0..<out { b2[r * 2 + s] = two[s * (out + inFeatures) + r] }
            for c in 0..<inFeatures { a2[s * inFeatures + c] = two[s * (out + inFeatures) + out + c] }
        }
        try FactorRefit.refit(units: two, count: 2, outFeatures: out, inFeatures: inFeatures, b: &b2, a: &a2, k: 2,
                              rounds: 2)
        #expect(Self.error(t2, Self.product(b2, a2, out: out, in: inFeatures, k: 2)) < 1e-5)
    }

    /// A zero rank (a rank-deficient A') stays finite: the minimum-norm solution.
    @Test func zeroRankStaysFinite() throws {
        let (count, out, inFeatures, k) = (6, 5, 4, 3)
        let units = TestData.gaussian(count * (out + inFeatures), seed: 9)
        var b = TestData.gaussian(out * k, seed: 10), a = TestData.gaussian(k * inFeatures, seed: 11)
        for c in 0..<inFeatures { a[2 * inFeatures + c] = 0 }
        try FactorRefit.refit(units: units, count: count, outFeatures: out, inFeatures: inFeatures, b: &b, a: &a, k: k,
                              rounds: 1)
        #expect(b.allSatisfy(\.isFinite) && a.allSatisfy(\.isFinite))
    }

    /// Two ranks along (nearly) one input direction make A'A'ᵀ nearly singular: the truncated pseudo-inverse keeps
    /// the refit from amplifying rounding, so the error still does not rise.
    @Test(arguments: [UInt64(12), 13, 14])
    func nearlyDependentRanksDoNotAmplifyRounding(seed: UInt64) throws {
        let (count, out, inFeatures, k) = (12, 30, 24, 4)
        let units = TestData.gaussian(count * (out + inFeatures), seed: seed)
        let t = Self.target(units, count: count, out: out, in: inFeatures)
        var b = TestData.gaussian(out * k, seed: seed + 100), a = TestData.gaussian(k * inFeatures, seed: seed + 200)
        let wobble = TestData.gaussian(inFeatures, seed: seed + 300, scale: 1e-6)
        for c in 0..<inFeatures { a[inFeatures + c] = a[c] + wobble[c] }  // rank 1 ≈ rank 0
        let before = Self.error(t, Self.product(b, a, out: out, in: inFeatures, k: k))
        try FactorRefit.refit(units: units, count: count, outFeatures: out, inFeatures: inFeatures, b: &b, a: &a, k: k,
                              rounds: 1)
        #expect(b.allSatisfy(\.isFinite) && a.allSatisfy(\.isFinite))
        #expect(Self.error(t, Self.product(b, a, out: out, in: inFeatures, k: k)) <= before * (1 + 1e-4))
        #expect(b.map { abs($0) }.max() ?? 0 < 1e3)
    }

    /// Both Grams are Double sums in index order, bit for bit: the refit's bytes depend on that order.
    @Test func gramsAreIndexOrderSums() {
        let (rows, cols) = (3, 7)
        let m = (0..<(rows * cols)).map { Float(sin(Double($0) * 1.37)) * 3 }
        func ordered(_ size: Int, _ length: Int, _ element: (Int, Int) -> Float) -> [UInt64] {
            var g = [UInt64](repeating: 0, count: size * size)
            for i in 0..<size { for j in 0..<size {
                var s = 0.0
                for t in 0..<length { s += Double(element(i, t)) * Double(element(j, t)) }
                g[i * size + j] = s.bitPattern
            } }
            return g
        }
        #expect(FactorRefit.gram(m, rows: rows, cols: cols, of: .rows).map(\.bitPattern)
                == ordered(rows, cols) { m[$0 * cols + $1] })
        #expect(FactorRefit.gram(m, rows: rows, cols: cols, of: .columns).map(\.bitPattern)
                == ordered(cols, rows) { m[$1 * cols + $0] })
    }

    /// The rounds run in one workspace: once the first round has grown its buffers, no later round moves one (no
    /// per-round allocation), and the result has the bits of the half-steps called one at a time with fresh storage,
    /// as a split module's rounds call them (`FactorRefitRounds`). Shapes with out > in and out < in (the right-hand
    /// sides alternate between out·k and in·k values).
    @Test(arguments: [(UInt64(21), 9, 7), (22, 6, 13)])
    func roundsReuseOneWorkspaceAndKeepTheHalfStepsBits(seed: UInt64, out: Int, inFeatures: Int) throws {
        let (count, k) = (15, 3)
        let units = TestData.gaussian(count * (out + inFeatures), seed: seed)
        let b0 = TestData.gaussian(out * k, seed: seed + 100), a0 = TestData.gaussian(k * inFeatures, seed: seed + 200)
        var (b, a) = (b0, a0)
        var work = FactorRefit.Workspace()
        try FactorRefit.refit(units: units, count: count, outFeatures: out, inFeatures: inFeatures, b: &b, a: &a, k: k,
                              rounds: 1, workspace: &work)
        func storage(_ work: inout FactorRefit.Workspace) -> [UnsafeRawPointer?] {
            func address<T>(_ x: [T]) -> UnsafeRawPointer? { x.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) } }
            return [address(work.products), address(work.left), address(work.right), address(work.gram),
                    address(work.rightHandSides), address(work.solverScratch)]
        }
        let grown = storage(&work)
        #expect(grown.allSatisfy { $0 != nil })
        try FactorRefit.refit(units: units, count: count, outFeatures: out, inFeatures: inFeatures, b: &b, a: &a, k: k,
                              rounds: 3, workspace: &work)
        #expect(storage(&work) == grown)
        // Reference: 1 + 3 rounds of the single half-steps (each balanced at its end, as the two calls above).
        var (rb, ra) = (b0, a0)
        for rounds in [1, 3] {
            for _ in 0..<rounds {
                let c = FactorRefit.leftProduct(units: units, count: count, outFeatures: out, inFeatures: inFeatures,
                                                a: ra, k: k)
                rb = try FactorRefit.solveB(c, a: ra, outFeatures: out, inFeatures: inFeatures, k: k)
                let e = FactorRefit.rightProduct(units: units, count: count, outFeatures: out, inFeatures: inFeatures,
                                                 b: rb, k: k)
                ra = try FactorRefit.solveA(e, b: rb, outFeatures: out, inFeatures: inFeatures, k: k)
            }
            FactorRefit.balance(b: &rb, a: &ra, out: out, inFeatures: inFeatures, k: k)
        }
        #expect(b.map(\.bitPattern) == rb.map(\.bitPattern) && a.map(\.bitPattern) == ra.map(\.bitPattern))
    }

    /// The in-place truncated solve: G X = H for a positive definite G (several right-hand sides, in a buffer longer
    /// than the system whose tail is left alone); for a G with a zero direction, the minimum-norm solution (no
    /// component along it).
    @Test func inPlaceSolveIsTheMinimumNormSolution() throws {
        let n = 4, columns = 3
        let m = TestData.gaussian(n * n, seed: 31).map(Double.init)
        func gram(_ m: [Double]) -> [Double] {
            var g = [Double](repeating: 0, count: n * n)
            for i in 0..<n { for j in 0..<n { for t in 0..<n { g[i * n + j] += m[i * n + t] * m[j * n + t] } } }
            return g
        }
        let g = gram(m)
        let h = TestData.gaussian(n * columns, seed: 32).map(Double.init)
        var x = h + [7, 7], scratch: [Double] = []
        try LinearAlgebra.solveTruncated(g, &x, n: n, columns: columns, cutoff: 1e-12, scratch: &scratch)
        #expect(x.suffix(2) == [7, 7])
        for c in 0..<columns { for i in 0..<n {
            let gx = (0..<n).reduce(0.0) { $0 + g[$1 * n + i] * x[c * n + $1] }
            #expect(abs(gx - h[c * n + i]) <= 1e-9 * max(1, abs(h[c * n + i])))
        } }
        // Row 2 of m zero: G's row and column 2 are zero, so X's entry 2 is 0 in every column.
        var singular = m
        for t in 0..<n { singular[2 * n + t] = 0 }
        var y = h
        try LinearAlgebra.solveTruncated(gram(singular), &y, n: n, columns: columns, cutoff: 1e-7, scratch: &scratch)
        for c in 0..<columns { #expect(y[c * n + 2] == 0 || abs(y[c * n + 2]) < 1e-12) }
    }

    @Test func mismatchedShapesThrow() {
        var b = [Float](repeating: 0, count: 5), a = [Float](repeating: 0, count: 4)
        #expect(throws: KernelShapeError.self) {
            try FactorRefit.refit(units: [1, 2, 3], count: 2, outFeatures: 2, inFeatures: 2, b: &b, a: &a, k: 2, rounds: 1)
        }
    }
}
