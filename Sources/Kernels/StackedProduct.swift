import COpenBLAS
import Foundation

/// How the top singular triplets, the norm and the error of a stacked product `T = X · Y` are computed
/// (docs/kernels.md, "svd routes"). Every route gives the Eckart–Young truncation; they differ only in cost.
public enum ProductRoute: String, Sendable, CaseIterable, Codable {
    /// Householder QR of both factors and the top triplets of the small core (`FactoredProduct`): exact,
    /// cost ~2·R·(out·min(out, R) + in·min(in, R)), quadratic in the stacked rank R.
    case factored
    /// Randomized block Krylov on the operator `v ↦ X (Y v)` (T never formed), Rayleigh–Ritz on the whole Krylov
    /// basis, stopped when the result's relative error is within `StackedProduct.krylovTolerance` of the floor:
    /// each step 4·b·R·(out + in) flops, linear in R.
    case krylov
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
    /// Whether ‖T‖_F must be exact (`report: exact`): the Krylov route then adds one dense pass.
    public var wantNorm: Bool

    /// Block steps the Krylov route is budgeted for when routes are compared (the real count is data-driven;
    /// 4–8 on the pools measured in bench/results/scale.md).
    public static let krylovStepsEstimate = 8
    static let doubleFactor = 2.0

    public init(rows: Int, cols: Int, inner: Int, rank: Int, wantNorm: Bool) {
        self.rows = rows
        self.cols = cols
        self.inner = inner
        self.rank = rank
        self.wantNorm = wantNorm
    }

    /// Block width b of the Krylov route: k + max(8, k/2) (block ≥ k gives the gap-independent guarantee; the
    /// extra columns speed up the top-k values), at most the rank bound.
    public var krylovWidth: Int { min(rank + max(8, rank / 2), min(rows, cols, inner)) }

    /// One dense pass forming T: 2·out·in·R.
    public var densePass: Double { 2 * Double(rows) * Double(cols) * Double(inner) }

    /// One operator application of width w (T·V or Tᵀ·U): 2·w·R·(out + in).
    public func application(width: Int) -> Double { 2 * Double(width) * Double(inner) * Double(rows + cols) }

    /// Modelled flops of block Krylov step j (1-based): Tᵀ Q_j and T W_j, Gram–Schmidt against the j·b basis
    /// (three passes), and the thin QR of the j·b wide W for Rayleigh–Ritz.
    public func krylovStep(_ j: Int) -> Double {
        let b = Double(krylovWidth), m = Double(j) * b
        return 2 * application(width: krylovWidth) + 12 * Double(rows) * m * b + 4 * Double(cols) * m * m
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
        case .krylov:
            let steps = (1...Self.krylovStepsEstimate).reduce(0.0) { $0 + krylovStep($1) }
            return application(width: krylovWidth) + steps + (wantNorm ? densePass : 0)
        case .denseGram:
            let p = Double(min(rows, cols)), q = Double(max(rows, cols))
            return densePass + p * p * q + 4.0 / 3.0 * p * p * p * Self.doubleFactor
        }
    }

    /// The cheapest exact route (factored or dense Gram): the Krylov route's fallback.
    public var cheapestExact: ProductRoute { cost(.factored) <= cost(.denseGram) ? .factored : .denseGram }

    /// The cheapest route; ties go to the exact ones.
    public var cheapest: ProductRoute {
        let exact = cheapestExact
        return cost(.krylov) < cost(exact) ? .krylov : exact
    }

    /// Steps the Krylov route may run before it falls back to the cheapest exact route: as many as that route
    /// would cost (so a spectrum that will not settle costs at most about twice the exact route), at least 6.
    public var krylovStepLimit: Int {
        let budget = cost(cheapestExact) - application(width: krylovWidth) - (wantNorm ? densePass : 0)
        var spent = 0.0, steps = 0
        while steps < 1000, spent + krylovStep(steps + 1) <= budget {
            steps += 1
            spent += krylovStep(steps)
        }
        return max(6, steps)
    }
}

/// What a stacked truncation produced.
public struct StackedTruncation: Sendable {
    public var svd: TruncatedSVD
    /// Whether ‖T‖_F (and so the floor in `svd`) was computed exactly: true on the exact routes, false on the
    /// Krylov route (its caller measures or estimates ‖T‖: `ModuleQuality`).
    public var hasNorm: Bool
    public var route: ProductRoute
    /// Krylov steps run (0 on the exact routes); set also when the route fell back.
    public var iterations: Int
    /// The Krylov route did not settle within its budget and the exact route ran instead.
    public var fellBack: Bool
    /// Krylov route: ‖QᵀT‖_F² over its final left basis Q (exact part of ‖T‖²) and that basis (row-major blocks),
    /// so the norm estimate only samples what lies outside it.
    public var captured: KrylovCapture? = nil
}

/// The part of T a Krylov basis captured exactly (see `StackedTruncation.captured`).
public struct KrylovCapture: Sendable {
    public var squaredNorm: Double
    /// Orthonormal blocks, row-major [rows, widths[j]].
    public var basis: [[Float]]
    public var widths: [Int]
    /// The product the basis belongs to (its factor arrays are shared, not copied), so the quality figures need
    /// not stack the factors again.
    public var product: StackedProduct? = nil
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
    /// `route` nil lets `ProductCostModel` choose (`wantNorm`: the caller needs ‖T‖_F exactly, which the exact
    /// routes give for free and the Krylov route leaves to one dense pass).
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
        case .krylov:
            let limit = route == nil ? model.krylovStepLimit : max(model.krylovStepLimit, 200)
            if let outcome = try krylovSVD(rank: k, seed: seed, maxSteps: limit) {
                return StackedTruncation(svd: outcome.svd, hasNorm: false, route: .krylov, iterations: outcome.steps,
                                         fellBack: false,
                                         captured: KrylovCapture(squaredNorm: outcome.capturedSquared,
                                                                 basis: outcome.basis, widths: outcome.widths,
                                                                 product: self))
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

    // MARK: Ritz factors

    /// BRICKYARD_TRACE_KRYLOV=1 prints each block Krylov step's captured energy (diagnostics; off by default).
    static let traceIterations = getenv("BRICKYARD_TRACE_KRYLOV") != nil

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
    /// cheapest route for T's top values (the same factorization; block Krylov; or the Gram of the
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
        if (spectrumRoute ?? model.cheapest) == .krylov,
           let outcome = try krylovSVD(rank: spectrumRank, seed: seed, maxSteps: model.krylovStepLimit) {
            values = outcome.svd.singularValues
            route = .krylov
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
    /// Standard error of `relativeError` when it is a randomized estimate (`QualityEstimator`); nil when exact.
    public var relativeErrorStandardError: Double? = nil
    /// Standard error of `floor` when it is a randomized estimate; nil when exact.
    public var floorStandardError: Double? = nil
}

