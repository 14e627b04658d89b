import Kernels

/// `lego` (LoRA-LEGO): pool every rank-one unit of every adapter, cluster them into k groups with the
/// sign-invariant k-means, and let each cluster become one unit of the merged LoRA (METHODS.md, lego).
///
/// Choices where METHODS.md is silent:
/// - Output rank is min(k, n) with n the number of non-zero units (a module of only zero units gives one zero
///   unit, since PEFT cannot load rank 0).
/// - k ≥ n: every unit is its own cluster and every reweighting reduces to weight 1 (dual: one member at its own
///   norm; optimal: weight 1 already fits T exactly), so the result is exactly T.
/// - `restarts` runs the clustering that many times from seeds derived from the module seed and keeps the lowest
///   objective (docs/kernels.md: default 3, because greedy seeding alone still misses on some structured pools).
/// - `gauge: raw` changes only how units are written (`[sign(c)√|c| b ; √|c| a]`); the distance stays
///   sign-invariant, so the two gauges differ in one thing.
enum LegoMerge {
    static func merge(_ input: ModuleInput, rank: Int, options: LegoOptions, seed: UInt64) throws -> ModuleResult {
        guard rank >= 1 else { throw MergeError("module \(input.name): lego needs rank ≥ 1, got \(rank)") }
        let units = try RankOneUnits.extract(terms: try input.factorTerms(), outFeatures: input.outFeatures,
                                         inFeatures: input.inFeatures,
                                         gauge: options.gauge == .raw ? .raw : .balanced)
        guard units.count > 0 else {
            return .zero(for: input, stats: ModuleStats(relativeError: 0, clusterSizes: [], iterations: 0, finalDistance: 0))
        }
        let clustering = try SignInvariantKMeans.cluster(
            units: units.vectors, count: units.count, dimension: units.dimension, k: rank,
            options: KMeansOptions(iterations: max(0, options.iterations), tolerance: max(0, options.tolerance),
                                   restarts: max(1, options.restarts)),
            seed: seed)
        let weights: [Double]
        if clustering.clusterCount == units.count {
            weights = [Double](repeating: 1, count: units.count)
        } else {
            switch options.reweight {
            case .none: weights = [Double](repeating: 1, count: clustering.clusterCount)
            case .dual: weights = dualWeights(clustering, units: units)
            case .optimal: weights = try optimalWeights(clustering, units: units)
            }
        }
        let (b, a) = assemble(clustering, weights: weights, units: units)
        var result = ModuleResult(name: input.name, rank: clustering.clusterCount, outFeatures: input.outFeatures,
                                  inFeatures: input.inFeatures, b: b, a: a,
                                  stats: ModuleStats(relativeError: 0, clusterSizes: clustering.clusterSizes,
                                                     iterations: clustering.iterations,
                                                     finalDistance: clustering.finalObjective))
        if clustering.clusterCount == units.count {
            // One cluster per unit with weight 1: B'A' = T exactly, floor 0 (rank n ≥ rank T).
            result.stats.svdFloor = 0
            result.knownQuality = .exact
        }
        return result
    }

    /// The paper's two steps in one scalar per cluster: rescaling μ to its members' mean norm scales μ_B μ_Aᵀ
    /// by (mean‖x‖ / ‖μ‖)², and output reweighting multiplies by the member count.
    static func dualWeights(_ clustering: KMeansResult, units: RankOneUnits) -> [Double] {
        let k = clustering.clusterCount
        let unitNorms = SignInvariantKMeans.rowNormsSquared(units.vectors, count: units.count, dimension: units.dimension)
        let centroidNorms = SignInvariantKMeans.rowNormsSquared(clustering.centroids, count: k, dimension: units.dimension)
        var normSums = [Double](repeating: 0, count: k)
        for (i, cluster) in clustering.assignment.enumerated() { normSums[cluster] += unitNorms[i].squareRoot() }
        return (0..<k).map { t in
            let members = Double(clustering.clusterSizes[t])
            guard members > 0, centroidNorms[t] > 0 else { return 0 }
            let meanNorm = normSums[t] / members
            return members * meanNorm * meanNorm / centroidNorms[t]
        }
    }

    /// β minimising ‖Σ_t β_t μ_B,t μ_A,tᵀ − T‖_F: `G β = h` with G = (M_B M_Bᵀ) ⊙ (M_A M_Aᵀ) and
    /// h_s = Σ_i (x_B,i·μ_B,s)(x_A,i·μ_A,s) (T = Σ_i x_B,i x_A,iᵀ), all inner products by GEMM.
    static func optimalWeights(_ clustering: KMeansResult, units: RankOneUnits) throws -> [Double] {
        let k = clustering.clusterCount, n = units.count
        let out = units.outFeatures, dim = units.dimension
        let inFeatures = units.inFeatures
        let centroids = clustering.centroids, vectors = units.vectors
        let gramB = halfProducts(centroids, rows: k, centroids, rows: k, offset: 0, length: out, dimension: dim)
        let gramA = halfProducts(centroids, rows: k, centroids, rows: k, offset: out, length: inFeatures, dimension: dim)
        let projB = halfProducts(vectors, rows: n, centroids, rows: k, offset: 0, length: out, dimension: dim)
        let projA = halfProducts(vectors, rows: n, centroids, rows: k, offset: out, length: inFeatures, dimension: dim)
        let g = (0..<(k * k)).map { Double(gramB[$0]) * Double(gramA[$0]) }
        var h = [Double](repeating: 0, count: k)
        for i in 0..<n { for s in 0..<k { h[s] += Double(projB[i * k + s]) * Double(projA[i * k + s]) } }
        return try LinearAlgebra.solveSymmetricPositiveSemidefinite(g, h, n: k)
    }

    /// Inner products of one half of the rows of two row-major unit matrices of width `dimension` (the B part:
    /// offset 0, length out; the A part: offset out, length in), by one GEMM: [leftRows, rightRows].
    static func halfProducts(_ left: [Float], rows leftRows: Int, _ right: [Float], rows rightRows: Int,
                             offset: Int, length: Int, dimension: Int) -> [Float] {
        var product = [Float](repeating: 0, count: leftRows * rightRows)
        left.withUnsafeBufferPointer { l in
            right.withUnsafeBufferPointer { r in
                product.withUnsafeMutableBufferPointer { p in
                    guard let l = l.baseAddress, let r = r.baseAddress, let p = p.baseAddress else { return }
                    BLAS.gemm(.none, .transpose, m: leftRows, n: rightRows, k: length, a: l + offset, lda: dimension,
                              b: r + offset, ldb: dimension, c: p)
                }
            }
        }
        return product
    }

    /// b'_t = sign(β_t)√|β_t| μ_B,t, a'_t = √|β_t| μ_A,t.
    static func assemble(_ clustering: KMeansResult, weights: [Double], units: RankOneUnits) -> (b: [Float], a: [Float]) {
        let k = clustering.clusterCount, out = units.outFeatures, inFeatures = units.inFeatures
        let dim = units.dimension
        var b = [Float](repeating: 0, count: out * k)
        var a = [Float](repeating: 0, count: k * inFeatures)
        clustering.centroids.withUnsafeBufferPointer { m in
            b.withUnsafeMutableBufferPointer { b in
                a.withUnsafeMutableBufferPointer { a in
                    guard let m = m.baseAddress, let b = b.baseAddress, let a = a.baseAddress else { return }
                    for t in 0..<k {
                        let root = abs(weights[t]).squareRoot()
                        BLAS.copy(out, x: m + t * dim, y: b + t, strideY: k)
                        BLAS.scal(out, alpha: Float(weights[t] < 0 ? -root : root), x: b + t, stride: k)
                        BLAS.copy(inFeatures, x: m + t * dim + out, y: a + t * inFeatures)
                        BLAS.scal(inFeatures, alpha: Float(root), x: a + t * inFeatures)
                    }
                }
            }
        }
        return (b, a)
    }
}
