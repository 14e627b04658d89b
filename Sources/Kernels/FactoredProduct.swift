import COpenBLAS

/// A product `P = X · Y` (X [rows, inner], Y row-major [inner, cols]) held through Householder
/// factorizations `X = Q_X R_X`, `Yᵀ = Q_Y R_Y`, so that `P = Q_X (R_X R_Yᵀ) Q_Yᵀ` and everything about P
/// (singular values, Frobenius norm, truncated SVD) comes from the small core `R_X R_Yᵀ` [≤inner, ≤inner].
/// P itself ([rows, cols]) is never formed. Cost O((rows + cols) · inner²), memory O((rows + cols) · inner).
///
/// Layout: X is taken column-major (column j contiguous: that is how stacked LoRA B columns are built), and a
/// row-major Y [inner, cols] is the column-major Yᵀ, so both QRs are `sgeqrf` on the caller's layout with no
/// transposition (LAPACK's LQ, the alternative for a row-major X, measured 2× slower here). The QRs use `sgeqrt` with
/// block size 64 (compact-WY blocks kept for `sgemqrt`): 1.5× faster than `sgeqrf` (block size 32) on [4096, 1024].
/// LAPACK is called through LAPACKE's `_work` entry points: the plain ones first scan every input for NaN (3 % of a
/// lego run at 64 adapters, on each adapter's [out, 16] and [in, 16] factors); the same Fortran routines run either
/// way, so the bits do not change. Factors reach this type finite (`TensorReader` rejects non-finite values).
public struct FactoredProduct: Sendable {
    public let rows: Int
    public let inner: Int
    public let cols: Int
    /// Rank bounds of the two factors: min(inner, rows) and min(inner, cols).
    public let leftRank: Int
    public let rightRank: Int
    /// Householder block size of the QRs.
    static let householderBlockSize = 64
    /// sgeqrt output on column-major X [rows, inner] (reflectors below R_X) and its block factors.
    private let leftReflectors: [Float]
    private let leftBlocks: [Float]
    /// sgeqrt output on the column-major [cols, inner] view of Y (reflectors below R_Y) and its block factors.
    private let rightReflectors: [Float]
    private let rightBlocks: [Float]
    /// Column-major [leftRank, inner] upper-trapezoidal R_X.
    private let leftTriangle: [Float]
    /// Column-major [rightRank, inner] upper-trapezoidal R_Y.
    private let rightTriangle: [Float]

    /// - Parameters: `leftColumns`: X column-major [rows, inner] (row-major Xᵀ); `right`: Y row-major [inner, cols].
    public init(leftColumns: [Float], right: [Float], rows: Int, inner: Int, cols: Int) throws {
        guard rows > 0, inner > 0, cols > 0, leftColumns.count == rows * inner, right.count == inner * cols else {
            throw KernelShapeError(kernel: "FactoredProduct", problem: "factors of \(leftColumns.count) and \(right.count) "
                                   + "values for [\(rows), \(inner)] · [\(inner), \(cols)]")
        }
        self.rows = rows
        self.inner = inner
        self.cols = cols
        leftRank = min(inner, rows)
        rightRank = min(inner, cols)
        (leftReflectors, leftBlocks, leftTriangle) = try Self.householder(leftColumns, rows: rows, cols: inner)
        (rightReflectors, rightBlocks, rightTriangle) = try Self.householder(right, rows: cols, cols: inner)
    }

    /// Convenience for a row-major X [rows, inner] (transposed once into columns).
    public init(left: [Float], right: [Float], rows: Int, inner: Int, cols: Int) throws {
        guard left.count == rows * inner else {
            throw KernelShapeError(kernel: "FactoredProduct", problem: "left factor has \(left.count) values for "
                                   + "[\(rows), \(inner)]")
        }
        try self.init(leftColumns: Self.transposed(left, rows: rows, cols: inner), right: right, rows: rows,
                      inner: inner, cols: cols)
    }

    /// Row-major [rows, cols] → row-major [cols, rows], one strided copy per column.
    public static func transposed(_ matrix: [Float], rows: Int, cols: Int) -> [Float] {
        var result = [Float](repeating: 0, count: matrix.count)
        matrix.withUnsafeBufferPointer { m in
            result.withUnsafeMutableBufferPointer { r in
                guard let m = m.baseAddress, let r = r.baseAddress else { return }
                for j in 0..<cols { BLAS.copy(rows, x: m + j, strideX: cols, y: r + j * rows) }
            }
        }
        return result
    }

    /// Block size of the QR of a matrix whose smaller side is `p` (sgeqrt needs 1 ≤ nb ≤ min(rows, cols)).
    private static func blockSize(for p: Int) -> Int { max(1, min(householderBlockSize, p)) }

    /// sgeqrt of a column-major [rows, cols] matrix: (reflectors, block factors T [nb, min], R as column-major
    /// [min, cols]).
    private static func householder(_ matrix: [Float], rows: Int, cols: Int) throws -> ([Float], [Float], [Float]) {
        let p = min(rows, cols)
        let nb = blockSize(for: p)
        var work = matrix
        var blocks = [Float](repeating: 0, count: nb * p)
        var scratch = [Float](repeating: 0, count: nb * cols)
        var info = LAPACKE_sgeqrt_work(LAPACK_COL_MAJOR, Int32(rows), Int32(cols), Int32(nb), &work, Int32(rows),
                                       &blocks, Int32(nb), &scratch)
        guard info == 0 else { throw LinearAlgebraError(routine: "sgeqrt", info: info) }
        var triangle = [Float](repeating: 0, count: p * cols)
        info = LAPACKE_slacpy_work(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "U")), Int32(p), Int32(cols), work,
                                   Int32(rows), &triangle, Int32(p))
        guard info == 0 else { throw LinearAlgebraError(routine: "slacpy", info: info) }
        return (work, blocks, triangle)
    }

    /// The core of the product of the first `prefix` inner indices only, `X[:, :prefix] · Y[:prefix, :]
    /// = Q_X · core · Q_Yᵀ`: column-major [min(prefix, leftRank), min(prefix, rightRank)]. Householder QR
    /// processes columns in order, so the leading columns' factor is a block of the full one.
    public func core(prefix: Int) -> (values: [Float], rows: Int, cols: Int) {
        let q = min(max(prefix, 0), inner)
        let m = min(q, leftRank), n = min(q, rightRank)
        guard m > 0, n > 0 else { return ([], m, n) }
        var values = [Float](repeating: 0, count: m * n)
        if m == q && n == q {
            // Both leading blocks are square upper triangles: C = R_X R_Yᵀ by one strmm, half the GEMM's flops.
            _ = LAPACKE_slacpy_work(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "U")), Int32(q), Int32(q), leftTriangle,
                                    Int32(leftRank), &values, Int32(q))
            cblas_strmm(CblasColMajor, CblasRight, CblasUpper, CblasTrans, CblasNonUnit, Int32(q), Int32(q), 1,
                        rightTriangle, Int32(rightRank), &values, Int32(q))
        } else {
            cblas_sgemm(CblasColMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(q), 1,
                        leftTriangle, Int32(leftRank), rightTriangle, Int32(rightRank), 0, &values, Int32(m))
        }
        return (values, m, n)
    }

    /// The best rank-k approximation of P (Eckart–Young), balanced: `left = Q_X U_k Σ_k^½` row-major
    /// [rows, k'], `right = Σ_k^½ V_kᵀ Q_Yᵀ` row-major [k', cols], with k' = min(k, leftRank, rightRank), the
    /// top k' singular values, ‖P‖_F and the relative Eckart–Young floor at rank k'. Only the top k' triplets of
    /// the core are computed (`TopSingularTriplets`). Signs are fixed: the largest-magnitude entry of each column
    /// of `left` (lowest index on ties) is positive.
    public func truncatedSVD(rank k: Int) throws -> TruncatedSVD {
        let (coreValues, m, n) = core(prefix: inner)
        let p = min(m, n)
        let kept = min(max(k, 0), p)
        guard kept > 0 else {
            return TruncatedSVD(rank: 0, left: [], right: [], singularValues: [], frobeniusNorm: 0, floor: 0)
        }
        // The `_work` QRs do not scan for NaN; a non-finite factor (or an overflowing scale) shows in R, so the core.
        guard coreValues.allSatisfy(\.isFinite) else {
            throw KernelShapeError(kernel: "FactoredProduct", problem: "non-finite values in the factors of a "
                                   + "[\(rows), \(inner)] · [\(inner), \(cols)] product")
        }
        let top = try TopSingularTriplets(of: coreValues, rows: m, cols: n, count: kept)

        // Q_X [U_k Σ^½ ; 0]: column-major [rows, kept]; Q_Y [V_k Σ^½ ; 0]: column-major [cols, kept] = row-major A'.
        var leftColumns = [Float](repeating: 0, count: rows * kept)
        var right = [Float](repeating: 0, count: cols * kept)
        top.left.withUnsafeBufferPointer { u in
            top.right.withUnsafeBufferPointer { v in
                leftColumns.withUnsafeMutableBufferPointer { l in
                    right.withUnsafeMutableBufferPointer { r in
                        guard let u = u.baseAddress, let v = v.baseAddress,
                              let l = l.baseAddress, let r = r.baseAddress else { return }
                        for t in 0..<kept {
                            let root = top.values[t].squareRoot()
                            BLAS.copy(m, x: u + t * m, y: l + t * rows)
                            BLAS.scal(m, alpha: root, x: l + t * rows)
                            BLAS.copy(n, x: v + t * n, y: r + t * cols)
                            BLAS.scal(n, alpha: root, x: r + t * cols)
                        }
                    }
                }
            }
        }
        try Self.applyQ(leftReflectors, blocks: leftBlocks, rows: rows, reflectors: leftRank, to: &leftColumns,
                        columns: kept)
        try Self.applyQ(rightReflectors, blocks: rightBlocks, rows: cols, reflectors: rightRank, to: &right,
                        columns: kept)
        var left = Self.transposed(leftColumns, rows: kept, cols: rows)
        Self.fixSigns(left: &left, right: &right, rank: kept, rows: rows, cols: cols)
        return TruncatedSVD(rank: kept, left: left, right: right, singularValues: top.values,
                            frobeniusNorm: top.frobeniusNorm, floor: top.tailFraction)
    }

    /// Q · C for the Q of `householder` (sgemqrt), C column-major [rows, columns] in place.
    private static func applyQ(_ reflectors: [Float], blocks: [Float], rows: Int, reflectors count: Int,
                               to matrix: inout [Float], columns: Int) throws {
        let nb = blockSize(for: count)
        var scratch = [Float](repeating: 0, count: nb * max(1, columns))
        let info = LAPACKE_sgemqrt_work(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), CChar(UInt8(ascii: "N")),
                                        Int32(rows), Int32(columns), Int32(count), Int32(nb), reflectors, Int32(rows),
                                        blocks, Int32(nb), &matrix, Int32(rows), &scratch)
        guard info == 0 else { throw LinearAlgebraError(routine: "sgemqrt", info: info) }
    }
}

extension FactoredProduct {
    /// Makes the largest-magnitude entry (lowest index on ties) of each column of `left` positive, flipping the
    /// matching row of `right`: singular vectors are defined up to sign, results must not be.
    static func fixSigns(left: inout [Float], right: inout [Float], rank: Int, rows: Int, cols: Int) {
        for t in 0..<rank {
            var largest = t
            var i = t + rank
            while i < rows * rank {
                if abs(left[i]) > abs(left[largest]) { largest = i }
                i += rank
            }
            guard left[largest] < 0 else { continue }
            left.withUnsafeMutableBufferPointer { l in
                right.withUnsafeMutableBufferPointer { r in
                    guard let l = l.baseAddress, let r = r.baseAddress else { return }
                    BLAS.scal(rows, alpha: -1, x: l + t, stride: rank)
                    BLAS.scal(cols, alpha: -1, x: r + t * cols)
                }
            }
        }
    }
}

/// A truncated SVD `P ≈ left · right` with √σ folded into each factor.
public struct TruncatedSVD: Sendable {
    public var rank: Int
    /// Row-major [rows, rank].
    public var left: [Float]
    /// Row-major [rank, cols].
    public var right: [Float]
    /// The top `rank` singular values of P, descending.
    public var singularValues: [Float]
    /// ‖P‖_F.
    public var frobeniusNorm: Double
    /// Relative error of this (best) rank-`rank` approximation, sqrt(Σ_{i>rank} σ_i²) / ‖P‖_F (0 when P = 0).
    public var floor: Double

    /// Relative error of the best rank-k approximation: sqrt(Σ_{i≥k} σ_i²) / sqrt(Σ σ_i²) (0 when P = 0).
    public static func tailFraction(_ singularValues: [Float], rank k: Int) -> Double {
        var total = 0.0, tail = 0.0
        for (i, sigma) in singularValues.enumerated() {
            let square = Double(sigma) * Double(sigma)
            total += square
            if i >= k { tail += square }
        }
        return total > 0 ? (tail / total).squareRoot() : 0
    }
}
