import COpenBLAS
import Foundation

/// How the top singular triplets, the norm and the error of a stacked product `T = X · Y` are computed
/// (docs/kernels.md, "svd routes"). Every route gives the Eckart–Young truncation; they differ only in cost.
public enum ProductRoute: String, Sendable, CaseIterable, Codable {
    /// Householder QR of both factors and the top triplets of the small core (`FactoredProduct`): exact,
    /// cost ~2·R·(out·min(out, R) + in·min(in, R)), quadratic in the stacked rank R.
    case factored
    /// Randomized subspace iteration on the operator `v ↦ X (Y v)` (T never formed) with a Rayleigh–Ritz step
    /// per iteration until the top-k residuals converge: each iteration 4·ℓ·R·(out + in) flops, linear in R.
    case subspace
    /// T formed one block of its long side at a time, its Gram on the short side accumulated in Double, then
    /// the top-k eigenpairs of that Gram (`dsyevr`): exact, 2·out·in·R flops, linear in R.
    case denseGram = "dense_gram"
}

/// The flop model that picks a `ProductRoute` from the shapes alone (so the choice is deterministic and
/// testable). Counted as multiply–adds × 2; Double work counts twice (half the Float throughput).
public struct ProductCostModel: Sendable, Equatable {
    public var rows: Int
    public var cols: Int
    /// Stacked rank R.
    public var inner: Int
    /// Wanted triplets k.
    public var rank: Int
    /// Whether ‖T‖_F is needed too (for the SVD floor): the subspace route then adds one dense pass.
    public var wantNorm: Bool

    /// Iterations the subspace route is budgeted for when routes are compared (the real count is data-driven).
    public static let subspaceIterationsEstimate = 12
    static let doubleFactor = 2.0

    public init(rows: Int, cols: Int, inner: Int, rank: Int, wantNorm: Bool) {
        self.rows = rows
        self.cols = cols
        self.inner = inner
        self.rank = rank
        self.wantNorm = wantNorm
    }

    /// Width ℓ of the subspace iteration's block: 2k + 16 (convergence goes as (σ_{ℓ+1}/σ_k)² per iteration, and
    /// on the Recycling pool σ_33/σ_16 = 0.92 took 50 iterations at ℓ = 32), at most the rank bound.
    public var subspaceWidth: Int { min(2 * rank + 16, min(rows, cols, inner)) }

    /// One dense pass forming T: 2·out·in·R.
    public var densePass: Double { 2 * Double(rows) * Double(cols) * Double(inner) }

    /// Modelled flops of one subspace iteration (two operator applications and two thin QRs).
    public var subspaceIteration: Double {
        let l = Double(subspaceWidth), sides = Double(rows + cols)
        return 4 * l * Double(inner) * sides + 4 * l * l * sides
    }

    public func cost(_ route: ProductRoute) -> Double {
        let out = Double(rows), inF = Double(cols), r = Double(inner)
        switch route {
        case .factored:
            let m = Double(min(rows, inner)), n = Double(min(cols, inner)), p = min(m, n)
            let qrs = 2 * r * (out * m + inF * n)
            let core = m * n * r
            let gram = p * p * max(m, n) * Self.doubleFactor
            let eigen = 4.0 / 3.0 * p * p * p * Self.doubleFactor
            return qrs + core + gram + eigen
        case .subspace:
            let iterations = Double(Self.subspaceIterationsEstimate + 1)
            return iterations * subspaceIteration + (wantNorm ? densePass : 0)
        case .denseGram:
            let p = Double(min(rows, cols)), q = Double(max(rows, cols))
            return densePass + p * p * q + 4.0 / 3.0 * p * p * p * Self.doubleFactor
        }
    }

    /// The cheapest exact route (factored or dense Gram): the subspace route's fallback.
    public var cheapestExact: ProductRoute { cost(.factored) <= cost(.denseGram) ? .factored : .denseGram }

    /// The cheapest route; ties go to the exact ones.
    public var cheapest: ProductRoute {
        let exact = cheapestExact
        return cost(.subspace) < cost(exact) ? .subspace : exact
    }

    /// Iterations the subspace route may run before it falls back to the cheapest exact route: as many as that
    /// route would cost (so a slowly converging spectrum costs at most about twice the exact route), at least 8.
    public var subspaceIterationLimit: Int {
        let budget = cost(cheapestExact) - (wantNorm ? densePass : 0)
        return max(8, Int(budget / max(subspaceIteration, 1)))
    }
}

/// What a stacked truncation produced.
public struct StackedTruncation: Sendable {
    public var svd: TruncatedSVD
    /// Whether ‖T‖_F (and so the floor in `svd`) was computed: true on the exact routes, false on the subspace
    /// route (its caller measures ‖T‖ and the error in one dense pass, `denseNorms`).
    public var hasNorm: Bool
    public var route: ProductRoute
    /// Subspace iterations run (0 on the exact routes); set also when the route fell back.
    public var iterations: Int
    /// The subspace route did not converge within its budget and the exact route ran instead.
    public var fellBack: Bool
}

/// `T = X · Y` held by its stacked factors: X column-major [rows, inner] (stacked LoRA B columns), Y row-major
/// [inner, cols] (stacked LoRA A rows). Chooses a route by `ProductCostModel` for the best rank-k approximation,
/// and computes norms and errors against it by dense blocks when that is the cheaper exact route.
public struct StackedProduct: Sendable {
    public let rows: Int
    public let inner: Int
    public let cols: Int
    /// X column-major [rows, inner] (= row-major Xᵀ [inner, rows]).
    public let leftColumns: [Float]
    /// Y row-major [inner, cols].
    public let right: [Float]

    public init(leftColumns: [Float], right: [Float], rows: Int, inner: Int, cols: Int) throws {
        guard rows > 0, inner > 0, cols > 0, leftColumns.count == rows * inner, right.count == inner * cols else {
            throw KernelShapeError(kernel: "StackedProduct", problem: "factors of \(leftColumns.count) and "
                                   + "\(right.count) values for [\(rows), \(inner)] · [\(inner), \(cols)]")
        }
        self.rows = rows
        self.inner = inner
        self.cols = cols
        self.leftColumns = leftColumns
        self.right = right
    }

    /// The same product transposed, `Tᵀ = Yᵀ Xᵀ`: the arrays swap roles without a copy of their layout.
    var transposedProduct: StackedProduct {
        // Yᵀ column-major [cols, inner] is row-major Y; Xᵀ row-major [inner, rows] is column-major X.
        StackedProduct(checkedLeft: right, right: leftColumns, rows: cols, inner: inner, cols: rows)
    }

    /// For factors already checked (the transposed view of a checked product).
    private init(checkedLeft leftColumns: [Float], right: [Float], rows: Int, inner: Int, cols: Int) {
        self.rows = rows
        self.inner = inner
        self.cols = cols
        self.leftColumns = leftColumns
        self.right = right
    }

    /// The best rank-k approximation, balanced (√σ in each factor), signs fixed as `FactoredProduct` does.
    /// `route` nil lets `ProductCostModel` choose (`wantNorm` tells it whether the caller will also need ‖T‖_F,
    /// which the exact routes give for free and the subspace route leaves to one dense pass).
    public func truncatedSVD(rank k: Int, seed: UInt64, wantNorm: Bool, route: ProductRoute? = nil) throws -> StackedTruncation {
        let model = ProductCostModel(rows: rows, cols: cols, inner: inner, rank: max(k, 1), wantNorm: wantNorm)
        let chosen = route ?? model.cheapest
        switch chosen {
        case .factored:
            let product = try FactoredProduct(leftColumns: leftColumns, right: right, rows: rows, inner: inner, cols: cols)
            return StackedTruncation(svd: try product.truncatedSVD(rank: k), hasNorm: true, route: .factored,
                                     iterations: 0, fellBack: false)
        case .denseGram:
            return StackedTruncation(svd: try denseGramSVD(rank: k), hasNorm: true, route: .denseGram, iterations: 0,
                                     fellBack: false)
        case .subspace:
            let limit = route == nil ? model.subspaceIterationLimit : max(model.subspaceIterationLimit, 200)
            if let (svd, iterations) = try subspaceSVD(rank: k, seed: seed, maxIterations: limit) {
                // No norm here: a caller that wants one measures ‖T‖ and its error in one dense pass.
                return StackedTruncation(svd: svd, hasNorm: false, route: .subspace, iterations: iterations,
                                         fellBack: false)
            }
            var fallback = try truncatedSVD(rank: k, seed: seed, wantNorm: wantNorm, route: model.cheapestExact)
            fallback.iterations = limit
            fallback.fellBack = true
            return fallback
        }
    }

    /// sqrt(‖T‖² − Σσ²)/‖T‖ (0 when T = 0 or the kept triplets are all of T's rank).
    public static func floor(norm: Double, values: [Float], complete: Bool) -> Double {
        guard norm > 0, !complete else { return 0 }
        let captured = values.reduce(0.0) { $0 + Double($1) * Double($1) }
        return (max(norm * norm - captured, 0)).squareRoot() / norm
    }

    // MARK: Operator applications

    /// T · V for V row-major [cols, width]: [rows, width].
    func apply(_ v: [Float], width: Int) -> [Float] {
        let middle = BLAS.matmul(right, v, m: inner, n: width, k: cols)
        var result = [Float](repeating: 0, count: rows * width)
        leftColumns.withUnsafeBufferPointer { x in
            middle.withUnsafeBufferPointer { t in
                result.withUnsafeMutableBufferPointer { r in
                    guard let x = x.baseAddress, let t = t.baseAddress, let r = r.baseAddress else { return }
                    BLAS.gemm(.transpose, .none, m: rows, n: width, k: inner, a: x, lda: rows, b: t, c: r)
                }
            }
        }
        return result
    }

    /// Tᵀ · U for U row-major [rows, width]: [cols, width].
    func applyTransposed(_ u: [Float], width: Int) -> [Float] {
        let middle = BLAS.matmul(leftColumns, u, m: inner, n: width, k: rows)
        return BLAS.matmul(right, middle, m: cols, n: width, k: inner, transA: .transpose)
    }

    // MARK: Subspace iteration

    /// BRICKYARD_TRACE_SUBSPACE=1 prints each iteration's residual (diagnostics for tuning; off by default).
    static let traceIterations = getenv("BRICKYARD_TRACE_SUBSPACE") != nil

    /// Residual tolerance of a Ritz pair, relative to σ_1.
    public static let subspaceTolerance = 2e-6
    /// Ritz values whose extrapolated remaining rise is below this (relative to σ_1) are settled: the error of
    /// the result then exceeds the Eckart–Young floor by a relative ~1e-6 of ‖T‖² at most.
    public static let valueTolerance = 1e-6
    /// Settled values stop the iteration once the residuals are at most this (relative to σ_1).
    public static let settledResidual = 1e-4

    /// Randomized subspace iteration with Rayleigh–Ritz (Halko, Martinsson & Tropp 2011, alg. 4.4 + 5.1):
    /// Q = orth(T Ω); each iteration W = Tᵀ Q = Q_W R_W, the SVD of the small R_Wᵀ = U Σ Vᵀ gives Ritz triplets
    /// (Q U, Σ, Q_W V), and Z = T (Q_W V) their residuals ‖Z_i − σ_i u_i‖. Stops when the top-k residuals are at
    /// most `subspaceTolerance`·σ_1, or stagnate at Float rounding (no 30 % drop twice running, below 1e-4·σ_1);
    /// nil when `maxIterations` pass first. Ω is Gaussian from `seed`; every step is a fixed sequence of
    /// single-threaded BLAS calls, so the result is a function of (factors, k, seed).
    func subspaceSVD(rank k: Int, seed: UInt64, maxIterations: Int) throws -> (TruncatedSVD, Int)? {
        let bound = min(rows, cols, inner)
        let kept = min(max(k, 0), bound)
        guard kept > 0 else {
            return (TruncatedSVD(rank: 0, left: [], right: [], singularValues: [], frobeniusNorm: 0, floor: 0), 0)
        }
        let width = ProductCostModel(rows: rows, cols: cols, inner: inner, rank: kept, wantNorm: false).subspaceWidth
        var random = DeterministicRandom(seed: CounterRandom.streamKey(seed: seed, stream: 0x5355_4253))
        let omega = (0..<(cols * width)).map { _ in Float(random.nextGaussian()) }
        var q = try LinearAlgebra.thinQR(apply(omega, width: width), rows: rows, cols: width).q
        var previous = Double.infinity
        var stalls = 0
        var previousValues: [Double]?
        var previousSteps: [Double]?
        for iteration in 1...max(1, maxIterations) {
            let w = applyTransposed(q, width: width)
            let (qw, rw, _) = try LinearAlgebra.thinQR(w, rows: cols, cols: width)
            // Qᵀ T = R_Wᵀ Q_Wᵀ: SVD of the small R_Wᵀ.
            let small = FactoredProduct.transposed(rw, rows: width, cols: width)
            let (us, sigma, vst) = try LinearAlgebra.svd(small, rows: width, cols: width)
            let u = BLAS.matmul(q, us, m: rows, n: width, k: width)
            let v = BLAS.matmul(qw, vst, m: cols, n: width, k: width, transB: .transpose)
            let z = apply(v, width: width)
            let top = Double(sigma[0])
            var worst = 0.0
            for i in 0..<kept {
                var sum = 0.0
                for row in 0..<rows {
                    let difference = Double(z[row * width + i]) - Double(sigma[i]) * Double(u[row * width + i])
                    sum += difference * difference
                }
                worst = max(worst, sum.squareRoot())
            }
            let relative = top > 0 ? worst / top : 0
            stalls = relative > 0.7 * previous ? stalls + 1 : 0
            previous = relative
            // Ritz values rise monotonically towards σ_i, geometrically: the remaining rise is about
            // step·ρ/(1 − ρ) with ρ the ratio of successive steps (capped at 0.99, so slow spectra never pass).
            let values = (0..<kept).map { Double(sigma[$0]) }
            var valuesSettled = false
            if let last = previousValues {
                let steps = zip(values, last).map { abs($0 - $1) }
                if let earlier = previousSteps {
                    let noise = 4 * Double(Float.ulpOfOne) * top
                    valuesSettled = zip(steps, earlier).allSatisfy { step, before in
                        guard step > noise else { return true }
                        let ratio = min(step / max(before, .leastNonzeroMagnitude), 0.99)
                        return step * ratio / (1 - ratio) <= Self.valueTolerance * top
                    }
                }
                previousSteps = steps
            }
            previousValues = values
            if StackedProduct.traceIterations {
                FileHandle.standardError.write(Data(("subspace iteration \(iteration) residual \(relative) settled "
                    + "\(valuesSettled) sigma1 \(top) sigmak \(sigma[kept - 1]) sigmal \(sigma[width - 1])\n").utf8))
            }
            if relative <= Self.subspaceTolerance || (stalls >= 2 && relative < 1e-4)
                || (valuesSettled && relative <= Self.settledResidual) || top == 0 {
                return (Self.balanced(u: u, sigma: sigma, v: v, width: width, kept: kept, rows: rows, cols: cols),
                        iteration)
            }
            q = try LinearAlgebra.thinQR(z, rows: rows, cols: width).q
        }
        return nil
    }

    /// Balanced factors from row-major U [rows, width], V [cols, width] and σ, keeping the first `kept` columns.
    static func balanced(u: [Float], sigma: [Float], v: [Float], width: Int, kept: Int, rows: Int,
                         cols: Int) -> TruncatedSVD {
        let largest = Double(sigma.first ?? 0)
        var left = [Float](repeating: 0, count: rows * kept)
        var right = [Float](repeating: 0, count: kept * cols)
        var values = [Float](repeating: 0, count: kept)
        for t in 0..<kept where largest > 0 && Double(sigma[t]) > TopSingularTriplets.relativeCutoff * largest {
            values[t] = sigma[t]
            let root = sigma[t].squareRoot()
            for i in 0..<rows { left[i * kept + t] = u[i * width + t] * root }
            for j in 0..<cols { right[t * cols + j] = v[j * width + t] * root }
        }
        FactoredProduct.fixSigns(left: &left, right: &right, rank: kept, rows: rows, cols: cols)
        return TruncatedSVD(rank: kept, left: left, right: right, singularValues: values, frobeniusNorm: 0, floor: 0)
    }

    // MARK: Dense Gram route

    /// Columns of T formed per dense block: about 16 MB of Float.
    static func blockLength(_ other: Int) -> Int { max(1, (4 << 20) / max(other, 1)) }

    /// Exact top-k via T formed in blocks of its long side and the Gram on its short side, accumulated in Double
    /// block by block (each block's Gram is one `ssyrk`); `dsyevr` for the top k eigenpairs; the other side's
    /// vectors from the factors (`X (Y v)`), σ = ‖T v‖.
    func denseGramSVD(rank k: Int) throws -> TruncatedSVD {
        if rows < cols {
            // Gram on the row side: work on Tᵀ and swap the factors back.
            var result = try transposedProduct.denseGramSVD(rank: k)
            let kept = result.rank
            let left = FactoredProduct.transposed(result.right, rows: kept, cols: rows)
            let right = FactoredProduct.transposed(result.left, rows: cols, cols: kept)
            result.left = left
            result.right = right
            FactoredProduct.fixSigns(left: &result.left, right: &result.right, rank: kept, rows: rows, cols: cols)
            return result
        }
        let p = cols
        let kept = min(max(k, 0), min(p, inner))
        let (gram, normSquared) = gramOfColumns()
        guard kept > 0 else {
            return TruncatedSVD(rank: 0, left: [], right: [], singularValues: [], frobeniusNorm: normSquared.squareRoot(),
                                floor: normSquared > 0 ? 1 : 0)
        }
        var matrix = gram
        var found: Int32 = 0
        var eigenvalues = [Double](repeating: 0, count: p)
        var eigenvectors = [Double](repeating: 0, count: p * kept)
        var support = [Int32](repeating: 0, count: 2 * kept)
        let info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "I")),
                                  CChar(UInt8(ascii: "L")), Int32(p), &matrix, Int32(p), 0, 0, Int32(p - kept + 1),
                                  Int32(p), 0, &found, &eigenvalues, &eigenvectors, Int32(p), &support)
        guard info == 0 else { throw LinearAlgebraError(routine: "dsyevr", info: info) }
        guard found == Int32(kept) else { throw LinearAlgebraError(routine: "dsyevr", info: -1000 - found) }
        // Right vectors V row-major [cols, kept], descending: slot t takes eigenpair kept − 1 − t.
        var v = [Float](repeating: 0, count: p * kept)
        for t in 0..<kept {
            let source = kept - 1 - t
            for j in 0..<p { v[j * kept + t] = Float(eigenvectors[source * p + j]) }
        }
        let w = apply(v, width: kept)
        var sigma = [Float](repeating: 0, count: kept)
        var u = [Float](repeating: 0, count: rows * kept)
        for t in 0..<kept {
            var sum = 0.0
            for i in 0..<rows { sum += Double(w[i * kept + t]) * Double(w[i * kept + t]) }
            let s = sum.squareRoot()
            sigma[t] = Float(s)
            guard s > 0 else { continue }
            for i in 0..<rows { u[i * kept + t] = Float(Double(w[i * kept + t]) / s) }
        }
        var result = Self.balanced(u: u, sigma: sigma, v: v, width: kept, kept: kept, rows: rows, cols: cols)
        let norm = normSquared.squareRoot()
        result.frobeniusNorm = norm
        result.floor = Self.floor(norm: norm, values: result.singularValues, complete: kept >= min(p, inner))
        return result
    }

    /// TᵀT [cols, cols] (column-major, lower triangle filled, Double) and ‖T‖_F², T formed in row blocks.
    func gramOfColumns() -> ([Double], Double) {
        let pass = densePass(approximationLeft: nil, approximationRight: nil, rank: 0, gram: true)
        return (pass.gram ?? [], pass.target * pass.target)
    }

    // MARK: Norms by dense blocks

    /// One pass over T in row blocks: ‖T‖_F, ‖T − B'A'‖_F (B' row-major [rows, rank], A' [rank, cols]; without
    /// them the difference is ‖T‖) and optionally TᵀT (column-major [cols, cols], lower triangle, Double: each
    /// block's Gram by one `ssyrk`, accumulated in block order). Each block is T's, then −B'A' is added by a
    /// second GEMM with beta 1, so the difference is formed entry by entry (an exact result reads at Float
    /// rounding). Cost 2·out·in·(R + k) (+ out·in² for the Gram); one block of ~16 MB in memory.
    func densePass(approximationLeft: [Float]?, approximationRight: [Float]?, rank: Int,
                   gram wantGram: Bool) -> (target: Double, difference: Double, gram: [Double]?) {
        let blockRows = min(rows, Self.blockLength(cols))
        var block = [Float](repeating: 0, count: blockRows * cols)
        var blockGram = [Float](repeating: 0, count: wantGram ? cols * cols : 0)
        var gram = [Double](repeating: 0, count: wantGram ? cols * cols : 0)
        var targetSquared = 0.0, differenceSquared = 0.0
        let approxLeft = approximationLeft ?? [], approxRight = approximationRight ?? []
        let subtract = rank > 0 && approxLeft.count == rows * rank && approxRight.count == rank * cols
        leftColumns.withUnsafeBufferPointer { x in
            right.withUnsafeBufferPointer { y in
                approxLeft.withUnsafeBufferPointer { bp in
                    approxRight.withUnsafeBufferPointer { ap in
                        block.withUnsafeMutableBufferPointer { c in
                            guard let x = x.baseAddress, let y = y.baseAddress, let c = c.baseAddress else { return }
                            var start = 0
                            while start < rows {
                                let height = min(blockRows, rows - start)
                                BLAS.gemm(.transpose, .none, m: height, n: cols, k: inner, a: x + start, lda: rows,
                                          b: y, c: c)
                                let part = Double(BLAS.nrm2(height * cols, c))
                                targetSquared += part * part
                                if wantGram {
                                    blockGram.withUnsafeMutableBufferPointer { g in
                                        guard let g = g.baseAddress else { return }
                                        // Row-major block [height, cols] is column-major [cols, height]: B Bᵀ.
                                        cblas_ssyrk(CblasColMajor, CblasLower, CblasNoTrans, Int32(cols), Int32(height),
                                                    1, c, Int32(cols), 0, g, Int32(cols))
                                    }
                                    for j in 0..<cols {
                                        for i in j..<cols { gram[j * cols + i] += Double(blockGram[j * cols + i]) }
                                    }
                                }
                                if subtract, let b = bp.baseAddress, let a = ap.baseAddress {
                                    BLAS.gemm(.none, .none, m: height, n: cols, k: rank, alpha: -1, a: b + start * rank,
                                              b: a, beta: 1, c: c)
                                    let difference = Double(BLAS.nrm2(height * cols, c))
                                    differenceSquared += difference * difference
                                }
                                start += height
                            }
                        }
                    }
                }
            }
        }
        let target = targetSquared.squareRoot()
        return (target, subtract ? differenceSquared.squareRoot() : target, wantGram ? gram : nil)
    }

    /// ‖T‖_F and ‖T − B'A'‖_F by dense row blocks (see `densePass`).
    public func denseNorms(approximationLeft: [Float]?, approximationRight: [Float]?,
                           rank: Int) -> (target: Double, difference: Double) {
        let pass = densePass(approximationLeft: approximationLeft, approximationRight: approximationRight, rank: rank,
                             gram: false)
        return (pass.target, pass.difference)
    }

    // MARK: Quality figures

    /// ‖T − B'A'‖/‖T‖ and the Eckart–Young floor at `spectrumRank` (nil: no floor), by the cheapest exact route
    /// for the error (QR of [X | B'] while the stacked rank is small, else one dense pass, linear in R) and the
    /// cheapest route for T's top values (the same factorization; the subspace iteration; or the Gram of the
    /// same dense pass).
    /// `spectrumRoute` forces the spectrum's route (tests); nil lets the cost model choose.
    public func quality(approximationLeft: [Float], approximationRight: [Float], rank: Int, spectrumRank: Int?,
                        seed: UInt64, spectrumRoute: ProductRoute? = nil) throws -> ProductQuality {
        let errorModel = ProductCostModel(rows: rows, cols: cols, inner: inner + rank, rank: max(spectrumRank ?? 1, 1),
                                          wantNorm: true)
        if spectrumRoute == .factored || (spectrumRoute == nil && errorModel.cheapest == .factored) {
            let comparison = try LowRankError.compare(
                targetLeftColumns: leftColumns, targetRight: right, targetRank: inner, approximationLeft: approximationLeft,
                approximationRight: approximationRight, rank: rank, rows: rows, cols: cols, wantSpectrum: false,
                route: .factored, spectrumRank: spectrumRank)
            return ProductQuality(relativeError: comparison.relativeError, targetNorm: comparison.targetNorm,
                                  floor: comparison.floor, route: .factored)
        }
        guard let spectrumRank else {
            let norms = denseNorms(approximationLeft: approximationLeft, approximationRight: approximationRight, rank: rank)
            return ProductQuality(relativeError: norms.target > 0 ? norms.difference / norms.target : 0,
                                  targetNorm: norms.target, floor: nil, route: .denseGram)
        }
        let model = ProductCostModel(rows: rows, cols: cols, inner: inner, rank: max(spectrumRank, 1), wantNorm: true)
        var values: [Float]?
        var route = ProductRoute.denseGram
        if (spectrumRoute ?? model.cheapest) == .subspace,
           let (svd, _) = try subspaceSVD(rank: spectrumRank, seed: seed, maxIterations: model.subspaceIterationLimit) {
            values = svd.singularValues
            route = .subspace
        }
        let bound = min(rows, cols, inner)
        if let values {
            let norms = denseNorms(approximationLeft: approximationLeft, approximationRight: approximationRight, rank: rank)
            return ProductQuality(relativeError: norms.target > 0 ? norms.difference / norms.target : 0,
                                  targetNorm: norms.target,
                                  floor: Self.floor(norm: norms.target, values: values, complete: spectrumRank >= bound),
                                  route: route)
        }
        // Dense pass with the Gram on the short side (Tᵀ when T is wide), then the top eigenvalues only.
        let wide = rows < cols
        let product = wide ? transposedProduct : self
        let left = wide ? FactoredProduct.transposed(approximationRight, rows: rank, cols: cols) : approximationLeft
        let rightFactor = wide ? FactoredProduct.transposed(approximationLeft, rows: rows, cols: rank) : approximationRight
        let pass = product.densePass(approximationLeft: left, approximationRight: rightFactor, rank: rank, gram: true)
        let p = product.cols
        let count = min(max(spectrumRank, 0), min(p, inner))
        var eigenvalues = [Double](repeating: 0, count: p)
        if count > 0, var matrix = pass.gram {
            var found: Int32 = 0
            var unused = [Double](repeating: 0, count: 1)
            var support = [Int32](repeating: 0, count: 2 * count)
            let info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "I")),
                                      CChar(UInt8(ascii: "L")), Int32(p), &matrix, Int32(p), 0, 0, Int32(p - count + 1),
                                      Int32(p), 0, &found, &eigenvalues, &unused, 1, &support)
            guard info == 0 else { throw LinearAlgebraError(routine: "dsyevr", info: info) }
        }
        let top = (0..<count).map { Float(max(eigenvalues[count - 1 - $0], 0).squareRoot()) }
        return ProductQuality(relativeError: pass.target > 0 ? pass.difference / pass.target : 0, targetNorm: pass.target,
                              floor: Self.floor(norm: pass.target, values: top, complete: spectrumRank >= bound),
                              route: .denseGram)
    }
}

/// Quality figures of an approximation of a stacked product.
public struct ProductQuality: Sendable {
    /// ‖T − B'A'‖_F / ‖T‖_F (0 when T = 0).
    public var relativeError: Double
    public var targetNorm: Double
    /// Relative Eckart–Young floor at the requested rank, when requested.
    public var floor: Double?
    /// How T's spectrum (or, without one, the error) was computed.
    public var route: ProductRoute
}

extension StackedProduct {}
