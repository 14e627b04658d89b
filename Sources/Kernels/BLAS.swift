import COpenBLAS

/// Thin, checked wrappers over CBLAS for row-major Float32 matrices stored in Swift arrays.
/// Every kernel in Brickyard goes through these, so the summation order is OpenBLAS's and never depends on
/// Swift-side loops.
public enum BLAS {
    /// Whether an operand is used as stored or transposed.
    public enum Transpose: Sendable {
        case none, transpose
        var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
    }

    /// C[m, n] = alpha · op(A) · op(B) + beta · C, all row-major.
    /// `op(A)` is [m, k] and `op(B)` is [k, n]; `lda`/`ldb`/`ldc` default to the packed widths.
    public static func gemm(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
        b: UnsafePointer<Float>, ldb: Int? = nil,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil
    ) {
        guard m > 0, n > 0 else { return }
        let lda = lda ?? (transA == .none ? k : m)
        let ldb = ldb ?? (transB == .none ? n : k)
        let ldc = ldc ?? n
        if k == 0 {
            // BLAS leaves C untouched for k = 0 only when beta = 1; make the result well defined.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        cblas_sgemm(CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(max(lda, 1)), b, Int32(max(ldb, 1)), beta, c, Int32(max(ldc, 1)))
    }

    /// Array convenience: returns op(A) · op(B) as a new row-major [m, n] array.
    public static func matmul(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int,
                              transA: Transpose = .none, transB: Transpose = .none) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    guard let pa = pa.baseAddress, let pb = pb.baseAddress, let pc = pc.baseAddress else { return }
                    gemm(transA, transB, m: m, n: n, k: k, a: pa, b: pb, c: pc)
                }
            }
        }
        return c
    }

    /// Number of threads OpenBLAS uses (set from `--threads`; OPENBLAS_NUM_THREADS at load time).
    public static var threadCount: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }
}
