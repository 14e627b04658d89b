import AdapterIO
import Kernels
import MergeEngine

/// Cosine similarity of adapters' weight updates without forming any ΔW: for ΔW_x = s_x B_x A_x,
/// ⟨ΔW_x, ΔW_y⟩_F = s_x s_y Σ_{pq} (B_xᵀ B_y)[p, q] · (A_x A_yᵀ)[p, q], two small Gram matrices (r_x × r_y) per
/// module from the kernels' sgemm, accumulated in Float64 over the modules both adapters have.
public enum AdapterSimilarity {
    /// ⟨ΔW_x, ΔW_y⟩ for one module.
    public static func inner(_ x: FactorTerm, _ y: FactorTerm, outFeatures: Int, inFeatures: Int) -> Double {
        // Bᵀ_x B_y: [r_x, r_y] = (B_x [out, r_x])ᵀ · B_y [out, r_y]
        let bGram = BLAS.matmul(x.b, y.b, m: x.rank, n: y.rank, k: outFeatures, transA: .transpose)
        // A_x A_yᵀ: [r_x, r_y] = A_x [r_x, in] · (A_y [r_y, in])ᵀ
        let aGram = BLAS.matmul(x.a, y.a, m: x.rank, n: y.rank, k: inFeatures, transB: .transpose)
        var sum = 0.0
        for index in bGram.indices { sum += Double(bGram[index]) * Double(aGram[index]) }
        return x.coefficient * y.coefficient * sum
    }

    /// cos(ΔW_i, ΔW_target) over all modules (a module one side lacks contributes 0 to the inner product and its
    /// norm to the side that has it), one value per pool adapter.
    public static func cosines(pool: [LoadedAdapter], target: LoadedAdapter) throws -> [Double] {
        let targetTerms = try terms(target)
        let targetNorm = targetTerms.values.reduce(0) { $0 + inner($1.term, $1.term, outFeatures: $1.out, inFeatures: $1.in) }
        return try pool.map { adapter in
            let own = try terms(adapter)
            var dot = 0.0, norm = 0.0
            for name in own.keys.sorted() {
                guard let x = own[name] else { continue }
                norm += inner(x.term, x.term, outFeatures: x.out, inFeatures: x.in)
                if let y = targetTerms[name], y.out == x.out, y.in == x.in {
                    dot += inner(x.term, y.term, outFeatures: x.out, inFeatures: x.in)
                }
            }
            let denominator = (norm * targetNorm).squareRoot()
            return denominator > 0 ? dot / denominator : 0
        }
    }

    static func terms(_ adapter: LoadedAdapter) throws -> [String: (term: FactorTerm, out: Int, in: Int)] {
        var result: [String: (term: FactorTerm, out: Int, in: Int)] = [:]
        for module in adapter.modules {
            let plan = ModulePlan(name: module.name, outFeatures: module.outFeatures, inFeatures: module.inFeatures,
                                  sources: [ModuleSource(adapterIndex: 0, module: module, coefficient: module.scaling)], seed: 0)
            guard let term = try plan.loadInput().terms.first else { continue }
            result[module.name] = (term, module.outFeatures, module.inFeatures)
        }
        return result
    }
}
