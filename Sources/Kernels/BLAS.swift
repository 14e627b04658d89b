import COpenBLAS
import Foundation

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
        multiply(a, b, into: &c, m: m, n: n, k: k, transA: transA, transB: transB)
        return c
    }

    /// Array convenience: c [m, n] ← c − A · B for row-major A [m, k] and B [k, n] (one gemm, beta 1).
    public static func subtractProduct(_ a: [Float], _ b: [Float], from c: inout [Float], m: Int, n: Int, k: Int) {
        multiply(a, b, into: &c, m: m, n: n, k: k, alpha: -1, beta: 1)
    }

    /// Array convenience into existing storage: c [m, n] (packed, row-major) ← alpha · op(A) · op(B) + beta · c.
    /// A stored operand may be a column window of a wider row-major array: it starts at element `aOffset` (`bOffset`)
    /// with rows `lda` (`ldb`) apart (default: packed from element 0). Out-of-bounds windows stop the program.
    public static func multiply(_ a: [Float], _ b: [Float], into c: inout [Float], m: Int, n: Int, k: Int,
                                transA: Transpose = .none, aOffset: Int = 0, lda: Int? = nil,
                                transB: Transpose = .none, bOffset: Int = 0, ldb: Int? = nil,
                                alpha: Float = 1, beta: Float = 0) {
        guard m > 0, n > 0 else { return }
        let lda = lda ?? (transA == .none ? k : m)
        let ldb = ldb ?? (transB == .none ? n : k)
        precondition(c.count >= m * n, "BLAS.multiply: \(c.count) values for a [\(m), \(n)] result")
        precondition(fits(a.count, offset: aOffset, rows: transA == .none ? m : k, cols: transA == .none ? k : m, stride: lda),
                     "BLAS.multiply: A window outside its \(a.count) values")
        precondition(fits(b.count, offset: bOffset, rows: transB == .none ? k : n, cols: transB == .none ? n : k, stride: ldb),
                     "BLAS.multiply: B window outside its \(b.count) values")
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    guard let pa = pa.baseAddress, let pb = pb.baseAddress, let pc = pc.baseAddress else { return }
                    gemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: pa + aOffset, lda: lda,
                         b: pb + bOffset, ldb: ldb, beta: beta, c: pc)
                }
            }
        }
    }

    /// Whether a stored [rows, cols] window with row stride `stride` from `offset` lies inside `count` values.
    private static func fits(_ count: Int, offset: Int, rows: Int, cols: Int, stride: Int) -> Bool {
        guard rows > 0, cols > 0 else { return offset >= 0 }
        return offset >= 0 && stride >= cols && offset + (rows - 1) * stride + cols <= count
    }

    /// y[m] = alpha · op(A) · x + beta · y for a row-major A [rows, cols]; op(A) is [rows, cols] or its transpose.
    public static func gemv(
        _ trans: Transpose, rows: Int, cols: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
        x: UnsafePointer<Float>, incX: Int = 1, beta: Float = 0, y: UnsafeMutablePointer<Float>, incY: Int = 1
    ) {
        guard rows > 0, cols > 0 else { return }
        cblas_sgemv(CblasRowMajor, trans.cblas, Int32(rows), Int32(cols), alpha, a, Int32(lda ?? cols),
                    x, Int32(incX), beta, y, Int32(incY))
    }

    /// Euclidean norm of a strided vector. OpenBLAS computes it in one thread with a scaled sum, so the value
    /// does not depend on the thread count (unlike `sdot`, which OpenBLAS splits across threads for long vectors).
    public static func nrm2(_ count: Int, _ x: UnsafePointer<Float>, stride: Int = 1) -> Float {
        guard count > 0 else { return 0 }
        return cblas_snrm2(Int32(count), x, Int32(stride))
    }

    /// y += alpha · x (elementwise, so thread splitting cannot change the result).
    public static func axpy(_ count: Int, alpha: Float, x: UnsafePointer<Float>, strideX: Int = 1,
                            y: UnsafeMutablePointer<Float>, strideY: Int = 1) {
        guard count > 0 else { return }
        cblas_saxpy(Int32(count), alpha, x, Int32(strideX), y, Int32(strideY))
    }

    /// x *= alpha.
    public static func scal(_ count: Int, alpha: Float, x: UnsafeMutablePointer<Float>, stride: Int = 1) {
        guard count > 0 else { return }
        cblas_sscal(Int32(count), alpha, x, Int32(stride))
    }

    /// y = x for strided vectors (used to gather matrix columns without Swift loops).
    public static func copy(_ count: Int, x: UnsafePointer<Float>, strideX: Int = 1,
                            y: UnsafeMutablePointer<Float>, strideY: Int = 1) {
        guard count > 0 else { return }
        cblas_scopy(Int32(count), x, Int32(strideX), y, Int32(strideY))
    }

    /// Number of threads OpenBLAS uses (set from `--threads`; OPENBLAS_NUM_THREADS at load time).
    /// While a `singleThreaded` scope is active anywhere in the process, setting it only records the count to
    /// restore when the last scope ends, so no merge can be switched to several threads halfway.
    public static var threadCount: Int {
        get { Int(openblas_get_num_threads()) }
        set { ThreadPin.request(newValue) }
    }

    /// Runs `body` with OpenBLAS pinned to one thread, restoring the previous count when the outermost scope
    /// ends. Measured with OpenBLAS 0.3.21 here: sgemv, sgemm on some shapes (e.g. 300×16×2000), sgeqrf and
    /// sgesdd give different bits with 2 threads than with 1, so every merge runs inside this scope and its
    /// bytes cannot depend on OPENBLAS_NUM_THREADS. Parallelism comes from worker processes instead (for the
    /// skinny GEMMs of k-means, one thread is as fast as two anyway). Nested and concurrent scopes share one
    /// counter under a lock.
    public static func singleThreaded<T>(_ body: () throws -> T) rethrows -> T {
        ThreadPin.enter()
        defer { ThreadPin.exit() }
        return try body()
    }
}

/// The process-wide pin behind `BLAS.singleThreaded`.
private enum ThreadPin {
    private static let lock = NSLock()
    // Guarded by `lock`.
    nonisolated(unsafe) private static var depth = 0
    nonisolated(unsafe) private static var saved = 1

    static func enter() {
        lock.lock()
        defer { lock.unlock() }
        if depth == 0 {
            saved = Int(openblas_get_num_threads())
            if saved != 1 { openblas_set_num_threads(1) }
        }
        depth += 1
    }

    static func exit() {
        lock.lock()
        defer { lock.unlock() }
        depth -= 1
        if depth == 0 && saved != 1 { openblas_set_num_threads(Int32(saved)) }
    }

    static func request(_ count: Int) {
        lock.lock()
        defer { lock.unlock() }
        if depth > 0 { saved = max(1, count) } else { openblas_set_num_threads(Int32(max(1, count))) }
    }
}
