import Foundation
import Testing
@testable import Kernels

/// Every svd route (factored QR, subspace iteration, dense Gram) must give the Eckart–Young truncation of
/// T = X·Y, on shapes whose stacked rank exceeds both sides; the route rule is a pure function of the shapes.
@Suite struct StackedProductTests {
    /// X [rows, inner] with columns scaled by decay^j (so T's spectrum decays like a trained pool's), Y Gaussian.
    static func product(rows: Int, inner: Int, cols: Int, decay: Double = 0.9,
                        seed: UInt64) throws -> (StackedProduct, [Double]) {
        var x = TestData.gaussian(rows * inner, seed: seed)
        for i in 0..<rows { for j in 0..<inner { x[i * inner + j] *= Float(pow(decay, Double(j))) } }
        let y = TestData.gaussian(inner * cols, seed: seed &+ 1)
        let product = try StackedProduct(leftColumns: FactoredProduct.transposed(x, rows: rows, cols: inner), right: y,
                                         rows: rows, inner: inner, cols: cols)
        return (product, TestData.denseProduct(x, y, m: rows, k: inner, n: cols))
    }

    /// The dense Eckart–Young truncation T_k (from LAPACK on T rounded to Float once) and T's singular values.
    static func denseTruncation(_ t: [Double], rows: Int, cols: Int, rank k: Int) throws -> ([Double], [Float]) {
        let (u, s, vt) = try LinearAlgebra.svd(t.map { Float($0) }, rows: rows, cols: cols)
        let p = min(rows, cols)
        var truncated = [Double](repeating: 0, count: rows * cols)
        for r in 0..<min(k, p) {
            for i in 0..<rows { for j in 0..<cols {
                truncated[i * cols + j] += Double(u[i * p + r]) * Double(s[r]) * Double(vt[r * cols + j])
            } }
        }
        return (truncated, s)
    }

    /// Relative error of a rank-k result against T (dense reference).
    static func relativeError(_ svd: TruncatedSVD, _ t: [Double], rows: Int, cols: Int) -> Double {
        TestData.relativeDifference(TestData.denseProduct(svd.left, svd.right, m: rows, k: svd.rank, n: cols), t)
    }

    /// The contract every route meets (docs/kernels.md): the result's relative error ‖T − B'A'‖/‖T‖ is within
    /// `krylovTolerance` (1e-4) of the Eckart–Young floor; on these gapped spectra the factors equal T_k too.
    @Test(arguments: [(48, 100, 40, 5), (40, 90, 56, 6), (70, 130, 30, 3), (20, 64, 33, 4), (300, 900, 200, 8)])
    func everyRouteEqualsDenseTruncation(rows: Int, inner: Int, cols: Int, k: Int) throws {
        let (product, t) = try Self.product(rows: rows, inner: inner, cols: cols, seed: UInt64(rows * cols))
        let (expected, sigma) = try Self.denseTruncation(t, rows: rows, cols: cols, rank: k)
        let expectedFloor = TruncatedSVD.tailFraction(sigma, rank: k)
        for route in ProductRoute.allCases {
            let result = try product.truncatedSVD(rank: k, seed: 7, wantNorm: true, route: route)
            #expect(result.route == route && !result.fellBack, "\(route)")
            let svd = result.svd
            #expect(svd.rank == k)
            let error = Self.relativeError(svd, t, rows: rows, cols: cols)
            #expect(error - expectedFloor <= StackedProduct.krylovTolerance && error >= expectedFloor - 1e-6, "\(route)")
            let approximation = TestData.denseProduct(svd.left, svd.right, m: rows, k: k, n: cols)
            #expect(TestData.relativeDifference(approximation, expected) <= 1e-4, "\(route)")
            for i in 0..<k { #expect(abs(Double(svd.singularValues[i] - sigma[i])) <= 1e-5 * Double(sigma[0]), "\(route)") }
            if result.hasNorm {
                #expect(abs(svd.frobeniusNorm - TestData.frobenius(t)) <= 1e-5 * TestData.frobenius(t), "\(route)")
                #expect(abs(svd.floor - expectedFloor) <= 1e-4, "\(route)")
            } else {
                let captured = try #require(result.captured)
                #expect(captured.squaredNorm <= TestData.frobenius(t) * TestData.frobenius(t) * (1 + 1e-5))
            }
        }
    }

    /// A flat spectrum (σ_k ≈ σ_{k+1}): T_k is barely determined, so the Krylov route promises the error, not the
    /// factors: its relative error is within 1e-4 of the floor, over many seeds and shapes.
    @Test(arguments: [(120, 400, 90, 8), (200, 600, 150, 16), (90, 3000, 160, 6)])
    func krylovMeetsTheErrorContractOnFlatSpectra(rows: Int, inner: Int, cols: Int, k: Int) throws {
        let (product, t) = try Self.product(rows: rows, inner: inner, cols: cols, decay: 0.999, seed: UInt64(inner))
        let (_, sigma) = try Self.denseTruncation(t, rows: rows, cols: cols, rank: k)
        let floor = TruncatedSVD.tailFraction(sigma, rank: k)
        for seed in UInt64(0)..<6 {
            let result = try product.truncatedSVD(rank: k, seed: seed, wantNorm: false, route: .krylov)
            #expect(result.route == .krylov && !result.fellBack)
            let error = Self.relativeError(result.svd, t, rows: rows, cols: cols)
            #expect(error - floor <= StackedProduct.krylovTolerance, "seed \(seed): \(error) vs floor \(floor)")
            #expect(error >= floor - 1e-6)
        }
    }

    /// Same inputs and seed, same bits; the routes agree with each other in their factors (signs fixed).
    @Test func deterministicAndSignFixed() throws {
        let (product, _) = try Self.product(rows: 50, inner: 120, cols: 44, seed: 3)
        let first = try product.truncatedSVD(rank: 4, seed: 11, wantNorm: false, route: .krylov).svd
        let second = try product.truncatedSVD(rank: 4, seed: 11, wantNorm: false, route: .krylov).svd
        #expect(first.left == second.left && first.right == second.right)
        let exact = try product.truncatedSVD(rank: 4, seed: 11, wantNorm: false, route: .factored).svd
        for (x, y) in zip(first.left, exact.left) { #expect(abs(x - y) <= 1e-3 * (abs(y) + 1e-2)) }
    }

    /// A step budget too small to settle: the Krylov route reports it instead of returning an unsettled result,
    /// and the public call falls back to the exact route when the budget runs out.
    @Test func unsettledKrylovFallsBack() throws {
        let (product, t) = try Self.product(rows: 60, inner: 200, cols: 60, decay: 1, seed: 5)
        #expect(try product.krylovSVD(rank: 8, seed: 1, maxSteps: 2) == nil)
        let (expected, _) = try Self.denseTruncation(t, rows: 60, cols: 60, rank: 8)
        let result = try product.truncatedSVD(rank: 8, seed: 1, wantNorm: true)
        let approximation = TestData.denseProduct(result.svd.left, result.svd.right, m: 60, k: 8, n: 60)
        #expect(TestData.relativeDifference(approximation, expected) <= 1e-3)
    }

    /// The route rule: QR while the stacked rank is small against both sides; block Krylov for the Recycling
    /// pool's modules and for 512 adapters of a k_proj; T in blocks + Gram when the sides are tiny against R.
    @Test func routeRule() {
        #expect(ProductCostModel(rows: 4096, cols: 4096, inner: 256, rank: 16, wantNorm: true).cheapest == .factored)
        #expect(ProductCostModel(rows: 14336, cols: 4096, inner: 15360, rank: 16, wantNorm: false).cheapest == .krylov)
        // 512 rank-16 adapters of a k_proj: ~8 Krylov steps (~35 GFLOP) beat forming T (69 GFLOP).
        #expect(ProductCostModel(rows: 1024, cols: 4096, inner: 8192, rank: 16, wantNorm: false).cheapest == .krylov)
        #expect(ProductCostModel(rows: 64, cols: 64, inner: 100_000, rank: 16, wantNorm: false).cheapest == .denseGram)
        #expect(ProductCostModel(rows: 256, cols: 128, inner: 40_000, rank: 16, wantNorm: true).cheapest == .denseGram)
        // With the norm wanted exactly the Krylov route pays one dense pass; it never wins where T is cheap to form.
        let model = ProductCostModel(rows: 4096, cols: 4096, inner: 15360, rank: 16, wantNorm: true)
        #expect(model.cost(.krylov) > model.densePass)
        #expect(model.krylovStepLimit >= 6)
    }

    /// Quality figures by every spectrum route equal dense references, with an approximation that is not a
    /// truncation (so error ≠ floor) and with an exact one (error at Float rounding, no cancellation).
    @Test(arguments: [(64, 2100, 96, 4), (96, 2200, 64, 6), (100, 30, 80, 5)])
    func qualityMatchesDenseReference(rows: Int, inner: Int, cols: Int, k: Int) throws {
        let (product, t) = try Self.product(rows: rows, inner: inner, cols: cols, decay: 0.999, seed: UInt64(inner))
        let b = TestData.gaussian(rows * k, seed: 21), a = TestData.gaussian(k * cols, seed: 22, scale: 0.1)
        let expectedError = TestData.relativeDifference(TestData.denseProduct(b, a, m: rows, k: k, n: cols), t)
        let (_, sigma) = try Self.denseTruncation(t, rows: rows, cols: cols, rank: k)
        let expectedFloor = TruncatedSVD.tailFraction(sigma, rank: k)
        for route in [nil] + ProductRoute.allCases.map(Optional.some) {
            let quality = try product.quality(approximationLeft: b, approximationRight: a, rank: k, spectrumRank: k,
                                              seed: 3, spectrumRoute: route)
            #expect(abs(quality.relativeError - expectedError) <= 1e-5 * expectedError, "\(String(describing: route))")
            let floor = try #require(quality.floor)
            #expect(abs(floor - expectedFloor) <= 1e-4, "\(String(describing: route))")
        }
    }
}
