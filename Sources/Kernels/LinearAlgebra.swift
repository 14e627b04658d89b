import COpenBLAS

/// A LAPACK routine reported failure (a bad argument or no convergence).
public struct LinearAlgebraError: Error, CustomStringConvertible, Sendable {
    public var routine: String
    public var info: Int32
    public var description: String { "\(routine) failed (info \(info))" }
}

/// Dense factorizations on small or thin row-major Float32 matrices via LAPACKE.
public enum LinearAlgebra {
    /// Thin QR of a row-major [rows, cols] matrix with rows ≥ cols: returns Q [rows, cols] (orthonormal
    /// columns) and R [cols, cols] (upper triangular) with `matrix = Q · R`.
    /// For rows < cols the factorization is of the first `rows` columns' span: Q is [rows, rows], R [rows, cols].
    public static func thinQR(_ matrix: [Float], rows: Int, cols: Int) throws -> (q: [Float], r: [Float], rank: Int) {
        let p = min(rows, cols)
        guard p > 0 else { return ([], [], 0) }
        var work = matrix
        var tau = [Float](repeating: 0, count: p)
        var info = LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, Int32(rows), Int32(cols), &work, Int32(cols), &tau)
        guard info == 0 else { throw LinearAlgebraError(routine: "sgeqrf", info: info) }
        var r = [Float](repeating: 0, count: p * cols)
        for i in 0..<p { for j in i..<cols { r[i * cols + j] = work[i * cols + j] } }
        // Q: the first p columns of the Householder product.
        var q = [Float](repeating: 0, count: rows * p)
        for i in 0..<rows { for j in 0..<p { q[i * p + j] = work[i * cols + j] } }
        info = LAPACKE_sorgqr(LAPACK_ROW_MAJOR, Int32(rows), Int32(p), Int32(p), &q, Int32(p), &tau)
        guard info == 0 else { throw LinearAlgebraError(routine: "sorgqr", info: info) }
        return (q, r, p)
    }

    /// Thin SVD of a row-major [rows, cols] matrix: `matrix = U · diag(S) · Vt`, U [rows, p], S [p] descending,
    /// Vt [p, cols], p = min(rows, cols). Uses the divide-and-conquer driver (sgesdd).
    public static func svd(_ matrix: [Float], rows: Int, cols: Int) throws -> (u: [Float], s: [Float], vt: [Float]) {
        let p = min(rows, cols)
        guard p > 0 else { return ([], [], []) }
        var work = matrix
        var s = [Float](repeating: 0, count: p)
        var u = [Float](repeating: 0, count: rows * p)
        var vt = [Float](repeating: 0, count: p * cols)
        let info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "S")), Int32(rows), Int32(cols), &work, Int32(cols),
                                  &s, &u, Int32(p), &vt, Int32(cols))
        guard info == 0 else { throw LinearAlgebraError(routine: "sgesdd", info: info) }
        return (u, s, vt)
    }
}

extension LinearAlgebra {
    /// Solves the symmetric positive semidefinite system `G β = h` (G [n, n] symmetric, Double): Cholesky
    /// (`dposv`) when G is positive definite, otherwise the minimum-norm least-squares solution (`dgelsd`),
    /// which is still a minimiser of βᵀGβ − 2hᵀβ when G is singular and h lies in its range.
    /// `columns` right-hand sides at once: h (and the result) column-major [n, columns]. With `cutoff`, always the
    /// minimum-norm solution that ignores G's directions with eigenvalue below `cutoff` × the largest (a truncated
    /// pseudo-inverse: no amplified rounding from a nearly singular G).
    public static func solveSymmetricPositiveSemidefinite(_ g: [Double], _ h: [Double], n: Int, columns: Int = 1,
                                                         cutoff: Double? = nil) throws -> [Double] {
        guard n > 0, columns > 0 else { return [] }
        var solution = h
        if cutoff == nil {
            var factor = g
            let info = LAPACKE_dposv(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "U")), Int32(n), Int32(columns), &factor,
                                     Int32(n), &solution, Int32(n))
            if info == 0 && solution.allSatisfy({ $0.isFinite }) { return solution }
            guard info >= 0 else { throw LinearAlgebraError(routine: "dposv", info: info) }
        }
        solution = h
        var scratch: [Double] = []
        try solveTruncated(g, &solution, n: n, columns: columns, cutoff: cutoff ?? 1e-12, scratch: &scratch)
        return solution
    }

    /// The minimum-norm solution of `G X = H` over G's directions with singular value above `cutoff` × the largest
    /// (`dgelsd`), in place: `h` holds H column-major [n, columns] in its first n·columns values and receives X
    /// there. `scratch` (any size; grown once) holds G's working copy and its singular values, so a caller solving
    /// every round reuses it.
    public static func solveTruncated(_ g: [Double], _ h: inout [Double], n: Int, columns: Int, cutoff: Double,
                                      scratch: inout [Double]) throws {
        guard n > 0, columns > 0 else { return }
        precondition(g.count == n * n && h.count >= n * columns, "solveTruncated: \(g.count), \(h.count) values for n \(n)")
        if scratch.count < n * n + n { scratch = [Double](repeating: 0, count: n * n + n) }
        var rank: Int32 = 0
        let info = scratch.withUnsafeMutableBufferPointer { work -> Int32 in
            guard let matrix = work.baseAddress else { return -1 }
            for i in 0..<(n * n) { matrix[i] = g[i] }
            return LAPACKE_dgelsd(LAPACK_COL_MAJOR, Int32(n), Int32(n), Int32(columns), matrix, Int32(n), &h, Int32(n),
                                  matrix + n * n, cutoff, &rank)
        }
        guard info == 0 else { throw LinearAlgebraError(routine: "dgelsd", info: info) }
    }
}

/// A kernel was handed arrays whose sizes do not match the shapes it was told.
public struct KernelShapeError: Error, CustomStringConvertible, Sendable {
    public var kernel: String
    public var problem: String
    public init(kernel: String, problem: String) {
        self.kernel = kernel
        self.problem = problem
    }
    public var description: String { "\(kernel): \(problem)" }
}
