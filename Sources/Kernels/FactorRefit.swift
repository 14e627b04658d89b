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
        var work = Workspace()
        try refit(units: units, count: count, outFeatures: out, inFeatures: inFeatures, b: &b, a: &a, k: k,
                  rounds: rounds, workspace: &work)
    }

    /// `refit` with the caller's workspace: every round runs in its buffers (no per-round allocation once they have
    /// grown to the module's shapes).
    static func refit(units: [Float], count: Int, outFeatures out: Int, inFeatures: Int, b: inout [Float],
                      a: inout [Float], k: Int, rounds: Int, workspace work: inout Workspace) throws {
        let dimension = out + inFeatures
        guard rounds > 0, count > 0, k > 0 else { return }
        guard units.count == count * dimension, b.count == out * k, a.count == k * inFeatures else {
            throw KernelShapeError(kernel: "FactorRefit", problem: "units \(units.count), B \(b.count), A \(a.count) "
                                   + "values for \(count) units, out \(out), in \(inFeatures), k \(k)")
        }
        for _ in 0..<rounds {
            leftProduct(units: units, count: count, outFeatures: out, inFeatures: inFeatures, a: a, k: k,
                        into: &work.left, scratch: &work.products)
            try solveB(work.left, a: a, outFeatures: out, inFeatures: inFeatures, k: k, into: &b, workspace: &work)
            rightProduct(units: units, count: count, outFeatures: out, inFeatures: inFeatures, b: b, k: k,
                         into: &work.right, scratch: &work.products)
            try solveA(work.right, b: b, outFeatures: out, inFeatures: inFeatures, k: k, into: &a, workspace: &work)
        }
        balance(b: &b, a: &a, out: out, inFeatures: inFeatures, k: k)
    }

    /// The buffers `refit` reuses across its rounds (grown on first use, never shrunk): the unit products
    /// P = X_A A'ᵀ / Q = X_B B' [count, k], the sums C [out, k] and E [k, in], the Gram, the Double right-hand sides
    /// (solved in place) and the solver's scratch. A split module's rounds call the half-steps one at a time on the
    /// coordinator and workers, each with a fresh workspace: the same code, so the same bits.
    struct Workspace {
        var products: [Float] = []
        var left: [Float] = []
        var right: [Float] = []
        var gram: [Double] = []
        var rightHandSides: [Double] = []
        var solverScratch: [Double] = []
    }

    /// Makes `buffer` exactly `count` values long in its existing storage when it fits (shrinking keeps the capacity,
    /// so a buffer alternating between two sizes reallocates only the first time); the caller overwrites the values.
    static func size<T: Numeric>(_ buffer: inout [T], _ count: Int) {
        if buffer.count < count { buffer.append(contentsOf: repeatElement(0, count: count - buffer.count)) }
        else if buffer.count > count { buffer.removeLast(buffer.count - count) }
    }

    // The half-steps, split into a product over the units (a sum over units: a split module adds it up over its
    // blocks, `FactorRefitRounds`) and the solve on its sum, so both routes run the same code.

    /// C = T A'ᵀ = X_Bᵀ (X_A A'ᵀ), row-major [out, k]: P = X_A A'ᵀ [count, k], then C = X_Bᵀ P.
    static func leftProduct(units: [Float], count: Int, outFeatures out: Int, inFeatures: Int, a: [Float],
                            k: Int) -> [Float] {
        var c: [Float] = [], p: [Float] = []
        leftProduct(units: units, count: count, outFeatures: out, inFeatures: inFeatures, a: a, k: k, into: &c,
                    scratch: &p)
        return c
    }

    /// `leftProduct` into `c` with `p` as P's storage (both resized, reused across rounds by `refit`).
    static func leftProduct(units: [Float], count: Int, outFeatures out: Int, inFeatures: Int, a: [Float], k: Int,
                            into c: inout [Float], scratch p: inout [Float]) {
        size(&p, count * k)
        size(&c, out * k)
        // GEMMs with beta 0 overwrite their result: reused storage gives the bits of fresh zeros.
        BLAS.multiply(units, a, into: &p, m: count, n: k, k: inFeatures, aOffset: out, lda: out + inFeatures,
                      transB: .transpose)
        BLAS.multiply(units, p, into: &c, m: out, n: k, k: count, transA: .transpose, lda: out + inFeatures)
    }

    /// B' = C (A' A'ᵀ)⁺ for C = T A'ᵀ (`leftProduct`, summed over the units).
    static func solveB(_ c: [Float], a: [Float], outFeatures out: Int, inFeatures: Int, k: Int) throws -> [Float] {
        var b: [Float] = [], work = Workspace()
        try solveB(c, a: a, outFeatures: out, inFeatures: inFeatures, k: k, into: &b, workspace: &work)
        return b
    }

    /// `solveB` into `b` (resized to [out, k]) with `work`'s Gram, right-hand sides and solver scratch.
    static func solveB(_ c: [Float], a: [Float], outFeatures out: Int, inFeatures: Int, k: Int, into b: inout [Float],
                       workspace work: inout Workspace) throws {
        gram(a, rows: k, cols: inFeatures, of: .rows, into: &work.gram)
        // Column-major [k, out] right-hand sides = Cᵀ: column r is row r of C, so the values keep C's order.
        size(&work.rightHandSides, out * k)
        work.rightHandSides.withUnsafeMutableBufferPointer { rhs in
            for i in 0..<(out * k) { rhs[i] = Double(c[i]) }
        }
        try LinearAlgebra.solveTruncated(work.gram, &work.rightHandSides, n: k, columns: out, cutoff: Self.cutoff,
                                         scratch: &work.solverScratch)
        size(&b, out * k)
        work.rightHandSides.withUnsafeBufferPointer { x in
            b.withUnsafeMutableBufferPointer { b in for i in 0..<(out * k) { b[i] = Float(x[i]) } }
        }
    }

    /// E = B'ᵀ T = (X_B B')ᵀ X_A, row-major [k, in]: Q = X_B B' [count, k], then E = Qᵀ X_A.
    static func rightProduct(units: [Float], count: Int, outFeatures out: Int, inFeatures: Int, b: [Float],
                             k: Int) -> [Float] {
        var e: [Float] = [], q: [Float] = []
        rightProduct(units: units, count: count, outFeatures: out, inFeatures: inFeatures, b: b, k: k, into: &e,
                     scratch: &q)
        return e
    }

    /// `rightProduct` into `e` with `q` as Q's storage (both resized, reused across rounds by `refit`).
    static func rightProduct(units: [Float], count: Int, outFeatures out: Int, inFeatures: Int, b: [Float], k: Int,
                             into e: inout [Float], scratch q: inout [Float]) {
        size(&q, count * k)
        size(&e, k * inFeatures)
        BLAS.multiply(units, b, into: &q, m: count, n: k, k: out, lda: out + inFeatures)
        BLAS.multiply(q, units, into: &e, m: k, n: inFeatures, k: count, transA: .transpose, bOffset: out,
                      ldb: out + inFeatures)
    }

    /// A' = (B'ᵀ B')⁺ E for E = B'ᵀ T (`rightProduct`, summed over the units).
    static func solveA(_ e: [Float], b: [Float], outFeatures out: Int, inFeatures: Int, k: Int) throws -> [Float] {
        var a: [Float] = [], work = Workspace()
        try solveA(e, b: b, outFeatures: out, inFeatures: inFeatures, k: k, into: &a, workspace: &work)
        return a
    }

    /// `solveA` into `a` (resized to [k, in]) with `work`'s buffers. The system is Aᵀ G = Eᵀ: its right-hand sides,
    /// column-major [k, in], are E's columns (Eᵀ's rows), and the solution's column j is column j of A'.
    static func solveA(_ e: [Float], b: [Float], outFeatures out: Int, inFeatures: Int, k: Int, into a: inout [Float],
                       workspace work: inout Workspace) throws {
        gram(b, rows: out, cols: k, of: .columns, into: &work.gram)
        size(&work.rightHandSides, inFeatures * k)
        work.rightHandSides.withUnsafeMutableBufferPointer { rhs in
            e.withUnsafeBufferPointer { e in
                for j in 0..<inFeatures { for t in 0..<k { rhs[j * k + t] = Double(e[t * inFeatures + j]) } }
            }
        }
        try LinearAlgebra.solveTruncated(work.gram, &work.rightHandSides, n: k, columns: inFeatures,
                                         cutoff: Self.cutoff, scratch: &work.solverScratch)
        size(&a, k * inFeatures)
        work.rightHandSides.withUnsafeBufferPointer { x in
            a.withUnsafeMutableBufferPointer { a in
                for j in 0..<inFeatures { for t in 0..<k { a[t * inFeatures + j] = Float(x[j * k + t]) } }
            }
        }
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
        var g: [Double] = []
        gram(m, rows: rows, cols: cols, of: side, into: &g)
        return g
    }

    /// `gram` into `g` (resized to [size, size], every entry written).
    static func gram(_ m: [Float], rows: Int, cols: Int, of side: GramSide, into g: inout [Double]) {
        let size = side == .rows ? rows : cols
        let length = side == .rows ? cols : rows
        // Vector i of the Gram is row i (elements 1 apart) or column i (elements `cols` apart).
        let (vectorStride, elementStride) = side == .rows ? (cols, 1) : (1, cols)
        Self.size(&g, size * size)
        m.withUnsafeBufferPointer { m in
            g.withUnsafeMutableBufferPointer { g in
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
        }
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
