import Foundation

/// Unbiased randomized estimates of the quality figures (relative error against T and the Eckart–Young floor)
/// at a cost linear in the stacked rank R and far below forming T (docs/kernels.md, "Quality figures"):
/// Hutchinson's estimator of ‖M‖_F² = E‖M g‖² over Gaussian probes g, each probe one operator application
/// (2·R·(out + in) flops), deflated by an orthonormal basis Z whose part ‖ZᵀM‖² is computed exactly
/// (Hutch++-style: only the tail outside span(Z) is sampled, so the variance is the tail's).
/// Probes are counter-based (a pure function of seed and position), so every block of a split module and the
/// coordinator build the same ones; the image T·G is additive over blocks of units (svd-contract.md).
public enum QualityEstimator {
    /// Probes per module (the standard error falls as 1/√m).
    public static let probeCount = 24
    static let probeStream: UInt64 = 0x4855_5443  // "HUTC"

    /// Standard Gaussian probes G, row-major [cols, count]: entry e = j·count + c from two counter-based words
    /// (Box–Muller), a pure function of (seed, e).
    public static func probes(seed: UInt64, cols: Int, count: Int) -> [Float] {
        let key = CounterRandom.streamKey(seed: seed, stream: probeStream)
        let scale = 1.0 / 4_294_967_296.0
        return (0..<(cols * count)).map { entry in
            let index = UInt32(truncatingIfNeeded: 2 * entry)
            let u1 = (Double(CounterRandom.bits32(key: key, index: index)) + 0.5) * scale
            let u2 = (Double(CounterRandom.bits32(key: key, index: index &+ 1)) + 0.5) * scale
            return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
        }
    }

    /// The per-block statistic of a split module: X_b (Y_b G), row-major [rows, count], for the block's stacked
    /// factors (X_b column-major [rows, inner], Y_b row-major [inner, cols]). Σ over blocks (in block order) = T G.
    public static func blockImage(leftColumns: [Float], right: [Float], rows: Int, inner: Int, cols: Int,
                                  probes: [Float], count: Int) throws -> [Float] {
        guard probes.count == cols * count else {
            throw KernelShapeError(kernel: "QualityEstimator", problem: "\(probes.count) probe values for [\(cols), \(count)]")
        }
        return try StackedProduct(leftColumns: leftColumns, right: right, rows: rows, inner: inner, cols: cols)
            .apply(probes, width: count)
    }

    /// An orthonormal left basis Z (row-major blocks [rows, widths[j]]) and the exactly computed ‖ZᵀT‖², ‖ZᵀE‖².
    public struct Deflation: Sendable {
        public var basis: [[Float]]
        public var widths: [Int]
        public var targetSquared: Double
        public var errorSquared: Double
        public init(basis: [[Float]], widths: [Int], targetSquared: Double, errorSquared: Double) {
            self.basis = basis
            self.widths = widths
            self.targetSquared = targetSquared
            self.errorSquared = errorSquared
        }
        /// No deflation (plain Hutchinson).
        public static let none = Deflation(basis: [], widths: [], targetSquared: 0, errorSquared: 0)
    }

    /// Per-probe samples of ‖T‖² and ‖T − B'A'‖² (each an unbiased estimate on its own).
    public struct Samples: Sendable {
        public var target: [Double]
        public var error: [Double]
    }

    /// Samples from the probe image TG [rows, count]: t_j = ‖ZᵀT‖² + ‖(I − ZZᵀ) T g_j‖² and likewise for
    /// E = T − B'A' (B' row-major [rows, rank], A' [rank, cols]; rank 0 leaves E = T).
    public static func samples(targetImage: [Float], probes: [Float], count: Int, approximationLeft: [Float],
                               approximationRight: [Float], rank: Int, rows: Int, cols: Int,
                               deflation: Deflation = .none) -> Samples {
        var target = targetImage
        var error = targetImage
        if rank > 0 {
            let ag = BLAS.matmul(approximationRight, probes, m: rank, n: count, k: cols)
            BLAS.subtractProduct(approximationLeft, ag, from: &error, m: rows, n: count, k: rank)
        }
        for _ in 0..<2 {
            StackedProduct.project(&target, width: count, against: deflation.basis, widths: deflation.widths, rows: rows)
            StackedProduct.project(&error, width: count, against: deflation.basis, widths: deflation.widths, rows: rows)
        }
        func columnSquares(_ matrix: [Float]) -> [Double] {
            (0..<count).map { c in
                matrix.withUnsafeBufferPointer { p -> Double in
                    guard let base = p.baseAddress else { return 0 }
                    let norm = Double(BLAS.nrm2(rows, base + c, stride: count))
                    return norm * norm
                }
            }
        }
        return Samples(target: columnSquares(target).map { $0 + deflation.targetSquared },
                       error: columnSquares(error).map { $0 + deflation.errorSquared })
    }

    /// A ratio of means sqrt(mean a / mean b) and its standard error by the delta method over the pairs
    /// (a_j, b_j): Var(ā/b̄) ≈ Var_j(a_j − r² b_j) / (m b̄²).
    static func ratio(_ a: [Double], _ b: [Double]) -> (value: Double, standardError: Double) {
        let m = Double(a.count)
        let meanA = a.reduce(0, +) / m, meanB = b.reduce(0, +) / m
        guard meanB > 0, a.count >= 2 else { return (0, 0) }
        let squared = max(meanA, 0) / meanB
        let residuals = zip(a, b).map { $0 - squared * $1 }
        let meanResidual = residuals.reduce(0, +) / m
        let variance = residuals.reduce(0.0) { $0 + ($1 - meanResidual) * ($1 - meanResidual) } / (m - 1)
        let squaredError = (variance / m).squareRoot() / meanB
        let value = squared.squareRoot()
        // d√x = dx / (2√x); near 0 the square root's own spread is √(se of x).
        let error = value > 0 ? min(squaredError / (2 * value), squaredError.squareRoot()) : squaredError.squareRoot()
        return (value, error)
    }

    /// Relative error estimate sqrt(mean e / mean t) ± its standard error, and the estimated ‖T‖.
    public static func relativeError(_ samples: Samples) -> (value: Double, standardError: Double, targetNorm: Double) {
        let (value, error) = ratio(samples.error, samples.target)
        let meanT = samples.target.reduce(0, +) / Double(max(samples.target.count, 1))
        return (value, error, max(meanT, 0).squareRoot())
    }

    /// Floor estimate sqrt((N − S)/N) ± standard error, with S = Σ_{i≤k} σ̃_i² captured by a rank-k result of T
    /// (exactly, from Ritz values) and N = ‖T‖² estimated by the samples t_j (so a_j = t_j − S).
    public static func floor(_ samples: Samples, capturedTop: Double) -> (value: Double, standardError: Double) {
        ratio(samples.target.map { $0 - capturedTop }, samples.target)
    }

    /// The floor when S = `capturedTop` (Ritz values of an orthonormal sketch basis Q) may still be below
    /// Σ_{i≤k} σ_i² (a sketch that did not settle): `floor(samples, capturedTop:)` is then an upper bound, and the
    /// stated error adds the largest possible shortfall f − sqrt(f² − rise/N) to the statistical one. The rise is the
    /// smaller of the sketch's extrapolation (`extrapolatedRise`) and a Ky Fan bound that needs no extrapolation:
    /// with T₁ = QQᵀT and T₂ = (I − QQᵀ)T, TᵀT = T₁ᵀT₁ + T₂ᵀT₂ (the cross terms vanish), so
    /// Σ_{i≤k} σ_i(T)² ≤ Σ_{i≤k} σ_i(T₁)² + Σ_{i≤k} σ_i(T₂)² ≤ S + ‖T₂‖_F². ‖T₂‖_F² is the part of ‖T‖² outside
    /// span(Q): `outsideExact` (computed exactly: the deflation's blocks beyond Q) plus the probes' tails
    /// t_j − `deflatedSquared`, taken at their mean + 2 standard errors (a one-sided bound at ~97.5 %).
    public static func boundedFloor(_ samples: Samples, capturedTop: Double, extrapolatedRise: Double,
                                    deflatedSquared: Double, outsideExact: Double) -> (value: Double, standardError: Double) {
        let floor = Self.floor(samples, capturedTop: capturedTop)
        let m = Double(max(samples.target.count, 1))
        let norm = samples.target.reduce(0, +) / m
        let tails = samples.target.map { max($0 - deflatedSquared, 0) }
        let tailMean = tails.reduce(0, +) / m
        let tailSpread = tails.count >= 2
            ? (tails.reduce(0.0) { $0 + ($1 - tailMean) * ($1 - tailMean) } / (m - 1) / m).squareRoot() : tailMean
        let rise = min(max(extrapolatedRise, 0), outsideExact + tailMean + 2 * tailSpread)
        let lower = norm > 0 ? max(floor.value * floor.value - rise / norm, 0).squareRoot() : floor.value
        let bias = floor.value - lower
        return (floor.value, (floor.standardError * floor.standardError + bias * bias).squareRoot())
    }

    /// Split modules (svd-contract.md): the quality figures from the reduced image TG = Σ_b X_b(Y_b G) and the
    /// merged factors, with no deflation. Floor nil.
    public static func estimate(targetImage: [Float], probes: [Float], count: Int, approximationLeft: [Float],
                                approximationRight: [Float], rank: Int, rows: Int, cols: Int) throws -> ProductQuality {
        guard targetImage.count == rows * count, probes.count == cols * count,
              approximationLeft.count == rows * rank, approximationRight.count == rank * cols else {
            throw KernelShapeError(kernel: "QualityEstimator", problem: "image \(targetImage.count), probes "
                                   + "\(probes.count), B' \(approximationLeft.count), A' \(approximationRight.count) for "
                                   + "[\(rows), \(cols)], rank \(rank), \(count) probes")
        }
        let samples = Self.samples(targetImage: targetImage, probes: probes, count: count,
                                   approximationLeft: approximationLeft, approximationRight: approximationRight,
                                   rank: rank, rows: rows, cols: cols)
        let error = relativeError(samples)
        return ProductQuality(relativeError: error.value, targetNorm: error.targetNorm, floor: nil, route: .krylov,
                              relativeErrorStandardError: error.standardError)
    }
}
