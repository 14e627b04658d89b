/// Best rank-k approximation of a dense row-major matrix D [rows, cols] as balanced factors
/// `B = U_k Σ_k^½` [rows, k] and `A = Σ_k^½ V_kᵀ` [k, cols].
///
/// Exact LAPACK SVD when it is affordable; otherwise a randomized range finder (Halko, Martinsson & Tropp 2011)
/// with oversampling and power iterations, seeded, so the result is reproducible. Either way the achieved
/// relative error ‖D − BA‖_F / ‖D‖_F is measured and returned.
public enum DenseTruncation {
    /// What a truncation produced.
    public struct Result: Sendable {
        /// Output rank: min(k, rows, cols).
        public var rank: Int
        public var b: [Float]
        public var a: [Float]
        /// ‖D − BA‖_F / ‖D‖_F (0 when D = 0).
        public var relativeError: Double
        public var randomized: Bool
    }

    /// Tuning of the randomized route.
    public struct Options: Sendable {
        /// Extra sketch columns beyond k.
        public var oversampling = 10
        /// Power (subspace) iterations; each one sharpens the spectrum's decay.
        public var powerIterations = 2
        /// Exact SVD while min(rows, cols) is at most this.
        public var exactLimit = 1024

        public init() {}
    }

    public static func truncate(_ d: [Float], rows: Int, cols: Int, rank k: Int, seed: UInt64,
                                options: Options = Options()) throws -> Result {
        guard rows >= 0, cols >= 0, d.count == rows * cols else {
            throw LinearAlgebraError(routine: "DenseTruncation: \(d.count) values for [\(rows), \(cols)]", info: -1)
        }
        let p = min(rows, cols)
        let rank = max(0, min(k, p))
        guard rank > 0 else {
            return Result(rank: 0, b: [], a: [], relativeError: d.contains(where: { $0 != 0 }) ? 1 : 0, randomized: false)
        }
        let sketch = min(rank + options.oversampling, p)
        let exact = p <= options.exactLimit || 2 * sketch >= p
        // One BLAS thread: threaded reductions inside LAPACK would make the bits depend on OPENBLAS_NUM_THREADS.
        var (u, s, vt, width) = try BLAS.singleThreaded {
            exact
                ? try exactSVD(d, rows: rows, cols: cols)
                : try randomizedSVD(d, rows: rows, cols: cols, sketch: sketch, seed: seed, iterations: options.powerIterations)
        }
        balance(u: &u, s: s, vt: &vt, rows: rows, cols: cols, width: width, rank: rank)
        let b = keepColumns(u, rows: rows, width: width, count: rank)
        let a = Array(vt[0..<(rank * cols)])
        return Result(rank: rank, b: b, a: a, relativeError: residual(d, rows: rows, cols: cols, b: b, a: a, rank: rank),
                      randomized: !exact)
    }

    private static func exactSVD(_ d: [Float], rows: Int, cols: Int) throws -> ([Float], [Float], [Float], Int) {
        let (u, s, vt) = try LinearAlgebra.svd(d, rows: rows, cols: cols)
        return (u, s, vt, min(rows, cols))
    }

    /// Range finder Q [rows, l] for D, refined by power iterations with re-orthonormalisation; then the SVD of the
    /// small Qᵀ D [l, cols] gives D ≈ (Q Ũ) Σ Vᵀ.
    private static func randomizedSVD(_ d: [Float], rows: Int, cols: Int, sketch l: Int, seed: UInt64,
                                      iterations: Int) throws -> ([Float], [Float], [Float], Int) {
        var random = DeterministicRandom(seed: CounterRandom.streamKey(seed: seed, stream: 0x5356_4453))
        let omega = (0..<(cols * l)).map { _ in Float(random.nextGaussian()) }
        var q = try LinearAlgebra.thinQR(BLAS.matmul(d, omega, m: rows, n: l, k: cols), rows: rows, cols: l).q
        for _ in 0..<iterations {
            let z = try LinearAlgebra.thinQR(BLAS.matmul(d, q, m: cols, n: l, k: rows, transA: .transpose),
                                             rows: cols, cols: l).q
            q = try LinearAlgebra.thinQR(BLAS.matmul(d, z, m: rows, n: l, k: cols), rows: rows, cols: l).q
        }
        let small = BLAS.matmul(q, d, m: l, n: cols, k: rows, transA: .transpose)
        let (uSmall, s, vt) = try LinearAlgebra.svd(small, rows: l, cols: cols)
        return (BLAS.matmul(q, uSmall, m: rows, n: l, k: l), s, vt, l)
    }

    /// Moves Σ^½ into both factors (keeps bf16/f16 output accurate: neither factor carries all the scale).
    private static func balance(u: inout [Float], s: [Float], vt: inout [Float], rows: Int, cols: Int, width: Int, rank: Int) {
        for t in 0..<rank {
            let root = max(s[t], 0).squareRoot()
            for i in 0..<rows { u[i * width + t] *= root }
            for j in 0..<cols { vt[t * cols + j] *= root }
        }
    }

    private static func keepColumns(_ matrix: [Float], rows: Int, width: Int, count: Int) -> [Float] {
        if width == count { return matrix }
        var out = [Float](repeating: 0, count: rows * count)
        for i in 0..<rows { for t in 0..<count { out[i * count + t] = matrix[i * width + t] } }
        return out
    }

    /// ‖D − BA‖_F / ‖D‖_F, in row blocks so no second dense matrix is held.
    public static func residual(_ d: [Float], rows: Int, cols: Int, b: [Float], a: [Float], rank: Int) -> Double {
        let step = TaskVectors.blockRows(rows: rows, cols: cols, copies: 1, budgetBytes: 16 << 20)
        var block = [Float](repeating: 0, count: step * cols)
        var residualSquares = 0.0, normSquares = 0.0
        var start = 0
        while start < rows {
            let count = min(step, rows - start)
            for i in 0..<(count * cols) { block[i] = d[start * cols + i] }
            for value in block[0..<(count * cols)] { normSquares += Double(value) * Double(value) }
            block.withUnsafeMutableBufferPointer { pc in
                b.withUnsafeBufferPointer { pb in
                    a.withUnsafeBufferPointer { pa in
                        guard let c = pc.baseAddress, let bb = pb.baseAddress, let aa = pa.baseAddress else { return }
                        BLAS.gemm(.none, .none, m: count, n: cols, k: rank, alpha: -1, a: bb + start * rank, lda: rank,
                                  b: aa, ldb: cols, beta: 1, c: c, ldc: cols)
                    }
                }
            }
            for value in block[0..<(count * cols)] { residualSquares += Double(value) * Double(value) }
            start += count
        }
        return normSquares > 0 ? (residualSquares / normSquares).squareRoot() : 0
    }
}

