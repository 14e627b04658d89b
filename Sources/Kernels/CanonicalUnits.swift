import COpenBLAS

/// The canonical (SVD) rank-one units of one term `c · B · A` (B [out, r], A [r, in]), written straight into rows
/// of the unit matrix: row t = [b'_t ; a'_t] with `c B A = Σ_t b'_t a'_tᵀ`, b'_t = √σ_t u_t, a'_t = √σ_t v_t, for
/// the term's singular triplets (σ_t, u_t, v_t) with σ_t > `TopSingularTriplets.relativeCutoff` · σ_1.
///
/// Route: the two r×r Gram matrices `G_B = BᵀB`, `G_A = AAᵀ` in Double (the factors widened to Double, `dsyrk`),
/// their eigen-decompositions `G = V Λ Vᵀ` give B = Q_B S_B V_Bᵀ and Aᵀ = Q_A S_A V_Aᵀ with S = Λ^½ and
/// Q = B V S⁻¹ orthonormal, so `c B A = Q_B K Q_Aᵀ` with the r×r core K = c S_B V_Bᵀ V_A S_A = U Σ Wᵀ (`dgesvd`).
/// Then b'_t = B (V_B S_B⁻¹ U Σ^½) e_t and a'_tᵀ = e_tᵀ (Σ^½ Wᵀ S_A⁻¹ V_Aᵀ) A: two GEMMs of the stored factors by
/// r×r matrices, written into the unit rows (no Q is formed, nothing is transposed). Signs: the largest-magnitude
/// entry of b'_t (lowest index on ties, `isamax`) is made positive by negating the whole row.
///
/// Why not Householder QRs of B and Aᵀ (`FactoredProduct`, the previous route; the tests' reference): on the
/// 64-adapter pool the two thin QRs, their Q applications and the transposes around them were ~15 % of a lego
/// run; the Grams read each factor once. Accuracy: the Grams are exact products summed in Double, so the factor
/// directions come out at Float accuracy down to s ≈ 1e-6 s_max; directions of a factor below `factorCutoff` · s_max
/// are treated as zero (they change the factor by less than Float rounding of its bf16 data). Each unit carries a
/// relative error of about ε_Float · cond(B) from the Float GEMM against the QR route's ε_Float: far below the
/// bf16 inputs' 4e-3 for any trained LoRA factor (tested against the QR route).
enum CanonicalUnits {
    /// Eigen-directions of a factor's Gram with λ ≤ factorCutoff² · λ_max are dropped (s ≤ factorCutoff · s_max).
    static let factorCutoff = 1e-6

    /// Reusable Double scratch for the widened factors (one term at a time).
    struct Scratch {
        var values: [Double] = []

        mutating func widened(_ x: [Float]) -> [Double] {
            if values.count < x.count { values = [Double](repeating: 0, count: x.count) }
            values.withUnsafeMutableBufferPointer { v in
                x.withUnsafeBufferPointer { f in
                    for i in 0..<f.count { v[i] = Double(f[i]) }
                }
            }
            return values
        }
    }

    /// Writes the term's kept canonical units (unscaled: b'_t and a'_t each of norm √σ_t up to rounding) as rows
    /// t = 0, 1, … of `rows` (row stride outFeatures + inFeatures); returns how many (≤ min(r, out, in)).
    /// A term with c = 0 or rank 0 writes nothing. Non-finite factors or coefficient are an error.
    static func write(_ term: FactorTerm, outFeatures out: Int, inFeatures: Int, into rows: UnsafeMutablePointer<Float>,
                      scratch: inout Scratch) throws -> Int {
        let r = term.rank, dim = out + inFeatures
        guard r > 0, term.coefficient != 0, out > 0, inFeatures > 0 else { return 0 }
        let gramB = gram(scratch.widened(term.b), rows: out, cols: r, tall: true)
        let gramA = gram(scratch.widened(term.a), rows: r, cols: inFeatures, tall: false)
        guard term.coefficient.isFinite, gramB.allSatisfy(\.isFinite), gramA.allSatisfy(\.isFinite) else {
            throw KernelShapeError(kernel: "CanonicalUnits", problem: "non-finite coefficient or factors of a "
                                   + "[\(out), \(r)] · [\(r), \(inFeatures)] term")
        }
        let (vB, sB) = try directions(gramB, size: r)
        let (vA, sA) = try directions(gramA, size: r)
        let pB = sB.count, pA = sA.count
        guard pB > 0, pA > 0 else { return 0 }
        // K = c S_B V_Bᵀ V_A S_A, column-major [pB, pA].
        var core = [Double](repeating: 0, count: pB * pA)
        for j in 0..<pA {
            for i in 0..<pB {
                var dot = 0.0
                for l in 0..<r { dot += vB[i * r + l] * vA[j * r + l] }
                core[j * pB + i] = term.coefficient * sB[i] * sA[j] * dot
            }
        }
        let p = min(pB, pA)
        var sigma = [Double](repeating: 0, count: p)
        var u = [Double](repeating: 0, count: pB * p)
        var wt = [Double](repeating: 0, count: p * pA)
        var superb = [Double](repeating: 0, count: max(1, p))
        let info = LAPACKE_dgesvd(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "S")), CChar(UInt8(ascii: "S")), Int32(pB),
                                  Int32(pA), &core, Int32(pB), &sigma, &u, Int32(pB), &wt, Int32(p), &superb)
        guard info == 0 else { throw LinearAlgebraError(routine: "dgesvd", info: info) }
        guard let top = sigma.first, top > 0 else { return 0 }
        let kept = sigma.prefix { $0 > TopSingularTriplets.relativeCutoff * top }.count
        // M_B = V_B S_B⁻¹ U Σ^½, row-major [r, kept]; N_A = Σ^½ Wᵀ S_A⁻¹ V_Aᵀ, row-major [kept, r].
        var mB = [Float](repeating: 0, count: r * kept)
        var nA = [Float](repeating: 0, count: kept * r)
        for t in 0..<kept {
            let root = sigma[t].squareRoot()
            for l in 0..<r {
                var left = 0.0, right = 0.0
                for i in 0..<pB { left += vB[i * r + l] * u[t * pB + i] / sB[i] }
                for j in 0..<pA { right += vA[j * r + l] * wt[j * p + t] / sA[j] }
                mB[l * kept + t] = Float(left * root)
                nA[t * r + l] = Float(right * root)
            }
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, Int32(kept), Int32(out), Int32(r), 1, mB, Int32(kept),
                    term.b, Int32(r), 0, rows, Int32(dim))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(kept), Int32(inFeatures), Int32(r), 1, nA,
                    Int32(r), term.a, Int32(inFeatures), 0, rows + out, Int32(dim))
        for t in 0..<kept {
            let row = rows + t * dim
            let largest = Int(cblas_isamax(Int32(out), row, 1))
            if row[largest] < 0 { BLAS.scal(dim, alpha: -1, x: row) }
        }
        return kept
    }

    /// `XᵀX` of a row-major [rows, cols] X (`tall`, cols = r) or `XXᵀ` (rows = r), r×r, both triangles filled.
    static func gram(_ x: [Double], rows: Int, cols: Int, tall: Bool) -> [Double] {
        let size = tall ? cols : rows
        var g = [Double](repeating: 0, count: size * size)
        cblas_dsyrk(CblasRowMajor, CblasLower, tall ? CblasTrans : CblasNoTrans, Int32(size), Int32(tall ? rows : cols),
                    1, x, Int32(cols), 0, &g, Int32(size))
        for i in 0..<size { for j in (i + 1)..<max(i + 1, size) { g[i * size + j] = g[j * size + i] } }
        return g
    }

    /// The eigen-directions of a Gram with λ > factorCutoff² · λ_max, largest first: (vectors, row-major [kept, r]:
    /// row i = v_i; s_i = √λ_i).
    static func directions(_ gram: [Double], size r: Int) throws -> (vectors: [Double], s: [Double]) {
        var a = gram
        var lambda = [Double](repeating: 0, count: r)
        let info = LAPACKE_dsyev(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "L")), Int32(r), &a,
                                 Int32(r), &lambda)
        guard info == 0 else { throw LinearAlgebraError(routine: "dsyev", info: info) }
        guard let largest = lambda.last, largest > 0 else { return ([], []) }
        var vectors: [Double] = [], s: [Double] = []
        for i in stride(from: r - 1, through: 0, by: -1) where lambda[i] > factorCutoff * factorCutoff * largest {
            vectors += a[(i * r)..<((i + 1) * r)]
            s.append(lambda[i].squareRoot())
        }
        return (vectors, s)
    }
}
