import Foundation

/// What the block Krylov route found: the truncation, and what the quality estimator reuses.
struct KrylovOutcome {
    var svd: TruncatedSVD
    /// Block steps run (Tᵀ applications).
    var steps: Int
    /// ‖QᵀT‖_F² for the final orthonormal left basis Q (every Ritz value squared): a lower bound on ‖T‖_F², exact
    /// for the part of T inside span(Q).
    var capturedSquared: Double
    /// The final left basis Q, blocks row-major [rows, width_j] (for a deflated norm estimate).
    var basis: [[Float]]
    var widths: [Int]
    /// W_j = Tᵀ Q_j, row-major [cols, widths[j]] (QᵀT = Wᵀ).
    var images: [[Float]]
    /// false only when `acceptUnsettled` returned the last step's triplets without the stopping rule holding.
    var settled = true
    /// Extrapolated remaining rise of S = Σ_{i≤k} σ̃_i² (an estimate of Σ_{i≤k} σ_i² − S): what the floor
    /// sqrt(‖T‖² − S) may still overstate. 0 when exhausted.
    var remaining = 0.0
}

extension StackedProduct {
    /// Allowed excess of the result's relative error over the Eckart–Young floor (docs/kernels.md, "svd routes"):
    /// ‖T − B'A'‖/‖T‖ − ‖T − T_k‖/‖T‖ ≤ this.
    public static let krylovTolerance = 1e-4

    /// Randomized block Krylov SVD (Musco & Musco 2015, alg. 2, with a data-driven stop): Q_0 = orth(T Ω) for a
    /// Gaussian Ω [cols, b] from `seed`; step j: W_j = Tᵀ Q_j, Rayleigh–Ritz on the whole basis Q = [Q_0 … Q_j]
    /// (QᵀT = [W_0 … W_j]ᵀ: thin QR of W, SVD of the small triangle), then Q_{j+1} = orth(T W_j) made orthogonal to
    /// every earlier block (block Gram–Schmidt, twice, then re-orthogonalised once more after its QR).
    ///
    /// Stopping rule, on the approximation error rather than on singular vectors: B'A' = P_k T with P_k the top-k
    /// left Ritz vectors, so ‖T − B'A'‖² = ‖T‖² − S with S = Σ_{i≤k} σ̃_i², and the excess over the floor is
    /// Σ_{i≤k} σ_i² − S. S rises monotonically; its remaining rise is extrapolated from the last increments
    /// (ratio ρ ≤ 0.9, remaining ≈ Δ·ρ/(1 − ρ), doubled for safety) and must be at most
    /// τ·(2·√tail·√N + τ·N) with N = Σ all σ̃² ≤ ‖T‖² and tail = Σ_{i>k} σ̃_i² ≤ ‖T − T_k‖²: then the relative
    /// error exceeds the floor by at most τ = `krylovTolerance`. Also stops when the basis is exhausted (T's range
    /// is inside it: the Ritz triplets are exact). nil when `maxSteps` pass first. Every step is a fixed sequence of
    /// single-threaded BLAS/LAPACK calls, so the result is a function of (factors, k, seed).
    /// `acceptUnsettled` returns the last step's triplets (flagged `settled == false`) instead of nil.
    func krylovSVD(rank k: Int, seed: UInt64, maxSteps: Int, tolerance: Double = krylovTolerance,
                   acceptUnsettled: Bool = false) throws -> KrylovOutcome? {
        let bound = min(rows, cols, inner)
        let kept = min(max(k, 0), bound)
        guard kept > 0 else {
            return KrylovOutcome(svd: TruncatedSVD(rank: 0, left: [], right: [], singularValues: [], frobeniusNorm: 0,
                                                   floor: 0), steps: 0, capturedSquared: 0, basis: [], widths: [],
                                 images: [])
        }
        let width = ProductCostModel(rows: rows, cols: cols, inner: inner, rank: kept, wantNorm: false).krylovWidth
        var random = DeterministicRandom(seed: CounterRandom.streamKey(seed: seed, stream: 0x4B52_594C))
        let omega = (0..<(cols * width)).map { _ in Float(random.nextGaussian()) }
        var basis = [try LinearAlgebra.thinQR(apply(omega, width: width), rows: rows, cols: width).q]
        var widths = [width]
        var images: [[Float]] = []  // W_j = Tᵀ Q_j, row-major [cols, width_j]
        var sums: [Double] = []
        for step in 1...max(1, maxSteps) {
            let current = widths[step - 1]
            images.append(applyTransposed(basis[step - 1], width: current))
            let total = widths.reduce(0, +)
            let ritz = try Self.ritz(images: images, widths: widths, cols: cols, total: total)
            let values = ritz.sigma.map(Double.init)
            let top = values.prefix(kept).reduce(0.0) { $0 + $1 * $1 }
            let all = values.reduce(0.0) { $0 + $1 * $1 }
            let tail = max(all - top, 0)
            sums.append(top)
            let growth = total + width <= bound ? width : bound - total
            let exhausted = growth <= 0
            var settled = false
            var remaining = sums.count >= 2 ? 9 * max(sums[sums.count - 1] - sums[sums.count - 2], 0) : top
            if sums.count >= 3 {
                let noise = 8 * Double(Float.ulpOfOne) * all
                let last = max(sums[sums.count - 1] - sums[sums.count - 2], 0)
                let before = max(sums[sums.count - 2] - sums[sums.count - 3], 0)
                var ratio = before > 0 ? last / before : (last > noise ? 0.9 : 0)
                if sums.count >= 4 {
                    let earlier = max(sums[sums.count - 3] - sums[sums.count - 4], 0)
                    if earlier > 0 { ratio = max(ratio, before / earlier) }
                }
                ratio = min(ratio, 0.9)
                remaining = last <= noise && before <= noise ? 0 : 2 * last * ratio / (1 - ratio)
                let allowed = tolerance * (2 * (tail * all).squareRoot() + tolerance * all)
                settled = remaining <= allowed
            }
            if StackedProduct.traceIterations {
                FileHandle.standardError.write(Data(("krylov step \(step) basis \(total) top \(top) all \(all) "
                    + "settled \(settled)\n").utf8))
            }
            let last = step == max(1, maxSteps)
            if settled || exhausted || all == 0 || (last && acceptUnsettled) {
                return KrylovOutcome(svd: Self.ritzTruncation(ritz: ritz, basis: basis, widths: widths, kept: kept,
                                                              total: total, rows: rows, cols: cols),
                                     steps: step, capturedSquared: all, basis: basis, widths: widths, images: images,
                                     settled: settled || exhausted || all == 0, remaining: exhausted ? 0 : remaining)
            }
            if last { break }
            var z = apply(images[step - 1], width: current)
            let before = Self.squaredNorm(z)
            for _ in 0..<2 { Self.project(&z, width: current, against: basis, widths: widths, rows: rows) }
            let after = Self.squaredNorm(z)
            if after <= 1e-12 * before {
                // T Tᵀ maps the basis into itself (to Float rounding): its Ritz triplets are exact.
                return KrylovOutcome(svd: Self.ritzTruncation(ritz: ritz, basis: basis, widths: widths, kept: kept,
                                                              total: total, rows: rows, cols: cols),
                                     steps: step, capturedSquared: all, basis: basis, widths: widths, images: images)
            }
            if growth < current { z = Self.leadingColumns(z, rows: rows, width: current, keep: growth) }
            var next = try LinearAlgebra.thinQR(z, rows: rows, cols: growth).q
            Self.project(&next, width: growth, against: basis, widths: widths, rows: rows)
            next = try LinearAlgebra.thinQR(next, rows: rows, cols: growth).q
            basis.append(next)
            widths.append(growth)
        }
        return nil
    }

    /// Rayleigh–Ritz on the basis whose images are W_j = Tᵀ Q_j: QᵀT = Wᵀ with W = [W_0 … W_j] [cols, total];
    /// W = Q_W R_W, and the SVD of R_Wᵀ = U Σ Vᵀ gives the Ritz triplets (Q U, Σ, Q_W V).
    static func ritz(images: [[Float]], widths: [Int], cols: Int,
                     total: Int) throws -> (coefficients: [Float], sigma: [Float], right: [Float]) {
        var stacked = [Float](repeating: 0, count: cols * total)
        var offset = 0
        for (image, width) in zip(images, widths) {
            for j in 0..<cols { for c in 0..<width { stacked[j * total + offset + c] = image[j * width + c] } }
            offset += width
        }
        let (qw, rw, _) = try LinearAlgebra.thinQR(stacked, rows: cols, cols: total)
        let p = min(cols, total)
        let small = FactoredProduct.transposed(Array(rw.prefix(p * total)), rows: p, cols: total)  // [total, p]
        let (us, sigma, vst) = try LinearAlgebra.svd(small, rows: total, cols: p)
        let q = min(total, p)
        // Right Ritz vectors Q_W V: [cols, q].
        let right = BLAS.matmul(qw, vst, m: cols, n: q, k: p, transB: .transpose)
        return (us, sigma, right)
    }

    /// The top-`kept` Ritz triplets as balanced factors: U = Σ_j Q_j · coefficients[rows of block j].
    static func ritzTruncation(ritz: (coefficients: [Float], sigma: [Float], right: [Float]), basis: [[Float]],
                               widths: [Int], kept: Int, total: Int, rows: Int, cols: Int) -> TruncatedSVD {
        let q = ritz.sigma.count
        let use = min(kept, q)
        var u = [Float](repeating: 0, count: rows * use)
        var offset = 0
        for (block, width) in zip(basis, widths) {
            // Coefficients are row-major [total, q]; this block's rows, first `use` columns.
            var part = [Float](repeating: 0, count: width * use)
            for r in 0..<width { for c in 0..<use { part[r * use + c] = ritz.coefficients[(offset + r) * q + c] } }
            block.withUnsafeBufferPointer { b in
                part.withUnsafeBufferPointer { p in
                    u.withUnsafeMutableBufferPointer { out in
                        guard let b = b.baseAddress, let p = p.baseAddress, let out = out.baseAddress else { return }
                        BLAS.gemm(.none, .none, m: rows, n: use, k: width, a: b, b: p, beta: 1, c: out)
                    }
                }
            }
            offset += width
        }
        var v = [Float](repeating: 0, count: cols * use)
        for j in 0..<cols { for c in 0..<use { v[j * use + c] = ritz.right[j * q + c] } }
        var result = balanced(u: u, sigma: Array(ritz.sigma.prefix(use)), v: v, width: use, kept: use, rows: rows,
                              cols: cols)
        if use < kept {
            // Fewer Ritz triplets than asked (a basis narrower than k): pad with zero directions.
            var left = [Float](repeating: 0, count: rows * kept), right = [Float](repeating: 0, count: kept * cols)
            for i in 0..<rows { for t in 0..<use { left[i * kept + t] = result.left[i * use + t] } }
            for t in 0..<use { for j in 0..<cols { right[t * cols + j] = result.right[t * cols + j] } }
            result = TruncatedSVD(rank: kept, left: left, right: right,
                                  singularValues: result.singularValues + [Float](repeating: 0, count: kept - use),
                                  frobeniusNorm: 0, floor: 0)
        }
        return result
    }

    /// z [rows, width] ← z − Q (Qᵀ z) for every block Q of the basis (classical block Gram–Schmidt, one pass).
    static func project(_ z: inout [Float], width: Int, against basis: [[Float]], widths: [Int], rows: Int) {
        for (block, blockWidth) in zip(basis, widths) {
            let coefficients = BLAS.matmul(block, z, m: blockWidth, n: width, k: rows, transA: .transpose)
            BLAS.subtractProduct(block, coefficients, from: &z, m: rows, n: width, k: blockWidth)
        }
    }

    static func squaredNorm(_ values: [Float]) -> Double {
        values.withUnsafeBufferPointer { p in
            guard let base = p.baseAddress else { return 0 }
            let norm = Double(BLAS.nrm2(p.count, base))
            return norm * norm
        }
    }

    static func leadingColumns(_ matrix: [Float], rows: Int, width: Int, keep: Int) -> [Float] {
        var result = [Float](repeating: 0, count: rows * keep)
        for i in 0..<rows { for c in 0..<keep { result[i * keep + c] = matrix[i * width + c] } }
        return result
    }
}
