/// Greedy forward selection of rank-one terms M_t (given by their Gram matrix G_st = ⟨M_s, M_t⟩_F and their
/// projections h_t = ⟨M_t, T⟩_F on a target T) that fit T best with least-squares weights: each step adds the term
/// that most raises the captured energy hᵀ_S G_S⁻¹ h_S (= ‖T‖² − min_β ‖T − Σ_{t∈S} β_t M_t‖²). Ties go to the
/// lowest index, so the result is deterministic. Used by lego's `oversample` (choose which fine clusters keep
/// their own output rank).
public enum RankOneSelection {
    /// The captured energy hᵀ_S G_S⁻¹ h_S of the terms `indices` (least squares; a singular G_S uses the
    /// minimum-norm solution).
    public static func capturedEnergy(gram g: [Double], projections h: [Double], count n: Int,
                                      indices: [Int]) throws -> Double {
        let m = indices.count
        guard m > 0 else { return 0 }
        let sub = (0..<(m * m)).map { g[indices[$0 / m] * n + indices[$0 % m]] }
        let rhs = indices.map { h[$0] }
        let beta = try LinearAlgebra.solveSymmetricPositiveSemidefinite(sub, rhs, n: m)
        return zip(beta, rhs).reduce(0) { $0 + $1.0 * $1.1 }
    }

    /// Relative squared residual below which a candidate counts as in the span of the chosen terms.
    public static let spanTolerance = 1e-5
    /// Squared residual, relative to the largest term's ‖M‖², below which a candidate adds nothing: the Gram entries
    /// of Float32 rank-ones carry rounding at that scale, so a tiny term's own relative residual is not reliable
    /// (three copies of one adapter at k = 12 chose copies of its weakest units without this).
    public static let energyTolerance = 1e-8

    /// ‖M_c − P_S M_c‖² = G_cc − g_Sᵀ G_S⁻¹ g_S: what of term c the chosen terms S cannot represent.
    static func residual(gram g: [Double], count n: Int, chosen: [Int], candidate c: Int) throws -> Double {
        guard !chosen.isEmpty else { return g[c * n + c] }
        let m = chosen.count
        let sub = (0..<(m * m)).map { g[chosen[$0 / m] * n + chosen[$0 % m]] }
        let column = chosen.map { g[$0 * n + c] }
        let beta = try LinearAlgebra.solveSymmetricPositiveSemidefinite(sub, column, n: m)
        return g[c * n + c] - zip(beta, column).reduce(0) { $0 + $1.0 * $1.1 }
    }

    /// Indices of `select` terms (in the order chosen) out of `n`, by greedy forward selection.
    public static func greedy(gram g: [Double], projections h: [Double], count n: Int, select: Int) throws -> [Int] {
        guard g.count == n * n, h.count == n else {
            throw KernelShapeError(kernel: "RankOneSelection", problem: "G has \(g.count) and h \(h.count) values for \(n) terms")
        }
        var chosen: [Int] = []
        var available = [Bool](repeating: true, count: n)
        let largest = (0..<n).map { g[$0 * n + $0] }.max() ?? 0
        while chosen.count < min(select, n) {
            var best = -1
            var bestEnergy = -Double.infinity
            for candidate in 0..<n where available[candidate] {
                // A term (numerically) in the span of the chosen ones adds nothing; in Float32 its near-singular
                // G_S could still show rounding as captured energy, so it is skipped (e.g. a second copy of a unit).
                let left = try residual(gram: g, count: n, chosen: chosen, candidate: candidate)
                guard left > Self.spanTolerance * g[candidate * n + candidate],
                      left > Self.energyTolerance * largest else { continue }
                let energy = try capturedEnergy(gram: g, projections: h, count: n, indices: chosen + [candidate])
                if energy > bestEnergy { bestEnergy = energy; best = candidate }
            }
            guard best >= 0 else { break }
            chosen.append(best)
            available[best] = false
        }
        return chosen
    }
}
