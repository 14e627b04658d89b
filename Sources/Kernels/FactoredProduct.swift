import COpenBLAS

/// A product `P = X · Y` (X row-major [rows, inner], Y row-major [inner, cols]) held through Householder
/// factorizations `X = Q_X R_X`, `Yᵀ = Q_Y R_Y`, so that `P = Q_X (R_X R_Yᵀ) Q_Yᵀ` and everything about P
/// (singular values, Frobenius norm, truncated SVD) comes from the small core `R_X R_Yᵀ` [≤inner, ≤inner].
/// P itself ([rows, cols]) is never formed. Cost O((rows + cols) · inner²).
///
/// Layout trick: a row-major [rows, inner] array is the column-major [inner, rows] matrix Xᵀ, so the QR of X is
/// LAPACK's LQ of that view (`sgelqf`), and a row-major Y [inner, cols] is the column-major Yᵀ, whose QR is
/// `sgeqrf`. Neither input is transposed or copied into another layout.
public struct FactoredProduct: Sendable {
    public let rows: Int
    public let inner: Int
    public let cols: Int
    /// Rank bounds of the two factors: min(inner, rows) and min(inner, cols).
    public let leftRank: Int
    public let rightRank: Int
    /// sgelqf output on the column-major [inner, rows] view of X (reflectors below L).
    private let leftReflectors: [Float]
    private let leftTau: [Float]
    /// sgeqrf output on the column-major [cols, inner] view of Y (reflectors below R).
    private let rightReflectors: [Float]
    private let rightTau: [Float]
    /// Column-major [inner, leftRank] lower-trapezoidal L, with R_X = Lᵀ.
    private let lower: [Float]
    /// Column-major [rightRank, inner] upper-trapezoidal R_Y.
    private let upper: [Float]

    public init(left: [Float], right: [Float], rows: Int, inner: Int, cols: Int) throws {
        guard rows > 0, inner > 0, cols > 0, left.count == rows * inner, right.count == inner * cols else {
            throw KernelShapeError(kernel: "FactoredProduct", problem: "factors of \(left.count) and \(right.count) values "
                                   + "for [\(rows), \(inner)] · [\(inner), \(cols)]")
        }
        self.rows = rows
        self.inner = inner
        self.cols = cols
        leftRank = min(inner, rows)
        rightRank = min(inner, cols)

        var leftWork = left
        var leftTau = [Float](repeating: 0, count: leftRank)
        var info = LAPACKE_sgelqf(LAPACK_COL_MAJOR, Int32(inner), Int32(rows), &leftWork, Int32(inner), &leftTau)
        guard info == 0 else { throw LinearAlgebraError(routine: "sgelqf", info: info) }
        var lower = [Float](repeating: 0, count: inner * leftRank)
        info = LAPACKE_slacpy(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), Int32(inner), Int32(leftRank),
                              leftWork, Int32(inner), &lower, Int32(inner))
        guard info == 0 else { throw LinearAlgebraError(routine: "slacpy", info: info) }

        var rightWork = right
        var rightTau = [Float](repeating: 0, count: rightRank)
        info = LAPACKE_sgeqrf(LAPACK_COL_MAJOR, Int32(cols), Int32(inner), &rightWork, Int32(cols), &rightTau)
        guard info == 0 else { throw LinearAlgebraError(routine: "sgeqrf", info: info) }
        var upper = [Float](repeating: 0, count: rightRank * inner)
        info = LAPACKE_slacpy(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "U")), Int32(rightRank), Int32(inner),
                              rightWork, Int32(cols), &upper, Int32(rightRank))
        guard info == 0 else { throw LinearAlgebraError(routine: "slacpy", info: info) }

        self.leftReflectors = leftWork
        self.leftTau = leftTau
        self.rightReflectors = rightWork
        self.rightTau = rightTau
        self.lower = lower
        self.upper = upper
    }

    /// The core of the product of the first `prefix` inner indices only, `X[:, :prefix] · Y[:prefix, :]
    /// = Q_X · core · Q_Yᵀ`: column-major [min(prefix, leftRank), min(prefix, rightRank)]. Householder QR
    /// processes columns in order, so the leading columns' factor is a block of the full one.
    public func core(prefix: Int) -> (values: [Float], rows: Int, cols: Int) {
        let q = min(max(prefix, 0), inner)
        let m = min(q, leftRank), n = min(q, rightRank)
        guard m > 0, n > 0 else { return ([], m, n) }
        var values = [Float](repeating: 0, count: m * n)
        cblas_sgemm(CblasColMajor, CblasTrans, CblasTrans, Int32(m), Int32(n), Int32(q), 1,
                    lower, Int32(inner), upper, Int32(rightRank), 0, &values, Int32(m))
        return (values, m, n)
    }

    /// The best rank-k approximation of P (Eckart–Young), balanced: `left = Q_X U_k Σ_k^½` row-major
    /// [rows, k'], `right = Σ_k^½ V_kᵀ Q_Yᵀ` row-major [k', cols], with k' = min(k, leftRank, rightRank), and all
    /// singular values of P (descending). Signs are fixed: the largest-magnitude entry of each column of `left`
    /// (lowest index on ties) is positive.
    public func truncatedSVD(rank k: Int) throws -> TruncatedSVD {
        var (coreValues, m, n) = core(prefix: inner)
        let p = min(m, n)
        var s = [Float](repeating: 0, count: p)
        var u = [Float](repeating: 0, count: m * p)
        var vt = [Float](repeating: 0, count: p * n)
        let info = LAPACKE_sgesdd(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "S")), Int32(m), Int32(n), &coreValues,
                                  Int32(m), &s, &u, Int32(m), &vt, Int32(p))
        guard info == 0 else { throw LinearAlgebraError(routine: "sgesdd", info: info) }
        let kept = min(max(k, 0), p)

        var left = [Float](repeating: 0, count: kept * rows)    // column-major [kept, rows] = row-major [rows, kept]
        var right = [Float](repeating: 0, count: cols * kept)   // column-major [cols, kept] = row-major [kept, cols]
        u.withUnsafeBufferPointer { u in
            vt.withUnsafeBufferPointer { vt in
                left.withUnsafeMutableBufferPointer { l in
                    right.withUnsafeMutableBufferPointer { r in
                        guard let u = u.baseAddress, let vt = vt.baseAddress,
                              let l = l.baseAddress, let r = r.baseAddress else { return }
                        for t in 0..<kept {
                            let root = s[t].squareRoot()
                            BLAS.copy(m, x: u + t * m, y: l + t, strideY: kept)
                            BLAS.scal(m, alpha: root, x: l + t, stride: kept)
                            BLAS.copy(n, x: vt + t, strideX: p, y: r + t * cols)
                            BLAS.scal(n, alpha: root, x: r + t * cols)
                        }
                    }
                }
            }
        }
        if kept > 0 {
            var info = LAPACKE_sormlq(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "R")), CChar(UInt8(ascii: "N")),
                                      Int32(kept), Int32(rows), Int32(leftRank), leftReflectors, Int32(inner),
                                      leftTau, &left, Int32(kept))
            guard info == 0 else { throw LinearAlgebraError(routine: "sormlq", info: info) }
            info = LAPACKE_sormqr(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), CChar(UInt8(ascii: "N")),
                                  Int32(cols), Int32(kept), Int32(rightRank), rightReflectors, Int32(cols),
                                  rightTau, &right, Int32(cols))
            guard info == 0 else { throw LinearAlgebraError(routine: "sormqr", info: info) }
            Self.fixSigns(left: &left, right: &right, rank: kept, rows: rows, cols: cols)
        }
        return TruncatedSVD(rank: kept, left: left, right: right, singularValues: s)
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
    /// Every singular value of P, descending.
    public var singularValues: [Float]

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
