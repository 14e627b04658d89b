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
/// - Reweighting is a function of per-cluster sufficient statistics (`ClusterStatistics`: counts, aligned sums,
///   member norm sums, and h for `optimal`), so a module clustered in blocks on several workers reweights the same.
///   Weights apply to the clustering's own centroids (the aligned means of the final assignment), or with
///   `direction: principal` (the default for `optimal` and `none`) to each cluster's best rank-one approximation
///   of its members' sum, by `powerIterations` power iterations started from the mean (`ClusterPrincipalDirections`).
/// - `oversample` (default 2) clusters into f·k fine clusters and keeps k of them (`selectClusters`), only when the
///   module has at least `LegoOptions.oversampleUnitsPerFineCluster` units per fine cluster (else it clusters at k).
/// - `gauge: raw` changes only how units are written (`[sign(c)√|c| b ; √|c| a]`); the distance stays
///   sign-invariant, so the two gauges differ in one thing.
enum LegoMerge {
    static func merge(_ input: ModuleInput, rank: Int, options: LegoOptions, seed: UInt64) throws -> ModuleResult {
        try merge(ModuleTermSource(input), rank: rank, options: options, seed: seed)
    }

    /// The units are extracted from `input` term by term (`ModuleTermSource.units`): the method holds the unit
    /// matrix and one adapter's factors, never the whole Float32 input.
    static func merge(_ input: ModuleTermSource, rank: Int, options: LegoOptions, seed: UInt64) throws -> ModuleResult {
        guard rank >= 1 else { throw MergeError("module \(input.name): lego needs rank ≥ 1, got \(rank)") }
        switch options.basis {
        case .svd: return try merge(input, rank: rank, options: options, seed: seed, basis: .svd).result
        case .raw: return try merge(input, rank: rank, options: options, seed: seed, basis: .raw).result
        case .auto:
            // Cluster in both bases; keep the one whose centroids explain more of the units' energy (the lower
            // k-means objective relative to Σ‖x‖²): the basis in which the pool's units agree. Ties go to svd.
            let canonical = try merge(input, rank: rank, options: options, seed: seed, basis: .svd)
            let stored = try merge(input, rank: rank, options: options, seed: seed, basis: .raw)
            var chosen = stored.unexplained < canonical.unexplained ? stored : canonical
            chosen.result.stats.basis = stored.unexplained < canonical.unexplained ? "raw" : "svd"
            return chosen.result
        }
    }

    /// One clustering + reweighting in one unit basis; `unexplained` = k-means objective / Σ‖x‖² ∈ [0, 1].
    static func merge(_ input: ModuleTermSource, rank: Int, options: LegoOptions, seed: UInt64,
                      basis: UnitBasis) throws -> (result: ModuleResult, unexplained: Double) {
        let units = try input.units(gauge: options.gauge == .raw ? .raw : .balanced, basis: basis)
        guard units.count > 0 else {
            return (.zero(for: input, stats: ModuleStats(relativeError: 0, clusterSizes: [], iterations: 0, finalDistance: 0,
                                                          clusterCoherence: [], catchAllShare: 0)), 0)
        }
        let kmeans = KMeansOptions(iterations: max(0, options.iterations), tolerance: max(0, options.tolerance),
                                   restarts: max(1, options.restarts),
                                   seedingRounds: options.initialization.seedingRounds)
        let selectsUnits = options.selectsUnits(units: units.count, rank: rank)
        // `small_pool: select`: every unit is a fine cluster of its own (k-means at k ≥ n is the identity).
        let clusters = selectsUnits ? units.count : options.clusteringCount(units: units.count, rank: rank)
        // One visit of each unit for the norms k-means, its bounds and the cluster statistics all take.
        let norms = units.norms ?? UnitNorms.of(units.vectors, count: units.count, dimension: units.dimension)
        var clustering = try SignInvariantKMeans.cluster(
            units: units.vectors, count: units.count, dimension: units.dimension, k: clusters, options: kmeans,
            seed: seed, norms: norms)
        // `balance`: the heads, directions, weights and refit rounds fit T̃ = Σ_t T_t/‖T_t‖^balance (its units),
        // the core fit at the end fits T inside the subspaces they chose.
        let balance = options.effectiveBalance(units: units.count, rank: rank)
        var aimed = units
        if balance > 0 {
            let weights = try TermShares.unitWeights(units: units.vectors, count: units.count,
                                                     outFeatures: units.outFeatures, inFeatures: units.inFeatures,
                                                     terms: units.sources.map(\.term), power: balance)
            aimed.vectors = TermShares.weightedUnits(units.vectors, count: units.count, outFeatures: units.outFeatures,
                                                     inFeatures: units.inFeatures, weights: weights)
        }
        // The norms and the final Lloyd sums hold for the units as clustered, not for T̃'s rescaled ones.
        let aimedNorms = balance > 0 ? nil : norms.norms
        if balance > 0 { clustering.alignedSums = nil }
        if clustering.clusterCount > rank {
            clustering = try selectClusters(clustering, k: rank, units: aimed, options: options,
                                            blockSize: kmeans.blockSize, catchAll: !selectsUnits, norms: aimedNorms)
        }
        let k = clustering.clusterCount
        var statistics = try ClusterStatistics.of(
            units: aimed.vectors, count: units.count, outFeatures: units.outFeatures, inFeatures: units.inFeatures,
            assignment: clustering.assignment, signs: clustering.signs, k: k, blockSize: kmeans.blockSize,
            norms: aimedNorms, alignedSums: clustering.alignedSums)
        // What each cluster contributes before its weight: its mean, or its members' best rank-one.
        var directions = clustering.centroids
        var powerIterationsRun = 0
        let weights: [Double]
        if k == units.count {
            // Every unit is its own cluster: weight 1 reproduces T exactly under every reweighting.
            weights = [Double](repeating: 1, count: k)
        } else {
            if options.effectiveDirection == .principal {
                let found = ClusterPrincipalDirections.principal(
                    units: aimed.vectors, count: units.count, outFeatures: units.outFeatures,
                    inFeatures: units.inFeatures, assignment: clustering.assignment, k: k,
                    centroids: clustering.centroids, iterations: options.powerIterations,
                    tolerance: ClusterPrincipalDirections.defaultTolerance, blockSize: kmeans.blockSize)
                directions = found.units
                powerIterationsRun = found.iterations.max() ?? 0
            }
            if options.reweight == .optimal {
                statistics.addProjections(units: aimed.vectors, count: units.count, centroids: directions,
                                          blockSize: kmeans.blockSize)
            }
            weights = try ClusterReweighting(options.reweight).weights(statistics, centroids: directions)
        }
        var (b, a) = assemble(centroids: directions, count: k, weights: weights, outFeatures: units.outFeatures,
                              inFeatures: units.inFeatures)
        // With `balance` the rounds fit T̃ (`balanceRounds` of them), and the core fit returns to T.
        let rounds = balance > 0 ? max(0, options.balanceRounds) : options.effectiveRefit
        if k < units.count && rounds > 0 {
            // Continue optimal's least-squares fit from one weight per rank to whole factors (B' | A', then A' | B').
            try FactorRefit.refit(units: aimed.vectors, count: units.count, outFeatures: units.outFeatures,
                                  inFeatures: units.inFeatures, b: &b, a: &a, k: k, rounds: rounds)
        }
        if k < units.count, balance > 0 {
            // The subspaces were chosen for T̃; the product within them is fitted to T itself.
            try FactorRefit.coreFit(units: units.vectors, count: units.count, outFeatures: units.outFeatures,
                                    inFeatures: units.inFeatures, b: &b, a: &a, k: k)
        }
        var result = ModuleResult(name: input.name, rank: k, outFeatures: input.outFeatures,
                                  inFeatures: input.inFeatures, b: b, a: a,
                                  stats: ModuleStats(relativeError: 0, clusterSizes: clustering.clusterSizes,
                                                     iterations: clustering.iterations,
                                                     finalDistance: clustering.finalObjective,
                                                     clusterCoherence: statistics.coherence,
                                                     catchAllShare: statistics.catchAllShare()))
        // What ran on this module (the report's per-module `direction`, `power_iterations`, `oversample`, `refit`,
        // `balance`, `balance_rounds`).
        let principal = k != units.count && options.effectiveDirection == .principal
        result.stats.direction = (principal ? LegoOptions.Direction.principal : .mean).rawValue
        // The iterations run: the most any cluster ran before its stop (at most `power_iterations`).
        result.stats.powerIterations = principal ? powerIterationsRun : nil
        result.stats.oversample = !selectsUnits && clusters > rank ? clusters / rank : 1
        // A balanced module's rounds fit T̃, not T: they are `balance_rounds`, and `refit` (rounds against T) is 0.
        let balanced = k < units.count && balance > 0
        result.stats.refit = k < units.count && !balanced ? rounds : 0
        result.stats.balance = balanced ? balance : 0
        result.stats.balanceRounds = balanced ? rounds : nil
        if k == units.count {
            // One cluster per unit with weight 1: B'A' = T exactly, floor 0 (rank n ≥ rank T).
            result.stats.svdFloor = 0
            result.knownQuality = .exact
        }
        let energy = statistics.normSquaredSums.reduce(0, +)
        return (result, energy > 0 ? clustering.finalObjective / energy : 0)
    }

    /// `oversample`: from a clustering into more than k fine clusters, keep as clusters of their own the k − 1 whose
    /// principal rank-ones fit T best together (greedy forward selection by least-squares captured energy:
    /// `RankOneSelection`); every other fine cluster joins the kept one its rank-one is closest to if |cos| ≥ 1/2
    /// (a piece of the same direction), else the merged cluster k − 1. Why: with more directions in the
    /// pool than k, k-means isolates k − 1 of them more or less at random (its objective is nearly flat over which
    /// ones) and leaves the rest in a catch-all; choosing them by their fit to T is what an SVD would prefer.
    /// Members keep the sign of their fine cluster; the merged cluster's mean (only the start of its power
    /// iterations and its coherence) aligns members per fine cluster. The k-means objective reported is the fine one.
    ///
    /// `catchAll: false` (`small_pool: select`, fine clusters of one unit): k heads are kept and every other fine
    /// cluster joins the head its rank-one is most aligned with (largest |cos|, ties to the earlier pick), so no
    /// cluster lumps unrelated units; the reported objective is the k-means objective of the merged assignment.
    /// `norms`: the `UnitNorms.norms` of `units` if known. The result's `alignedSums` are those of the merged clusters.
    static func selectClusters(_ fine: KMeansResult, k: Int, units: RankOneUnits, options: LegoOptions,
                               blockSize: Int, catchAll: Bool = true, norms: [Double]? = nil) throws -> KMeansResult {
        let fineK = fine.clusterCount
        let rankOnes = ClusterPrincipalDirections.principal(
            units: units.vectors, count: units.count, outFeatures: units.outFeatures, inFeatures: units.inFeatures,
            assignment: fine.assignment, k: fineK, centroids: fine.centroids, iterations: options.powerIterations,
            tolerance: ClusterPrincipalDirections.defaultTolerance, blockSize: blockSize).units
        var projections = ClusterStatistics(k: fineK, outFeatures: units.outFeatures, inFeatures: units.inFeatures)
        projections.addProjections(units: units.vectors, count: units.count, centroids: rankOnes, blockSize: blockSize)
        let (chosen, target) = try selectionTargets(gram: projections.centroidGram(rankOnes),
                                                    projections: projections.projections ?? [], fineCount: fineK, k: k,
                                                    catchAll: catchAll)
        let assignment = fine.assignment.map { target[$0] }
        var sizes = [Int](repeating: 0, count: k)
        for cluster in assignment { sizes[cluster] += 1 }
        var signs = fine.signs
        if !catchAll {
            // Fine clusters are single units: each member enters its cluster with the sign of its dot product with
            // the head (for the mean, the coherence and the objective; the rank-one ignores signs).
            let dimension = units.dimension
            units.vectors.withUnsafeBufferPointer { x in
                guard let x = x.baseAddress else { return }
                for i in 0..<units.count {
                    let head = chosen[assignment[i]]
                    var dot = 0.0
                    for j in 0..<dimension { dot += Double(x[i * dimension + j]) * Double(x[head * dimension + j]) }
                    signs[i] = dot < 0 ? -1 : 1
                }
            }
        }
        let statistics = try ClusterStatistics.of(units: units.vectors, count: units.count,
                                                  outFeatures: units.outFeatures, inFeatures: units.inFeatures,
                                                  assignment: assignment, signs: signs, k: k, blockSize: blockSize,
                                                  norms: norms)
        var selected = fine
        selected.clusterCount = k
        selected.centroids = statistics.centroids
        selected.alignedSums = statistics.alignedSums
        selected.assignment = assignment
        selected.clusterSizes = sizes
        if !catchAll {
            selected.signs = signs
            // Σ_i ‖x_i‖² − Σ_c ‖Σ_{i∈c} s_i x_i‖² / n_c: the k-means objective of these clusters at their means.
            let explained = statistics.alignedSums.withUnsafeBufferPointer { m in
                (0..<k).reduce(0.0) { total, c in
                    guard let m = m.baseAddress, statistics.counts[c] > 0 else { return total }
                    let norm = Double(BLAS.nrm2(units.dimension, m + c * units.dimension))
                    return total + norm * norm / Double(statistics.counts[c])
                }
            }
            selected.objectiveHistory = [max(0, statistics.normSquaredSums.reduce(0, +) - explained)]
        }
        return selected
    }

    /// `selectClusters`' choice from the fine clusters' rank-ones (their Gram and projections h on T): the kept ones
    /// in the order chosen, and the cluster 0..<k each fine cluster joins. Split modules call it on the Gram and h
    /// reduced over their blocks (`SplitLego`).
    static func selectionTargets(gram: [Double], projections: [Double], fineCount fineK: Int, k: Int,
                                 catchAll: Bool) throws -> (chosen: [Int], targets: [Int]) {
        let chosen = try RankOneSelection.greedy(gram: gram, projections: projections, count: fineK,
                                                 select: catchAll ? k - 1 : k)
        var target = [Int](repeating: catchAll ? k - 1 : 0, count: fineK)
        for (position, cluster) in chosen.enumerated() { target[cluster] = position }
        // A fine cluster that is another piece of a kept one (|cos| of their rank-ones ≥ 1/2: k-means split one
        // direction) joins it, so the merged cluster holds only what the kept ones do not carry.
        for fine in 0..<fineK where !chosen.contains(fine) && gram[fine * fineK + fine] > 0 {
            var best = -1, bestCosine = catchAll ? 0.5 : -1
            for (position, kept) in chosen.enumerated() where gram[kept * fineK + kept] > 0 {
                let cosine = abs(gram[fine * fineK + kept])
                    / (gram[fine * fineK + fine] * gram[kept * fineK + kept]).squareRoot()
                if catchAll ? cosine >= bestCosine : cosine > bestCosine { bestCosine = cosine; best = position }
            }
            if best >= 0 { target[fine] = best }
        }
        return (chosen, target)
    }

    /// b'_t = sign(β_t)√|β_t| μ_B,t, a'_t = √|β_t| μ_A,t for rows μ_t = [μ_B,t ; μ_A,t] of `centroids` (the
    /// aligned means, or the clusters' principal rank-one units).
    static func assemble(centroids: [Float], count k: Int, weights: [Double], outFeatures out: Int,
                         inFeatures: Int) -> (b: [Float], a: [Float]) {
        let dim = out + inFeatures
        var b = [Float](repeating: 0, count: out * k)
        var a = [Float](repeating: 0, count: k * inFeatures)
        centroids.withUnsafeBufferPointer { m in
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

extension ClusterReweighting {
    init(_ option: LegoOptions.Reweight) {
        switch option {
        case .none: self = .none
        case .sum: self = .sum
        case .dual: self = .dual
        case .optimal: self = .optimal
        }
    }
}
