import COpenBLAS

/// How far a low-rank approximation `B'A'` is from a low-rank target `T = B A`, without forming either.
public struct LowRankComparison: Sendable {
    /// ‖B'A' − T‖_F / ‖T‖_F (0 when T = 0).
    public var relativeError: Double
    /// ‖T‖_F.
    public var targetNorm: Double
    /// Every singular value of T (descending), when requested and affordable; else nil.
    public var targetSingularValues: [Float]?
    /// With `spectrumRank`: T's top singular values (at most that many) and the relative Eckart–Young floor at
    /// that rank, from the same factorization (no cap on the stacked rank).
    public var topValues: [Float]? = nil
    public var floor: Double? = nil
}

/// Relative Frobenius error of a low-rank result against a low-rank target.
///
/// METHODS.md gives the Gram form ‖XY‖² = sum((XᵀX) ⊙ (YYᵀ)) for X = [B | B'], Y = [A ; −A']. In Float that
/// sum cancels catastrophically near zero error (an exact method would read ~1e-3), so this computes the same
/// quantity through Householder factors instead: ‖XY‖_F = ‖R_X R_Yᵀ‖_F, a norm of a small matrix with no
/// cancellation, accurate to Float rounding of the inputs (~1e-7 relative for exact methods). The target's
/// factors are the leading block of X and Y, so the same factorization yields ‖T‖_F and T's singular values
/// (for the Eckart–Young floor). Cost O((out + in)(R + k)²) + O(R³) for the spectrum.
public enum LowRankError {
    /// How the error is computed: both routes give the same value up to Float rounding.
    public enum Route: Sendable {
        /// Factored while the SVD floor is wanted and affordable, or while it is the cheaper route.
        case automatic
        /// QR of the stacked factors (cost grows with the square of the stacked rank); yields the spectrum.
        case factored
        /// `T − B'A'` formed densely one block of rows at a time (cost linear in the stacked rank); no spectrum.
        case denseBlocks
    }

    /// Spectra of targets with more than this many stacked ranks are skipped: the SVD of the R×R core is O(R³),
    /// and at R = 4096 it already cost more than a lego merge of the module.
    public static let spectrumRankLimit = 2048

    /// - Parameters: target B column-major [rows, targetRank] (row-major Bᵀ) and A row-major [targetRank, cols];
    ///   approximation B' [rows, rank] and A' [rank, cols], row-major (as results are stored).
    public static func compare(targetLeftColumns targetLeft: [Float], targetRight: [Float], targetRank: Int,
                               approximationLeft: [Float], approximationRight: [Float], rank: Int,
                               rows: Int, cols: Int, wantSpectrum: Bool,
                               route: Route = .automatic, spectrumRank: Int? = nil) throws -> LowRankComparison {
        let inner = targetRank + rank
        guard targetLeft.count == rows * targetRank, targetRight.count == targetRank * cols,
              approximationLeft.count == rows * rank, approximationRight.count == rank * cols else {
            throw KernelShapeError(kernel: "LowRankError", problem: "factor sizes do not match target rank "
                                   + "\(targetRank), rank \(rank) and [\(rows), \(cols)]")
        }
        guard inner > 0, rows > 0, cols > 0 else {
            return LowRankComparison(relativeError: 0, targetNorm: 0, targetSingularValues: wantSpectrum ? [] : nil)
        }
        // X = [B | B'] column-major [rows, inner]: the target's columns, then B' transposed.
        let left = targetLeft + FactoredProduct.transposed(approximationLeft, rows: rows, cols: rank)
        var right = targetRight + approximationRight
        right.withUnsafeMutableBufferPointer { r in
            guard let r = r.baseAddress else { return }
            BLAS.scal(rank * cols, alpha: -1, x: r + targetRank * cols)
        }
        let dense = switch route {
        case .automatic:
            prefersDenseBlocks(rows: rows, cols: cols, inner: inner)
                && (!wantSpectrum || targetRank > spectrumRankLimit)
        case .factored: false
        case .denseBlocks: true
        }
        if dense {
            // Large pools: the factored route's O((rows + cols)·inner²) would outgrow the merge itself.
            let (differenceNorm, targetNorm) = denseNorms(left: left, right: right, rows: rows, cols: cols,
                                                          targetRank: targetRank, inner: inner)
            return LowRankComparison(relativeError: targetNorm > 0 ? differenceNorm / targetNorm : 0,
                                     targetNorm: targetNorm, targetSingularValues: nil)
        }
        let product = try FactoredProduct(leftColumns: left, right: right, rows: rows, inner: inner, cols: cols)

        let difference = product.core(prefix: inner)
        let target = product.core(prefix: targetRank)
        let differenceNorm = frobenius(difference.values)
        let targetNorm = frobenius(target.values)
        var spectrum: [Float]?
        if let spectrumRank {
            // Top-k only (Gram + dsyevr on the core): no cap on the stacked rank.
            var result = LowRankComparison(relativeError: targetNorm > 0 ? differenceNorm / targetNorm : 0,
                                           targetNorm: targetNorm, targetSingularValues: nil)
            let p = min(target.rows, target.cols)
            let count = min(max(spectrumRank, 0), p)
            if count > 0 {
                let top = try TopSingularTriplets(of: target.values, rows: target.rows, cols: target.cols, count: count)
                result.topValues = top.values
                result.floor = top.tailFraction
            } else {
                result.topValues = []
                result.floor = targetNorm > 0 ? 1 : 0
            }
            return result
        }
        if wantSpectrum && min(target.rows, target.cols) <= spectrumRankLimit {
            spectrum = try singularValues(target.values, rows: target.rows, cols: target.cols)
        }
        return LowRankComparison(relativeError: targetNorm > 0 ? differenceNorm / targetNorm : 0,
                                 targetNorm: targetNorm, targetSingularValues: spectrum)
    }

    /// Whether forming `T − B'A'` densely, one block of rows at a time (2·rows·cols·inner flops, one block in
    /// memory), is cheaper than factoring the stacked factors (about 2·(rows + cols)·inner² flops for the two QRs).
    /// True for pools whose stacked rank exceeds rows·cols / (rows + cols): e.g. R > 2048 on a 4096×4096 module.
    /// That route yields no spectrum.
    static func prefersDenseBlocks(rows: Int, cols: Int, inner: Int) -> Bool {
        Double(rows) * Double(cols) < Double(rows + cols) * Double(inner)
    }

    /// Rows per dense block: about 16 MB of Float.
    static func denseBlockRows(cols: Int) -> Int { max(1, (4 << 20) / max(cols, 1)) }

    /// ‖X Y‖_F and ‖X[:, :targetRank] Y[:targetRank, :]‖_F by dense row blocks. X column-major [rows, inner],
    /// Y row-major [inner, cols] whose trailing rows are the negated approximation. Each block is the target
    /// block, then the approximation added by a second GEMM with beta 1, so the difference is formed entry by
    /// entry (no cancellation between norms). Block sizes depend only on the shape: the result is deterministic.
    static func denseNorms(left: [Float], right: [Float], rows: Int, cols: Int, targetRank: Int,
                           inner: Int) -> (difference: Double, target: Double) {
        let blockRows = min(rows, denseBlockRows(cols: cols))
        var block = [Float](repeating: 0, count: blockRows * cols)
        var differenceSquared = 0.0, targetSquared = 0.0
        left.withUnsafeBufferPointer { x in
            right.withUnsafeBufferPointer { y in
                block.withUnsafeMutableBufferPointer { c in
                    guard let x = x.baseAddress, let y = y.baseAddress, let c = c.baseAddress else { return }
                    var start = 0
                    while start < rows {
                        let height = min(blockRows, rows - start)
                        // Row-major view of column-major X is Xᵀ [inner, rows]: op = transpose, offset = first row.
                        BLAS.gemm(.transpose, .none, m: height, n: cols, k: targetRank, a: x + start, lda: rows,
                                  b: y, ldb: cols, beta: 0, c: c, ldc: cols)
                        let targetPart = Double(BLAS.nrm2(height * cols, c))
                        targetSquared += targetPart * targetPart
                        BLAS.gemm(.transpose, .none, m: height, n: cols, k: inner - targetRank,
                                  a: x + targetRank * rows + start, lda: rows, b: y + targetRank * cols, ldb: cols,
                                  beta: 1, c: c, ldc: cols)
                        let differencePart = Double(BLAS.nrm2(height * cols, c))
                        differenceSquared += differencePart * differencePart
                        start += height
                    }
                }
            }
        }
        return (differenceSquared.squareRoot(), targetSquared.squareRoot())
    }

    /// Frobenius norm via nrm2 (scaled, single-threaded: no overflow, thread-count independent).
    static func frobenius(_ values: [Float]) -> Double {
        values.withUnsafeBufferPointer { v in
            guard let v = v.baseAddress else { return 0 }
            return Double(BLAS.nrm2(values.count, v))
        }
    }

    /// Singular values (descending) of a column-major [rows, cols] matrix.
    public static func singularValues(_ matrix: [Float], rows: Int, cols: Int) throws -> [Float] {
        let p = min(rows, cols)
        guard p > 0 else { return [] }
        var work = matrix
        var s = [Float](repeating: 0, count: p)
        var unusedU: Float = 0, unusedVt: Float = 0
        let info = LAPACKE_sgesdd(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "N")), Int32(rows), Int32(cols), &work,
                                  Int32(rows), &s, &unusedU, 1, &unusedVt, 1)
        guard info == 0 else { throw LinearAlgebraError(routine: "sgesdd", info: info) }
        return s
    }
}
