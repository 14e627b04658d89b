/// Alternating least-squares rounds that refit merged factors B' [out, k], A' [k, in] against the units' sum
/// T = Σ_i x_B,i x_A,iᵀ without forming T (lego's `refit`, docs/METHODS.md lego step 5):
/// - B' ← T A'ᵀ (A' A'ᵀ)⁻¹   (the best B' for the current A': each output rank's B column fitted jointly),
/// - A' ← (B'ᵀ B')⁻¹ B'ᵀ T   (then the best A' for that B').
/// Each half-step is the exact minimiser of ‖T − B'A'‖_F over one factor, so the error never increases (up to
/// Float rounding); a (nearly) singular Gram takes the minimum-norm solution over its well-determined directions
/// (`cutoff`), which leaves a zero rank zero.
/// T A'ᵀ = X_Bᵀ (X_A A'ᵀ) and B'ᵀ T = (X_B B')ᵀ X_A are two GEMMs over the unit matrix each: O(n·k·(out + in)).
/// At the end every rank is rebalanced to ‖b_t‖ = ‖a_t‖ (the product is unchanged).
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
        let dimension = out + inFeatures
        var p = [Float](repeating: 0, count: count * k)
        var c = [Float](repeating: 0, count: out * k)
        units.withUnsafeBufferPointer { x in
            a.withUnsafeBufferPointer { a in
                p.withUnsafeMutableBufferPointer { p in
                    c.withUnsafeMutableBufferPointer { c in
                        guard let x = x.baseAddress, let a = a.baseAddress, let p = p.baseAddress,
                              let c = c.baseAddress else { return }
                        BLAS.gemm(.none, .transpose, m: count, n: k, k: inFeatures, a: x + out, lda: dimension,
                                  b: a, ldb: inFeatures, c: p)
                        BLAS.gemm(.transpose, .none, m: out, n: k, k: count, a: x, lda: dimension, b: p, c: c)
                    }
                }
            }
        }
        return c
    }

    /// B' = C (A' A'ᵀ)⁺ for C = T A'ᵀ (`leftProduct`, summed over the units).
    static func solveB(_ c: [Float], a: [Float], outFeatures out: Int, inFeatures: Int, k: Int) throws -> [Float] {
        try solveRight(c, rows: out, gram: gram(rowsOf: a, rows: k, width: inFeatures), k: k)
    }

    /// E = B'ᵀ T = (X_B B')ᵀ X_A, row-major [k, in]: Q = X_B B' [count, k], then E = Qᵀ X_A.
    static func rightProduct(units: [Float], count: Int, outFeatures out: Int, inFeatures: Int, b: [Float],
                             k: Int) -> [Float] {
        let dimension = out + inFeatures
        var q = [Float](repeating: 0, count: count * k)
        var e = [Float](repeating: 0, count: k * inFeatures)
        units.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { b in
                q.withUnsafeMutableBufferPointer { q in
                    e.withUnsafeMutableBufferPointer { e in
                        guard let x = x.baseAddress, let b = b.baseAddress, let q = q.baseAddress,
                              let e = e.baseAddress else { return }
                        BLAS.gemm(.none, .none, m: count, n: k, k: out, a: x, lda: dimension, b: b, c: q)
                        BLAS.gemm(.transpose, .none, m: k, n: inFeatures, k: count, a: q, b: x + out,
                                  ldb: dimension, c: e)
                    }
                }
            }
        }
        return e
    }

    /// A' = (B'ᵀ B')⁺ E for E = B'ᵀ T (`rightProduct`, summed over the units).
    static func solveA(_ e: [Float], b: [Float], outFeatures out: Int, inFeatures: Int, k: Int) throws -> [Float] {
        let bt = transpose(b, rows: out, cols: k)
        return transpose(try solveRight(transpose(e, rows: k, cols: inFeatures), rows: inFeatures,
                                        gram: gram(rowsOf: bt, rows: k, width: out), k: k),
                         rows: inFeatures, cols: k)
    }

    /// G = M Mᵀ (Double) for a row-major [rows, width] M.
    static func gram(rowsOf m: [Float], rows: Int, width: Int) -> [Double] {
        var g = [Double](repeating: 0, count: rows * rows)
        for i in 0..<rows {
            for j in i..<rows {
                var s = 0.0
                for t in 0..<width { s += Double(m[i * width + t]) * Double(m[j * width + t]) }
                g[i * rows + j] = s
                g[j * rows + i] = s
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
