/// Per-cluster sufficient statistics of a lego clustering: everything reweighting and the cluster-quality report
/// need, as sums over units, so a module split into blocks of units (on several workers) reduces them by addition
/// in block order. Units are rows `x = [x_B ; x_A]` (B half first, `outFeatures` values, then `inFeatures`).
///
/// `none`, `sum`, `dual`, the coherence and the catch-all share need `counts`, `alignedSums`, `normSums` and
/// `normSquaredSums` only; `optimal` also needs `projections` (h), one more pass over the units with the final
/// centroids, and the k×k centroid Gram.
public struct ClusterStatistics: Sendable, Equatable {
    public let k: Int
    public let outFeatures: Int
    public let inFeatures: Int
    /// Members per cluster.
    public var counts: [Int]
    /// Row-major [k, dimension]: Σ over members of sign(x·μ) x (the Lloyd step's centroid sums).
    public var alignedSums: [Float]
    /// Σ over members of ‖x‖.
    public var normSums: [Double]
    /// Σ over members of ‖x‖².
    public var normSquaredSums: [Double]
    /// h_s = Σ over ALL units i of (x_B,i·μ_B,s)(x_A,i·μ_A,s) with μ the final centroids; nil until added.
    public var projections: [Double]?

    public var dimension: Int { outFeatures + inFeatures }

    /// All-zero statistics (the identity of `reduce`).
    public init(k: Int, outFeatures: Int, inFeatures: Int) {
        self.k = k
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        counts = [Int](repeating: 0, count: k)
        alignedSums = [Float](repeating: 0, count: k * (outFeatures + inFeatures))
        normSums = [Double](repeating: 0, count: k)
        normSquaredSums = [Double](repeating: 0, count: k)
        projections = nil
    }

    /// One block's statistics: `units` row-major [count, dimension], the cluster and sign of each unit.
    /// The aligned sums are `SignInvariantKMeans.signedSums` (as in a Lloyd step, so the same block gives the same
    /// bits).
    public static func block(units: UnsafePointer<Float>, count: Int, outFeatures: Int, inFeatures: Int,
                             assignment: ArraySlice<Int>, signs: ArraySlice<Float>, k: Int) -> ClusterStatistics {
        block(units: units, count: count, outFeatures: outFeatures, inFeatures: inFeatures, assignment: assignment,
              signs: signs, k: k, norms: nil, sums: true)
    }

    /// `block` with the units' norms given (`UnitNorms.norms` of the block's units: the same bits as computing them)
    /// and, with `sums: false`, without the aligned sums (left zero: the caller has them).
    static func block(units: UnsafePointer<Float>, count: Int, outFeatures: Int, inFeatures: Int,
                      assignment: ArraySlice<Int>, signs: ArraySlice<Float>, k: Int, norms: UnsafePointer<Double>?,
                      sums: Bool) -> ClusterStatistics {
        var statistics = ClusterStatistics(k: k, outFeatures: outFeatures, inFeatures: inFeatures)
        let dimension = outFeatures + inFeatures
        for (i, cluster) in assignment.enumerated() where cluster >= 0 && cluster < k {
            statistics.counts[cluster] += 1
            let norm = norms?[i] ?? Double(BLAS.nrm2(dimension, units + i * dimension))
            statistics.normSums[cluster] += norm
            statistics.normSquaredSums[cluster] += norm * norm
        }
        if sums {
            statistics.alignedSums = SignInvariantKMeans.signedSums(units: units, count: count, dimension: dimension,
                                                                    assignment: assignment, signs: signs, k: k)
        }
        return statistics
    }

    /// Statistics of a whole clustering, as the ordered reduction of fixed blocks of `blockSize` units.
    /// What the caller already has is taken instead of a pass over the units, with the same bits: `norms` (the
    /// units' `UnitNorms.norms`) and `alignedSums` (`KMeansResult.alignedSums` of this very assignment and signs,
    /// clustered with the same `blockSize`).
    public static func of(units: [Float], count: Int, outFeatures: Int, inFeatures: Int, assignment: [Int],
                          signs: [Float], k: Int, blockSize: Int = KMeansOptions.defaultBlockSize,
                          norms: [Double]? = nil, alignedSums: [Float]? = nil) throws -> ClusterStatistics {
        let dimension = outFeatures + inFeatures
        guard units.count == count * dimension, assignment.count == count, signs.count == count,
              norms == nil || norms?.count == count, alignedSums == nil || alignedSums?.count == k * dimension else {
            throw KernelShapeError(kernel: "ClusterStatistics", problem: "\(units.count) values, \(assignment.count) "
                                   + "assignments, \(signs.count) signs, \(norms?.count ?? count) norms and "
                                   + "\((alignedSums?.count ?? k * dimension) / max(1, dimension)) sums for \(count) units "
                                   + "of dimension \(dimension) in \(k) clusters")
        }
        var total = ClusterStatistics(k: k, outFeatures: outFeatures, inFeatures: inFeatures)
        units.withUnsafeBufferPointer { x in
            guard let x = x.baseAddress else { return }
            FixedBlocks.forEach(count: count, blockSize: blockSize) { start, rows in
                let part = norms.map { norms in
                    norms.withUnsafeBufferPointer { n in
                        Self.block(units: x + start * dimension, count: rows, outFeatures: outFeatures,
                                   inFeatures: inFeatures, assignment: assignment[start..<(start + rows)],
                                   signs: signs[start..<(start + rows)], k: k, norms: n.baseAddress.map { $0 + start },
                                   sums: alignedSums == nil)
                    }
                } ?? Self.block(units: x + start * dimension, count: rows, outFeatures: outFeatures,
                                inFeatures: inFeatures, assignment: assignment[start..<(start + rows)],
                                signs: signs[start..<(start + rows)], k: k, norms: nil, sums: alignedSums == nil)
                total.reduce(adding: part)
            }
        }
        if let alignedSums { total.alignedSums = alignedSums }
        return total
    }

    /// Adds the next block's statistics (block order is the summation order).
    public mutating func reduce(adding next: ClusterStatistics) {
        precondition(next.k == k && next.dimension == dimension, "ClusterStatistics of different shapes")
        let length = alignedSums.count
        alignedSums.withUnsafeMutableBufferPointer { s in
            next.alignedSums.withUnsafeBufferPointer { n in
                guard let s = s.baseAddress, let n = n.baseAddress else { return }
                BLAS.axpy(length, alpha: 1, x: n, y: s)
            }
        }
        for c in 0..<k {
            counts[c] += next.counts[c]
            normSums[c] += next.normSums[c]
            normSquaredSums[c] += next.normSquaredSums[c]
        }
        switch (projections, next.projections) {
        case let (mine?, theirs?): projections = zip(mine, theirs).map { $0 + $1 }
        case let (nil, theirs?): projections = theirs
        default: break
        }
    }

    /// The aligned means μ_t = alignedSum_t / n_t (zero rows for empty clusters), row-major [k, dimension].
    public var centroids: [Float] {
        var result = alignedSums
        let dimension = dimension
        result.withUnsafeMutableBufferPointer { m in
            guard let m = m.baseAddress else { return }
            for c in 0..<k where counts[c] > 0 {
                BLAS.scal(dimension, alpha: 1 / Float(counts[c]), x: m + c * dimension)
            }
        }
        return result
    }

    /// Coherence ρ_t = ‖Σ aligned members‖ / Σ ‖members‖ ∈ [0, 1]: 1 when every member points the same way
    /// (identical units, or one member), about 1/√n_t for n_t unrelated units. 0 for an empty cluster.
    public var coherence: [Double] {
        alignedSums.withUnsafeBufferPointer { s in
            (0..<k).map { c in
                guard let s = s.baseAddress, normSums[c] > 0 else { return 0 }
                return min(1, Double(BLAS.nrm2(dimension, s + c * dimension)) / normSums[c])
            }
        }
    }

    /// Fraction of units in clusters whose coherence is below `threshold` (clusters of 2+ members only: a single
    /// unit is always coherent). 0 when there are no units.
    public func catchAllShare(threshold: Double = ClusterStatistics.catchAllThreshold) -> Double {
        let total = counts.reduce(0, +)
        guard total > 0 else { return 0 }
        let rho = coherence
        let caught = (0..<k).reduce(0) { $0 + (counts[$1] > 1 && rho[$1] < threshold ? counts[$1] : 0) }
        return Double(caught) / Double(total)
    }

    /// Clusters below this coherence count as catch-alls: two unrelated units already give about 1/√2 ≈ 0.71,
    /// four give 0.5; a cluster whose members mostly agree stays well above.
    public static let catchAllThreshold = 0.5

    /// Adds h for a block of units against the final centroids (row-major [k, dimension]): two GEMMs
    /// `X_B M_Bᵀ`, `X_A M_Aᵀ` and a row-wise product, summed in unit order.
    public mutating func addProjections(units: UnsafePointer<Float>, count: Int, centroids: [Float]) {
        let projB = Self.halfProducts(units, rows: count, centroids, rows: k, offset: 0, length: outFeatures,
                                      dimension: dimension)
        let projA = Self.halfProducts(units, rows: count, centroids, rows: k, offset: outFeatures,
                                      length: inFeatures, dimension: dimension)
        var h = projections ?? [Double](repeating: 0, count: k)
        for i in 0..<count { for s in 0..<k { h[s] += Double(projB[i * k + s]) * Double(projA[i * k + s]) } }
        projections = h
    }

    /// h over all units, in blocks of `blockSize` (the same blocks as `of`).
    public mutating func addProjections(units: [Float], count: Int, centroids: [Float],
                                        blockSize: Int = KMeansOptions.defaultBlockSize) {
        let dimension = dimension
        units.withUnsafeBufferPointer { x in
            guard let x = x.baseAddress else { return }
            FixedBlocks.forEach(count: count, blockSize: blockSize) { start, rows in
                addProjections(units: x + start * dimension, count: rows, centroids: centroids)
            }
        }
        if projections == nil { projections = [Double](repeating: 0, count: k) }
    }

    /// G = (M_B M_Bᵀ) ⊙ (M_A M_Aᵀ) [k, k] in Double: ⟨μ_B,s μ_A,sᵀ, μ_B,t μ_A,tᵀ⟩_F.
    public func centroidGram(_ centroids: [Float]) -> [Double] {
        centroids.withUnsafeBufferPointer { m in
            guard let m = m.baseAddress else { return [Double](repeating: 0, count: k * k) }
            let gramB = Self.halfProducts(m, rows: k, centroids, rows: k, offset: 0, length: outFeatures,
                                          dimension: dimension)
            let gramA = Self.halfProducts(m, rows: k, centroids, rows: k, offset: outFeatures, length: inFeatures,
                                          dimension: dimension)
            return (0..<(k * k)).map { Double(gramB[$0]) * Double(gramA[$0]) }
        }
    }

    /// Inner products of one half of the rows of two row-major unit matrices of width `dimension` (the B part:
    /// offset 0, length out; the A part: offset out, length in), by one GEMM: [leftRows, rightRows].
    static func halfProducts(_ left: UnsafePointer<Float>, rows leftRows: Int, _ right: [Float], rows rightRows: Int,
                             offset: Int, length: Int, dimension: Int) -> [Float] {
        var product = [Float](repeating: 0, count: leftRows * rightRows)
        right.withUnsafeBufferPointer { r in
            product.withUnsafeMutableBufferPointer { p in
                guard let r = r.baseAddress, let p = p.baseAddress else { return }
                BLAS.gemm(.none, .transpose, m: leftRows, n: rightRows, k: length, a: left + offset, lda: dimension,
                          b: r + offset, ldb: dimension, c: p)
            }
        }
        return product
    }
}

/// How each cluster's centroid is weighted in the merged LoRA (METHODS.md, lego step 4). The result is one
/// scalar β_t per cluster on the MEAN centroid μ_t: unit t of the output is `sign(β_t)√|β_t| μ_B,t`,
/// `√|β_t| μ_A,t`, so its contribution is β_t μ_B,t μ_A,tᵀ.
public enum ClusterReweighting: String, Sendable, CaseIterable {
    /// β = 1: the mean centroid as is.
    case none
    /// β = n (mean‖x‖/‖μ‖)²: rescale to the mean member norm, then multiply by the member count. Exact for
    /// aligned clusters, explodes (≈ n²) for clusters of unrelated units. Brickyard's first reading of "dual".
    case sum
    /// β = Σ‖x‖² / mean‖x‖²: parameter reweighting (rescale to the mean member norm: ×1/ρ²) then output
    /// reweighting by ρ² Σ‖x‖² / mean‖x‖² (≈ n ρ²): the projection of the cluster's sum on its centroid when
    /// members make equal angles with it. Exact for aligned clusters, ≈ 1 unit's worth for unrelated ones.
    case dual
    /// β minimising ‖Σ_t β_t μ_B,t μ_A,tᵀ − T‖_F: G β = h (needs `projections`).
    case optimal

    /// The weights for `statistics`, whose centroids are `centroids` (row-major [k, dimension], normally
    /// `statistics.centroids`).
    public func weights(_ statistics: ClusterStatistics, centroids: [Float]) throws -> [Double] {
        let k = statistics.k
        switch self {
        case .none:
            return [Double](repeating: 1, count: k)
        case .sum:
            let centroidNorms = SignInvariantKMeans.rowNormsSquared(centroids, count: k, dimension: statistics.dimension)
            return (0..<k).map { t in
                let members = Double(statistics.counts[t])
                guard members > 0, centroidNorms[t] > 0 else { return 0 }
                let meanNorm = statistics.normSums[t] / members
                return members * meanNorm * meanNorm / centroidNorms[t]
            }
        case .dual:
            return (0..<k).map { t in
                let members = Double(statistics.counts[t])
                guard members > 0, statistics.normSums[t] > 0 else { return 0 }
                let meanNorm = statistics.normSums[t] / members
                return statistics.normSquaredSums[t] / (meanNorm * meanNorm)
            }
        case .optimal:
            guard let h = statistics.projections else {
                throw KernelShapeError(kernel: "ClusterReweighting", problem: "optimal needs the projections h")
            }
            return try LinearAlgebra.solveSymmetricPositiveSemidefinite(statistics.centroidGram(centroids), h, n: k)
        }
    }
}
