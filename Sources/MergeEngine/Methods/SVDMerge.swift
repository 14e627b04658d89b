import Kernels

/// `svd`: the best rank-k approximation of T = Σ c_i B_i A_i (Eckart–Young), computed from the stacked factors
/// through thin QR and an SVD of the small R×R core, never forming T (see `FactoredProduct`).
/// Output rank is min(k, R, out, in): singular values beyond that are zero, so padding would only add zeros.
/// Factors are balanced (√σ in each); singular-vector signs are fixed (largest |entry| of each B' column positive)
/// so results are reproducible. Only the top k singular triplets are computed; the floor comes with them
/// (sqrt(‖T‖² − Σ_{i≤k} σ_i²) / ‖T‖ in Double), so `ModuleQuality` skips its own spectrum for svd.
enum SVDMerge {
    static func merge(_ input: ModuleInput, rank: Int) throws -> ModuleResult {
        guard rank >= 1 else { throw MergeError("module \(input.name): svd needs rank ≥ 1, got \(rank)") }
        let target = try input.stackedTarget()
        guard target.rank > 0, input.outFeatures > 0, input.inFeatures > 0 else { return .zero(for: input) }
        let product = try FactoredProduct(leftColumns: target.bColumns, right: target.a, rows: input.outFeatures,
                                          inner: target.rank, cols: input.inFeatures)
        let svd = try product.truncatedSVD(rank: rank)
        guard svd.rank > 0 else { return .zero(for: input) }
        return ModuleResult(name: input.name, rank: svd.rank, outFeatures: input.outFeatures,
                            inFeatures: input.inFeatures, b: svd.left, a: svd.right,
                            stats: ModuleStats(relativeError: 0, svdFloor: svd.floor))
    }
}
