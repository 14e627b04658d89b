import Foundation

/// The quality cost model: which of exact or estimated figures a module gets (docs/kernels.md, "Quality figures").
public struct QualityCostModel: Sendable {
    public var rows: Int
    public var cols: Int
    public var inner: Int
    /// Rank of the result (the floor's k).
    public var rank: Int

    public init(rows: Int, cols: Int, inner: Int, rank: Int) {
        self.rows = rows
        self.cols = cols
        self.inner = inner
        self.rank = rank
    }

    /// Exact error and floor: the cheaper of the QR route on [X | B'] and one dense pass (+ the floor's spectrum
    /// from the same factorization, or a Krylov/Gram spectrum).
    public var exact: Double {
        let model = ProductCostModel(rows: rows, cols: cols, inner: inner + rank, rank: max(rank, 1), wantNorm: true)
        return min(model.cost(.factored), model.cost(.denseGram))
    }

    /// The svd result's ‖T‖ alone (its error is the floor): the cheapest exact route's norm.
    public var exactNorm: Double {
        let model = ProductCostModel(rows: rows, cols: cols, inner: inner, rank: max(rank, 1), wantNorm: true)
        return min(model.cost(.factored), model.densePass)
    }

    /// The estimate: `probeCount` probes (one application of that width) plus, for a result that is no
    /// truncation of T, a Krylov sketch of `sketchSteps` steps for the floor and one application of width k.
    public func estimate(sketchSteps: Int) -> Double {
        let model = ProductCostModel(rows: rows, cols: cols, inner: inner, rank: max(rank, 1), wantNorm: false)
        let sketch = sketchSteps > 0
            ? model.application(width: model.krylovWidth) + (1...sketchSteps).reduce(0.0) { $0 + model.krylovStep($1) }
                + model.application(width: rank)
            : 0
        return model.application(width: QualityEstimator.probeCount) + sketch
    }
}

extension StackedProduct {
    /// Allowed excess of the estimated floor over the true one from the Krylov sketch (the floor estimate is an
    /// upper bound by at most this when the sketch settles): looser than the svd route's, the figure carries a
    /// standard error anyway.
    public static let sketchTolerance = 1e-3

    /// Estimated quality figures of an svd result that came from the Krylov route: its error is sqrt(‖T‖² − S)/‖T‖
    /// exactly (S = Σ σ̃², B'A' = P_k T), and only ‖T‖² is estimated, deflated by the route's own basis.
    public func estimatedTruncationQuality(values: [Float], capture: KrylovCapture, seed: UInt64) -> ProductQuality {
        let top = values.reduce(0.0) { $0 + Double($1) * Double($1) }
        let count = QualityEstimator.probeCount
        let probes = QualityEstimator.probes(seed: seed, cols: cols, count: count)
        let image = apply(probes, width: count)
        let deflation = QualityEstimator.Deflation(basis: capture.basis, widths: capture.widths,
                                                   targetSquared: capture.squaredNorm, errorSquared: 0)
        let samples = QualityEstimator.samples(targetImage: image, probes: probes, count: count, approximationLeft: [],
                                               approximationRight: [], rank: 0, rows: rows, cols: cols,
                                               deflation: deflation)
        let floor = QualityEstimator.floor(samples, capturedTop: top)
        let norm = (samples.target.reduce(0, +) / Double(count)).squareRoot()
        return ProductQuality(relativeError: floor.value, targetNorm: norm, floor: floor.value, route: .krylov,
                              relativeErrorStandardError: floor.standardError, floorStandardError: floor.standardError)
    }

    /// Estimated quality figures of any rank-k result B'A' (B' row-major [rows, rank], A' [rank, cols]): a Krylov
    /// sketch of T at rank `spectrumRank` (at most `sketchSteps` steps, tolerance `sketchTolerance`) gives the
    /// top values S and a basis Q (the floor's stated error includes the sketch's extrapolated remaining bias); Z = [Q, orth((I − QQᵀ)B')] deflates both ‖T‖² and ‖T − B'A'‖², whose parts in
    /// span(Z) are exact (QᵀT = Wᵀ from the sketch, B''ᵀT by one application of width k) and whose tails are
    /// sampled by `QualityEstimator.probeCount` probes.
    public func estimatedQuality(approximationLeft: [Float], approximationRight: [Float], rank: Int,
                                 spectrumRank: Int?, seed: UInt64, sketchSteps: Int) throws -> ProductQuality {
        var basis: [[Float]] = [], widths: [Int] = []
        var targetSquared = 0.0, errorSquared = 0.0, top: Double?, remaining = 0.0, sketchSquared = 0.0
        if let spectrumRank, spectrumRank > 0,
           let sketch = try krylovSVD(rank: spectrumRank, seed: seed ^ 0x534B_4348, maxSteps: max(2, sketchSteps),
                                      tolerance: Self.sketchTolerance, acceptUnsettled: true) {
            top = sketch.svd.singularValues.reduce(0.0) { $0 + Double($1) * Double($1) }
            remaining = sketch.remaining
            basis = sketch.basis
            widths = sketch.widths
            targetSquared = sketch.capturedSquared
            sketchSquared = sketch.capturedSquared
            for (block, (image, width)) in zip(basis, zip(sketch.images, widths)) {
                // Q_jᵀE = W_jᵀ − (Q_jᵀB') A'.
                errorSquared += Self.projectedErrorSquared(image: image, basisBlock: block, width: width, rows: rows,
                                                           cols: cols, left: approximationLeft,
                                                           right: approximationRight, rank: rank)
            }
        }
        if rank > 0 {
            // The part of B' outside span(Q): one more orthonormal block, its exact parts by one Tᵀ application.
            var extra = approximationLeft
            for _ in 0..<2 { Self.project(&extra, width: rank, against: basis, widths: widths, rows: rows) }
            let residual = Self.squaredNorm(extra), original = Self.squaredNorm(approximationLeft)
            if residual > 1e-10 * original, rank <= rows - widths.reduce(0, +) {
                var block = try LinearAlgebra.thinQR(extra, rows: rows, cols: rank).q
                Self.project(&block, width: rank, against: basis, widths: widths, rows: rows)
                block = try LinearAlgebra.thinQR(block, rows: rows, cols: rank).q
                let image = applyTransposed(block, width: rank)
                targetSquared += Self.squaredNorm(image)
                errorSquared += Self.projectedErrorSquared(image: image, basisBlock: block, width: rank, rows: rows,
                                                           cols: cols, left: approximationLeft,
                                                           right: approximationRight, rank: rank)
                basis.append(block)
                widths.append(rank)
            }
        }
        let count = QualityEstimator.probeCount
        let probes = QualityEstimator.probes(seed: seed, cols: cols, count: count)
        let image = apply(probes, width: count)
        let samples = QualityEstimator.samples(
            targetImage: image, probes: probes, count: count, approximationLeft: approximationLeft,
            approximationRight: approximationRight, rank: rank, rows: rows, cols: cols,
            deflation: QualityEstimator.Deflation(basis: basis, widths: widths, targetSquared: targetSquared,
                                                  errorSquared: errorSquared))
        let error = QualityEstimator.relativeError(samples)
        var quality = ProductQuality(relativeError: error.value, targetNorm: error.targetNorm, floor: nil,
                                     route: .krylov, relativeErrorStandardError: error.standardError)
        if let top {
            let complete = (spectrumRank ?? 0) >= min(rows, cols, inner)
            // The sketch's S may still rise (a budget-limited sketch may not settle): the floor is an upper bound,
            // and its stated error includes the largest shortfall (extrapolated, capped by Ky Fan's bound).
            let floor = QualityEstimator.boundedFloor(samples, capturedTop: top, extrapolatedRise: remaining,
                                                      deflatedSquared: targetSquared,
                                                      outsideExact: targetSquared - sketchSquared)
            quality.floor = complete ? 0 : floor.value
            quality.floorStandardError = complete ? 0 : floor.standardError
        }
        return quality
    }

    /// ‖Q_jᵀ(T − B'A')‖² from W_j = TᵀQ_j [cols, width]: ‖W_jᵀ − (Q_jᵀB')A'‖².
    static func projectedErrorSquared(image: [Float], basisBlock: [Float], width: Int, rows: Int, cols: Int,
                                      left: [Float], right: [Float], rank: Int) -> Double {
        var difference = FactoredProduct.transposed(image, rows: cols, cols: width)  // [width, cols]
        if rank > 0 {
            let coefficients = BLAS.matmul(basisBlock, left, m: width, n: rank, k: rows, transA: .transpose)
            BLAS.subtractProduct(coefficients, right, from: &difference, m: width, n: cols, k: rank)
        }
        return squaredNorm(difference)
    }
}
