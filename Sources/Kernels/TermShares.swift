import Foundation

/// lego's `target: share` (docs/METHODS.md, lego step 3): the rank choice aims at T̃ = Σ_t T_t / ‖T_t‖^p instead of
/// T = Σ_t T_t, where T_t = c_t B_t A_t is term t's update in the module. Every adapter then counts by the share of
/// its own update a direction carries, not by the size of its update: a task whose LoRA is small in a module (its
/// units are a few percent of ‖T‖ there) keeps its main directions instead of losing them to the larger tasks.
/// Expressed per unit as weights ω_i = 1/‖T_{term(i)}‖^p (T̃ = Σ_i ω_i x_B,i x_A,iᵀ), scaled so the largest is 1,
/// applied by `weightedUnits`.
public enum TermShares {
    /// ω_i for the rows of `units` (row-major [count, out + in], rows [x_B ; x_A]) whose terms are `terms[i]`
    /// (units of one term contiguous, as `RankOneUnits` extracts them). ‖T_t‖² = Σ_{i,j∈t} (b_i·b_j)(a_i·a_j).
    /// A term whose units sum to zero gets weight 0.
    public static func unitWeights(units: [Float], count: Int, outFeatures out: Int, inFeatures: Int, terms: [Int],
                                   power: Double) throws -> [Float] {
        let dimension = out + inFeatures
        guard units.count == count * dimension, terms.count == count else {
            throw KernelShapeError(kernel: "TermShares", problem: "\(units.count) values and \(terms.count) term "
                                   + "indices for \(count) units of dimension \(dimension)")
        }
        var weights = [Double](repeating: 0, count: count)
        var start = 0
        try units.withUnsafeBufferPointer { x in
            guard let x = x.baseAddress else { return }
            while start < count {
                var end = start + 1
                while end < count && terms[end] == terms[start] { end += 1 }
                guard !terms[end...].contains(terms[start]) else {
                    throw KernelShapeError(kernel: "TermShares", problem: "units of term \(terms[start]) are not contiguous")
                }
                let rows = end - start
                var gb = [Float](repeating: 0, count: rows * rows)
                var ga = [Float](repeating: 0, count: rows * rows)
                gb.withUnsafeMutableBufferPointer { g in
                    BLAS.gemm(.none, .transpose, m: rows, n: rows, k: out, a: x + start * dimension, lda: dimension,
                              b: x + start * dimension, ldb: dimension, c: g.baseAddress!)
                }
                ga.withUnsafeMutableBufferPointer { g in
                    BLAS.gemm(.none, .transpose, m: rows, n: rows, k: inFeatures, a: x + start * dimension + out,
                              lda: dimension, b: x + start * dimension + out, ldb: dimension, c: g.baseAddress!)
                }
                let normSquared = zip(gb, ga).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let weight = normSquared > 0 ? 1 / Foundation.pow(normSquared, power / 2) : 0
                for i in start..<end { weights[i] = weight }
                start = end
            }
        }
        let largest = weights.max() ?? 0
        return weights.map { largest > 0 ? Float($0 / largest) : 0 }
    }

    /// The units of T̃: row i's x_B scaled by ω_i (Σ_i ω_i x_B,i x_A,iᵀ = T̃), so every step that fits T from the
    /// units (selection, principal directions, optimal weights, refit) fits T̃ when given these.
    public static func weightedUnits(_ units: [Float], count: Int, outFeatures out: Int, inFeatures: Int,
                                     weights: [Float]) -> [Float] {
        var weighted = units
        let dimension = out + inFeatures
        weighted.withUnsafeMutableBufferPointer { x in
            guard let x = x.baseAddress else { return }
            for i in 0..<min(count, weights.count) { BLAS.scal(out, alpha: weights[i], x: x + i * dimension) }
        }
        return weighted
    }
}
