import Foundation
import Testing
@testable import Kernels

/// The randomized quality figures (docs/kernels.md, "Quality figures"): over many seeds the estimates fall
/// within their stated standard errors of the dense references as often as a standard error promises; the
/// per-block image a split module reduces equals the whole module's; probes are a pure function of the seed.
@Suite struct QualityEstimatorTests {
    /// T with a slowly decaying spectrum (a flat tail like the Recycling pool's) and a rank-k approximation that is
    /// no truncation (so error ≠ floor).
    static func setting(rows: Int, inner: Int, cols: Int, k: Int,
                        seed: UInt64) throws -> (StackedProduct, [Double], [Float], [Float], Double, Double) {
        var x = TestData.gaussian(rows * inner, seed: seed)
        for i in 0..<rows { for j in 0..<inner { x[i * inner + j] *= Float(pow(0.99, Double(j))) } }
        let y = TestData.gaussian(inner * cols, seed: seed &+ 1)
        let product = try StackedProduct(leftColumns: FactoredProduct.transposed(x, rows: rows, cols: inner), right: y,
                                         rows: rows, inner: inner, cols: cols)
        let t = TestData.denseProduct(x, y, m: rows, k: inner, n: cols)
        // B'A': the true top-k directions perturbed, so the error is a little above the floor.
        let exact = try product.truncatedSVD(rank: k, seed: 1, wantNorm: true, route: .factored).svd
        let noise = TestData.gaussian(rows * k, seed: seed &+ 2, scale: 0.3)
        let b = zip(exact.left, noise).map { $0 + $1 * (exact.left.map { abs($0) }.max() ?? 1) }
        let a = exact.right
        let error = TestData.relativeDifference(TestData.denseProduct(b, a, m: rows, k: k, n: cols), t)
        let (_, sigma, _) = try LinearAlgebra.svd(t.map { Float($0) }, rows: rows, cols: cols)
        return (product, t, b, a, error, TruncatedSVD.tailFraction(sigma, rank: k))
    }

    /// Share of |estimate − exact| ≤ z·se over seeds must be at least what a normal error promises, loosely:
    /// ≥ 80 % within 2 se (95 % nominal), ≥ 97 % within 4 se; and the errors are not all on one side.
    static func checkCoverage(_ deviations: [(Double, Double)], bias: Double = 0, label: String) {
        let within2 = deviations.filter { abs($0.0) <= 2 * $0.1 + bias }.count
        let within4 = deviations.filter { abs($0.0) <= 4 * $0.1 + bias }.count
        let n = Double(deviations.count)
        #expect(Double(within2) >= 0.8 * n, "\(label): \(within2) of \(deviations.count) within 2 se")
        #expect(Double(within4) >= 0.97 * n, "\(label): \(within4) of \(deviations.count) within 4 se")
        let above = deviations.filter { $0.0 > 0 }.count
        #expect(above > deviations.count / 5 && above < deviations.count * 4 / 5, "\(label): \(above) above")
        #expect(deviations.allSatisfy { $0.1 > 0 && $0.1.isFinite }, "\(label): standard errors positive")
    }

    @Test func estimatesFallWithinTheirStandardErrors() throws {
        let (product, _, b, a, error, floor) = try Self.setting(rows: 90, inner: 400, cols: 70, k: 6, seed: 3)
        var errors: [(Double, Double)] = [], floors: [(Double, Double)] = []
        for seed in UInt64(0)..<60 {
            let q = try product.estimatedQuality(approximationLeft: b, approximationRight: a, rank: 6, spectrumRank: 6,
                                                 seed: seed, sketchSteps: 4)
            errors.append((q.relativeError - error, try #require(q.relativeErrorStandardError)))
            floors.append((try #require(q.floor) - floor, try #require(q.floorStandardError)))
        }
        Self.checkCoverage(errors, label: "error")
        // The floor is an upper bound by at most the sketch's tolerance on top of its statistical error.
        Self.checkCoverage(floors, bias: StackedProduct.sketchTolerance, label: "floor")
        // Deflation makes the estimates tight: a few percent here.
        #expect(errors.map(\.1).max()! < 0.05 * error)
    }

    /// A budget of 2 sketch steps does not settle on a flat spectrum: the floor is then an upper bound by more
    /// than the sketch tolerance, and its stated error includes that (extrapolated) bias.
    @Test func unsettledSketchStatesItsBias() throws {
        let (product, _, b, a, _, floor) = try Self.setting(rows: 90, inner: 400, cols: 70, k: 12, seed: 8)
        for seed in UInt64(0)..<20 {
            let q = try product.estimatedQuality(approximationLeft: b, approximationRight: a, rank: 12, spectrumRank: 12,
                                                 seed: seed, sketchSteps: 2)
            let estimate = try #require(q.floor), stated = try #require(q.floorStandardError)
            #expect(estimate >= floor - 4 * stated && estimate - floor <= 4 * stated, "seed \(seed): \(estimate) vs \(floor) ± \(stated)")
        }
    }

    /// T with `strong` directions of nearly equal weight (decay `decay` per direction) above a weak tail (relative
    /// weight `tail`): a 2-step sketch at k < strong cannot separate the top k yet (its extrapolated rise is large),
    /// but its basis already holds nearly all of ‖T‖², so Ky Fan's bound (the energy outside the basis) is small.
    static func clustered(rows: Int, inner: Int, cols: Int, strong: Int, decay: Double, tail: Double,
                          seed: UInt64) throws -> (StackedProduct, [Float]) {
        var x = TestData.gaussian(rows * inner, seed: seed)
        for i in 0..<rows {
            for j in 0..<inner { x[i * inner + j] *= Float(j < strong ? pow(decay, Double(j)) : tail) }
        }
        let y = TestData.gaussian(inner * cols, seed: seed &+ 1)
        let product = try StackedProduct(leftColumns: FactoredProduct.transposed(x, rows: rows, cols: inner), right: y,
                                         rows: rows, inner: inner, cols: cols)
        let t = TestData.denseProduct(x, y, m: rows, k: inner, n: cols)
        return (product, try LinearAlgebra.svd(t.map { Float($0) }, rows: rows, cols: cols).s)
    }

    /// The floor's stated error bounds the true floor (estimate − 4 stated ≤ floor ≤ estimate + 4 stated, and the
    /// estimate is an upper bound up to its statistical error) on random pools, and is useful where the 2-step
    /// sketch has not settled: at most a tenth of the floor (the extrapolation alone states half the floor or more:
    /// `extrapolationAloneIsLooseThere`).
    @Test(arguments: [(UInt64(11), 0.97), (12, 0.95), (13, 0.99)])
    func unsettledFloorBoundIsTightWhereTheBasisHoldsTheEnergy(seed: UInt64, decay: Double) throws {
        let k = 8, rows = 160, cols = 120
        let (product, sigma) = try Self.clustered(rows: rows, inner: 300, cols: cols, strong: 24, decay: decay,
                                                  tail: 0.02, seed: seed)
        let floor = TruncatedSVD.tailFraction(sigma, rank: k)
        let exact = try product.truncatedSVD(rank: k, seed: 1, wantNorm: true, route: .factored).svd
        let b = exact.left.map { $0 * 1.01 }, a = exact.right
        var stated: [Double] = []
        for probeSeed in UInt64(0)..<12 {
            let q = try product.estimatedQuality(approximationLeft: b, approximationRight: a, rank: k, spectrumRank: k,
                                                 seed: probeSeed &+ seed, sketchSteps: 2)
            let estimate = try #require(q.floor), error = try #require(q.floorStandardError)
            #expect(estimate >= floor - 4 * error && estimate - floor <= 4 * error,
                    "seed \(seed): \(estimate) vs \(floor) ± \(error)")
            stated.append(error)
        }
        let worst = stated.max() ?? 1
        #expect(worst <= 0.1 * floor, "stated ±\(worst) for a floor of \(floor)")
    }

    /// Without Ky Fan's cap (the extrapolation alone) the same sketch states a useless error: the cap is what helps.
    @Test func extrapolationAloneIsLooseThere() throws {
        let k = 8
        let (product, sigma) = try Self.clustered(rows: 160, inner: 300, cols: 120, strong: 24, decay: 0.97, tail: 0.02,
                                                  seed: 11)
        let floor = TruncatedSVD.tailFraction(sigma, rank: k)
        let sketch = try #require(try product.krylovSVD(rank: k, seed: 3, maxSteps: 2, tolerance: StackedProduct.sketchTolerance,
                                                        acceptUnsettled: true))
        let top = sketch.svd.singularValues.reduce(0.0) { $0 + Double($1) * Double($1) }
        let count = QualityEstimator.probeCount
        let g = QualityEstimator.probes(seed: 3, cols: product.cols, count: count)
        let samples = QualityEstimator.samples(
            targetImage: product.apply(g, width: count), probes: g, count: count, approximationLeft: [],
            approximationRight: [], rank: 0, rows: product.rows, cols: product.cols,
            deflation: QualityEstimator.Deflation(basis: sketch.basis, widths: sketch.widths,
                                                  targetSquared: sketch.capturedSquared, errorSquared: 0))
        let loose = QualityEstimator.boundedFloor(samples, capturedTop: top, extrapolatedRise: sketch.remaining,
                                                  deflatedSquared: sketch.capturedSquared, outsideExact: .infinity)
        let capped = QualityEstimator.boundedFloor(samples, capturedTop: top, extrapolatedRise: sketch.remaining,
                                                   deflatedSquared: sketch.capturedSquared, outsideExact: 0)
        #expect(loose.standardError >= 0.5 * floor, "extrapolation alone: ±\(loose.standardError), floor \(floor)")
        #expect(capped.standardError <= 0.1 * floor, "with the cap: ±\(capped.standardError), floor \(floor)")
    }

    /// The svd result of the Krylov route: error = floor = sqrt(‖T‖² − Σσ̃²)/‖T‖ with ‖T‖² estimated outside
    /// the route's own basis.
    @Test func truncationEstimateWithinItsStandardError() throws {
        let (product, t, _, _, _, floor) = try Self.setting(rows: 120, inner: 500, cols: 90, k: 8, seed: 5)
        var deviations: [(Double, Double)] = []
        for seed in UInt64(0)..<60 {
            let truncation = try product.truncatedSVD(rank: 8, seed: seed, wantNorm: false, route: .krylov)
            let capture = try #require(truncation.captured)
            let q = product.estimatedTruncationQuality(values: truncation.svd.singularValues, capture: capture, seed: seed)
            let actual = TestData.relativeDifference(
                TestData.denseProduct(truncation.svd.left, truncation.svd.right, m: 120, k: 8, n: 90), t)
            deviations.append((q.relativeError - actual, try #require(q.relativeErrorStandardError)))
            #expect(q.floor == q.relativeError)
            #expect(abs(actual - floor) <= StackedProduct.krylovTolerance)
        }
        Self.checkCoverage(deviations, label: "svd error")
    }

    /// Split modules: Σ over blocks of X_b(Y_b G) is the whole module's T G, and the plain (undeflated)
    /// estimate from it is within its standard error of the dense error over seeds.
    @Test func blockImagesAddUpAndPlainEstimateCovers() throws {
        let rows = 60, cols = 50, k = 5
        let blocks = [40, 70, 30]
        let x = blocks.enumerated().map { TestData.gaussian(rows * $0.element, seed: UInt64(10 + $0.offset)) }
        let y = blocks.enumerated().map { TestData.gaussian($0.element * cols, seed: UInt64(20 + $0.offset)) }
        let inner = blocks.reduce(0, +)
        // Whole-module factors: X column-major = blocks of columns in order; Y rows in order.
        let whole = try StackedProduct(leftColumns: x.flatMap { $0 }, right: y.flatMap { $0 }, rows: rows, inner: inner,
                                       cols: cols)
        var t = [Double](repeating: 0, count: rows * cols)
        for (xb, (yb, r)) in zip(x, zip(y, blocks)) {
            let part = TestData.denseProduct(FactoredProduct.transposed(xb, rows: r, cols: rows), yb, m: rows, k: r, n: cols)
            for i in t.indices { t[i] += part[i] }
        }
        let b = TestData.gaussian(rows * k, seed: 31, scale: 2), a = TestData.gaussian(k * cols, seed: 32, scale: 2)
        let error = TestData.relativeDifference(TestData.denseProduct(b, a, m: rows, k: k, n: cols), t)
        var deviations: [(Double, Double)] = []
        for seed in UInt64(0)..<80 {
            let m = QualityEstimator.probeCount
            let g = QualityEstimator.probes(seed: seed, cols: cols, count: m)
            var sum = [Float](repeating: 0, count: rows * m)
            for (xb, (yb, r)) in zip(x, zip(y, blocks)) {
                let part = try QualityEstimator.blockImage(leftColumns: xb, right: yb, rows: rows, inner: r, cols: cols,
                                                           probes: g, count: m)
                for i in sum.indices { sum[i] += part[i] }
            }
            let direct = whole.apply(g, width: m)
            for (s, d) in zip(sum, direct) { #expect(abs(s - d) <= 1e-4 * (abs(d) + 1)) }
            let q = try QualityEstimator.estimate(targetImage: sum, probes: g, count: m, approximationLeft: b,
                                                  approximationRight: a, rank: k, rows: rows, cols: cols)
            deviations.append((q.relativeError - error, try #require(q.relativeErrorStandardError)))
        }
        Self.checkCoverage(deviations, label: "plain")
    }

    @Test func probesArePureAndStandard() {
        let g = QualityEstimator.probes(seed: 7, cols: 300, count: 24)
        #expect(g == QualityEstimator.probes(seed: 7, cols: 300, count: 24))
        #expect(g != QualityEstimator.probes(seed: 8, cols: 300, count: 24))
        let mean = g.reduce(0.0) { $0 + Double($1) } / Double(g.count)
        let variance = g.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(g.count) - mean * mean
        #expect(abs(mean) < 0.03 && abs(variance - 1) < 0.05)
    }

    @Test func rejectsMismatchedShapes() {
        #expect(throws: KernelShapeError.self) {
            try QualityEstimator.estimate(targetImage: [1, 2], probes: [1], count: 1, approximationLeft: [],
                                          approximationRight: [], rank: 0, rows: 3, cols: 1)
        }
    }
}
