/// Alternating least-squares rounds that refit merged factors B' [out, k], A' [k, in] against the units' sum
/// T = Σ_i x_B,i x_A,iᵀ without forming T (lego's `refit`, docs/METHODS.md lego step 5):
/// - B' ← T A'ᵀ (A' A'ᵀ)⁻¹   (the best B' for the current A': each output rank's B column fitted jointly),
/// - A' ← (B'ᵀ B')⁻¹ B'ᵀ T   (then the best A' for that B').
/// Each half-step is the exact minimiser of ‖T − B'A'‖_F over one factor, so the error never increases (up to
/// Float rounding); a (nearly) singular Gram takes the minimum-norm solution over its well-determined directions
/// (`cutoff`), which leaves a zero rank zero.
/// T A'ᵀ = X_Bᵀ (X_A A'ᵀ) and B'ᵀ T = (X_B B')ᵀ X_A are two GEMMs over the unit matrix each: O(n·k·(out + in)).
/// At the end every rank is rebalanced to ‖b_t‖ = ‖a_t‖ (the product is unchanged).
/// `coreFit` refits the product inside the subspaces of the current factors (lego's `balance`: rounds on a
/// reweighted target choose the subspaces, the core fit returns to T).
public enum FactorRefit {
    /// Eigenvalues of a factor's Gram below this fraction of the largest are treated as zero (two ranks along one
    /// direction, or a zero rank, must not amplify Float32 rounding): a truncated pseudo-inverse.
    public static let cutoff = 1e-7

    /// `units` row-major [count, out + in] (rows [x_B ; x_A]); `b` row-major [out, k]; `a` row-major [k, in].
    public static func refit(units: [Float], count: Int, outFeatures out: Int, inFeatures: Int,
                             b: inout [Float], a: inout [Float], k: Int, rounds: Int) throws {
        let dimension = out + inFeatures
        guard rounds > 0, count > 0, k > 0 else { return }
        guard units.count == count * dimension, b.count == out * k, a.count == k * inFeatures else {
            throw KernelShapeError(kernel: "FactorRefit", problem: "units \(units.count), B \(b.count), A \(a.count) "
                                   + "values for \(count) units, out \(out), in \(inFeatures), k \(k)")
        }
        for _ in 0..<rounds {
            let c = leftProduct(units: units, count: count, outFeatures: out, inFeatures: inFeatures, a: a, k: k)
            b = try solveB(c, a: a, outFeatures: out, inFeatures: inFeatures, k: k)
            let e = rightProduct(units: units, count: count, outFeatures: out, inFeatures: inFeatures, b: b, k: k)
            a = try solveA(e, b: b, outFeatures: out, inFeatures: inFeatures, k: k)
        }
        balance(b: &b, a: &a, out: out, inFeatures: inFeatures, k: k)
    }

    // The half-steps, split into a product over the units (a sum over units: a split module adds it up over its
    // blocks, `FactorRefitRounds`) and the solve on its sum, so both routes run the same code.

    /// C = T A'ᵀ = X_Bᵀ (X_A A'ᵀ), row-major [out, k]: P = X_A A'ᵀ [count, k], then C = X_Bᵀ P.
    static func leftProduct(units: [Float], count: Int, outFeatures out: Int, inFeatures: Int, a: [Float],
                            k: Int) -> [Float] {
        var p = [Float](repeating: 0, count: count * k)
        var c = [Float](repeating: 0, count: out * k)
        BLAS.multiply(units, a, into: &p, m: count, n: k, k: inFeatures, aOffset: out, lda: out + inFeatures,
                      transB: .transpose)
        BLAS.multiply(units, p, into: &c, m: out, n: k, k: count, transA: .transpose, lda: out + inFeatures)
        return c
    }

    /// B' = C (A' A'ᵀ)⁺ for C = T A'ᵀ (`leftProduct`, summed over the units).
    static func solveB(_ c: [Float], a: [Float], outFeatures out: Int, inFeatures: Int, k: Int) throws -> [Float] {
        try solveRight(c, rows: out, gram: gram(a, rows: k, cols: inFeatures, of: .rows), k: k)
    }

    /// E = B'ᵀ T = (X_B B')ᵀ X_A, row-major [k, in]: Q = X_B B' [count, k], then E = Qᵀ X_A.
    static func rightProduct(units: [Float], count: Int, outFeatures out: Int, inFeatures: Int, b: [Float],
                             k: Int) -> [Float] {
        var q = [Float](repeating: 0, count: count * k)
        var e = [Float](repeating: 0, count: k * inFeatures)
        BLAS.multiply(units, b, into: &q, m: count, n: k, k: out, lda: out + inFeatures)
        BLAS.multiply(q, units, into: &e, m: k, n: inFeatures, k: count, transA: .transpose, bOffset: out,
                      ldb: out + inFeatures)
        return e
    }

    /// A' = (B'ᵀ B')⁺ E for E = B'ᵀ T (`rightProduct`, summed over the units).
    static func solveA(_ e: [Float], b: [Float], outFeatures out: Int, inFeatures: Int, k: Int) throws -> [Float] {
        transpose(try solveRight(transpose(e, rows: k, cols: inFeatures), rows: inFeatures,
                                 gram: gram(b, rows: out, cols: k, of: .columns), k: k),
                  rows: inFeatures, cols: k)
    }

    /// The best B'A' = U C Vᵀ with U, V orthonormal bases of B's columns and A's rows: C = Uᵀ T V (the projection of
    /// T onto the two subspaces, which minimises ‖T − U C Vᵀ‖ over C), written as rank-k factors by the SVD of C
    /// (ranks balanced, in decreasing order). Never worse than B A itself, whose core is one of the C.
    /// Uᵀ T V = (X_B U)ᵀ (X_A V): two GEMMs over the units and one [k, k] product.
    public static func coreFit(units: [Float], count: Int, outFeatures out: Int, inFeatures: Int,
                               b: inout [Float], a: inout [Float], k: Int) throws {
        let dimension = out + inFeatures
        guard count > 0, k > 0, k <= out, k <= inFeatures else { return }
        guard units.count == count * dimension, b.count == out * k, a.count == k * inFeatures else {
            throw KernelShapeError(kernel: "FactorRefit.coreFit", problem: "units \(units.count), B \(b.count), "
                                   + "A \(a.count) values for \(count) units, out \(out), in \(inFeatures), k \(k)")
        }
        let u = try LinearAlgebra.thinQR(b, rows: out, cols: k).q  // [out, k]
        let v = try LinearAlgebra.thinQR(transpose(a, rows: k, cols: inFeatures), rows: inFeatures, cols: k).q  // [in, k]
        var y = [Float](repeating: 0, count: count * k), z = [Float](repeating: 0, count: count * k)
        var core = [Float](repeating: 0, count: k * k)
        BLAS.multiply(units, u, into: &y, m: count, n: k, k: out, lda: dimension)
        BLAS.multiply(units, v, into: &z, m: count, n: k, k: inFeatures, aOffset: out, lda: dimension)
        BLAS.multiply(y, z, into: &core, m: k, n: k, k: count, transA: .transpose)
        let (cu, cs, cvt) = try LinearAlgebra.svd(core, rows: k, cols: k)
        // B = U cu √s [out, k]; A = √s cvt Vᵀ [k, in].
        var left = cu, right = cvt
        for t in 0..<k {
            let root = Float(Double(max(cs[t], 0)).squareRoot())
            for i in 0..<k { left[i * k + t] *= root; right[t * k + i] *= root }
        }
        b = BLAS.matmul(u, left, m: out, n: k, k: k)
        a = BLAS.matmul(right, v, m: k, n: inFeatures, k: k, transB: .transpose)
    }

    /// Which Gram of a matrix: of its rows (M Mᵀ) or of its columns (Mᵀ M).
    enum GramSide { case rows, columns }

    /// The Gram (Double, full symmetric, row-major) of a row-major [rows, cols] M: M Mᵀ [rows, rows] or
    /// Mᵀ M [cols, cols], each entry one Double sum in index order.
    /// Not a `dsyrk`: its blocked sums round differently, and the solve amplifies that on nearly dependent ranks
    /// (a llama-sized q/k/v/o merge changed up to a third of its values). The loop costs k²·width/2
    /// multiply-adds (1.8 M at k = 16 on a 14,336-wide side) against the rounds' 2·count·k·(out + in) in GEMMs.
    static func gram(_ m: [Float], rows: Int, cols: Int, of side: GramSide) -> [Double] {
        let size = side == .rows ? rows : cols
        let length = side == .rows ? cols : rows
        // Vector i of the Gram is row i (elements 1 apart) or column i (elements `cols` apart).
        let (vectorStride, elementStride) = side == .rows ? (cols, 1) : (1, cols)
        var g = [Double](repeating: 0, count: size * size)
        m.withUnsafeBufferPointer { m in
            for i in 0..<size {
                for j in i..<size {
                    var s = 0.0
                    for t in 0..<length {
                        s += Double(m[i * vectorStride + t * elementStride]) * Double(m[j * vectorStride + t * elementStride])
                    }
                    g[i * size + j] = s
                    g[j * size + i] = s
                }
            }
        }
        return g
    }

    /// X [rows, k] with X G = C for a row-major C [rows, k] and symmetric G [k, k] (G X ᵀ = Cᵀ; minimum norm when
    /// G is singular).
    static func solveRight(_ c: [Float], rows: Int, gram g: [Double], k: Int) throws -> [Float] {
        // Column-major [k, rows] right-hand sides = Cᵀ: column r is row r of C.
        let rhs = c.map(Double.init)
        let solution = try LinearAlgebra.solveSymmetricPositiveSemidefinite(g, rhs, n: k, columns: rows,
                                                                          cutoff: Self.cutoff)
        return solution.map { Float($0) }
    }

    static func transpose(_ m: [Float], rows: Int, cols: Int) -> [Float] {
        var t = [Float](repeating: 0, count: m.count)
        for i in 0..<rows { for j in 0..<cols { t[j * rows + i] = m[i * cols + j] } }
        return t
    }

    /// Rescales rank t to ‖b_t‖ = ‖a_t‖ = √(‖b_t‖‖a_t‖) (b_t a_tᵀ unchanged; a zero half zeroes both).
    static func balance(b: inout [Float], a: inout [Float], out: Int, inFeatures: Int, k: Int) {
        for t in 0..<k {
            var nb = 0.0, na = 0.0
            for i in 0..<out { nb += Double(b[i * k + t]) * Double(b[i * k + t]) }
            for j in 0..<inFeatures { na += Double(a[t * inFeatures + j]) * Double(a[t * inFeatures + j]) }
            nb = nb.squareRoot(); na = na.squareRoot()
            let (sb, sa) = nb > 0 && na > 0 ? (((nb * na).squareRoot() / nb), ((nb * na).squareRoot() / na)) : (0, 0)
            for i in 0..<out { b[i * k + t] = Float(Double(b[i * k + t]) * sb) }
            for j in 0..<inFeatures { a[t * inFeatures + j] = Float(Double(a[t * inFeatures + j]) * sa) }
        }
    }
}
