import Kernels

/// `svd`: the best rank-k approximation of T = Σ c_i B_i A_i (Eckart–Young) from the stacked factors, never
/// forming T whole. The route (QR of the factors, subspace iteration on the operator, or T in blocks + a Gram
/// eigensolver) is chosen by `ProductCostModel` from the shapes (docs/kernels.md, "svd routes"); every route gives
/// the same truncation. Output rank is min(k, R, out, in): singular values beyond that are zero. Factors are
/// balanced (√σ in each); signs are fixed (largest |entry| of each B' column positive). On the exact routes the
/// floor comes with the triplets and the error equals it (Eckart–Young), so `ModuleQuality` computes nothing more;
/// on the Krylov route it measures ‖T‖ by one dense pass or estimates it (error² = ‖T‖² − Σσ̃² exactly).
enum SVDMerge {
    static func merge(_ input: ModuleInput, rank: Int, seed: UInt64, wantQuality: Bool = true,
                      route: ProductRoute? = nil) throws -> ModuleResult {
        try merge(ModuleTermSource(input), rank: rank, seed: seed, wantQuality: wantQuality, route: route)
    }

    /// Stacks the factors term by term from `source` (`ModuleTermSource.stackedTarget()`): the stacked factors
    /// are the only copy of the input this method holds; the Krylov route's capture shares them with the quality
    /// figures.
    static func merge(_ source: ModuleTermSource, rank: Int, seed: UInt64, wantQuality: Bool = true,
                      route: ProductRoute? = nil) throws -> ModuleResult {
        let input = source.shapeOnly
        guard rank >= 1 else { throw MergeError("module \(input.name): svd needs rank ≥ 1, got \(rank)") }
        let target = try source.stackedTarget()
        guard target.rank > 0, input.outFeatures > 0, input.inFeatures > 0 else { return .zero(for: input) }
        let product = try target.product(outFeatures: input.outFeatures, inFeatures: input.inFeatures)
        let truncation = try product.truncatedSVD(rank: rank, seed: seed, wantNorm: wantQuality, route: route)
        let svd = truncation.svd
        guard svd.rank > 0 else { return .zero(for: input) }
        var result = ModuleResult(name: input.name, rank: svd.rank, outFeatures: input.outFeatures,
                                  inFeatures: input.inFeatures, b: svd.left, a: svd.right,
                                  stats: ModuleStats(relativeError: 0, svdFloor: truncation.hasNorm ? svd.floor : nil))
        result.stats.svdRoute = truncation.route.rawValue
        if truncation.route == .krylov || truncation.fellBack { result.stats.svdIterations = truncation.iterations }
        result.knownQuality = .truncation(values: svd.singularValues,
                                          norm: truncation.hasNorm ? svd.frobeniusNorm : nil,
                                          capture: truncation.captured)
        return result
    }
}
