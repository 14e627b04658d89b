import CSIMD

/// Hamerly's bounds for the Lloyd steps of one k-means run: per unit, an upper bound on its exact sign-invariant
/// distance to its own centroid and a lower bound on its exact distance to every other one. When a step moves the
/// centroids, the bounds move by how far each centroid went (the triangle inequality of D(x, μ) = min(‖x − μ‖,
/// ‖x + μ‖), a metric on vectors up to sign); a unit whose upper bound stays clearly below its lower bound keeps its
/// cluster, and needs one product (its own centroid's: sign, distance, objective) instead of k.
///
/// Same bits as the full step: the skip test proves that the Float distances the full step would compute pick the
/// same cluster strictly (no tie), allowing for every rounding between exact and computed distances (`kappa`, the
/// products' error bound, and each norm's measured error), and the one product is `RowDots.dot`, bit-equal to the
/// full step's. At 64 adapters about two thirds of the units skip their products in every step after the first.
struct LloydBounds {
    /// Upper bound on the exact distance (not squared) from each unit to its cluster's centroid.
    var upper: [Double]
    /// Lower bound on the exact distance from each unit to every other centroid.
    var lower: [Double]
    /// The cluster each bound pair is about.
    var assignment: [Int]
    /// The centroids the bounds hold for; nil before the first step (every unit is computed in full).
    var centroids: [Float]?
    /// Σ_j x_ij² of each unit in Double, and |unitNormsSquared_i − that|: the computed norm's error, measured.
    let exactNorms: [Double]
    let normErrors: [Double]
    /// Relative bound on the rounding of one computed distance: |f − D²| ≤ e_x + e_μ + kappa·(‖x‖² + ‖μ‖² + N_x + N_μ)
    /// (products: m·u/(1 − m·u) with m = d/16 + 5 terms per lane chain and pairwise level, counted twice; the Double
    /// arithmetic and `distance`'s clamp of tiny values to 0: 8 Float epsilons).
    let kappa: Double
    /// Units whose k products a step skipped (for tests and benchmarks).
    var skipped = 0

    /// `exactNormsSquared`: the units' `UnitNorms.exactSquares` when the caller has them (else computed here).
    init(units: [Float], count: Int, dimension: Int, unitNormsSquared: [Double], exactNormsSquared: [Double]? = nil) {
        let exact = exactNormsSquared.flatMap { $0.count == count ? $0 : nil }
            ?? Self.exactNormsSquared(units, count: count, dimension: dimension)
        exactNorms = exact
        normErrors = (0..<count).map { abs(unitNormsSquared[$0] - exact[$0]) + 1e-12 * exact[$0] }
        let terms = Double(dimension / 16 + 5), unit = 0x1p-24
        kappa = 2 * terms * unit / (1 - terms * unit) + 8 * Double(Float.ulpOfOne)
        upper = [Double](repeating: .infinity, count: count)
        lower = [Double](repeating: 0, count: count)
        assignment = [Int](repeating: -1, count: count)
    }

    /// Σ_j row_j² in Double for every row (the exact norms the bounds are about, to ~d·2⁻⁵³ relative).
    static func exactNormsSquared(_ matrix: [Float], count: Int, dimension: Int) -> [Double] {
        matrix.withUnsafeBufferPointer { m in
            guard let m = m.baseAddress, dimension > 0 else { return [Double](repeating: 0, count: count) }
            return (0..<count).map { brickyard_sum_squares(m + $0 * dimension, dimension) }
        }
    }

    /// What one step needs about the centroids: each one's margin term e_μ + kappa·(‖μ‖² + N_μ), and the largest.
    struct CentroidTerms {
        var margins: [Double]
        var largest: Double
    }

    /// Moves the bounds to `centroids` (from the ones they hold for) and returns the step's centroid terms.
    mutating func prepare(centroids: [Float], centroidNormsSquared: [Double], k: Int, dimension: Int) -> CentroidTerms {
        let exact = Self.exactNormsSquared(centroids, count: k, dimension: dimension)
        let margins = (0..<k).map { c in
            abs(centroidNormsSquared[c] - exact[c]) + 1e-12 * exact[c] + kappa * (exact[c] + centroidNormsSquared[c])
        }
        if let old = self.centroids, old.count == centroids.count {
            // δ_c ≥ D(μ_old, μ_new): ‖μ_new − μ_old‖ in Double, rounded up.
            let drift = (0..<k).map { c -> Double in
                var sum = 0.0
                for j in 0..<dimension {
                    let v = Double(centroids[c * dimension + j]) - Double(old[c * dimension + j])
                    sum += v * v
                }
                return sum.squareRoot() * (1 + 1e-9)
            }
            var first = -1, top = 0.0, second = 0.0
            for c in 0..<k {
                if drift[c] > top { second = top; top = drift[c]; first = c } else if drift[c] > second { second = drift[c] }
            }
            for i in upper.indices where assignment[i] >= 0 {
                upper[i] += drift[assignment[i]]
                lower[i] -= assignment[i] == first ? second : top
            }
        } else {
            for i in upper.indices { assignment[i] = -1 }
        }
        self.centroids = centroids
        return CentroidTerms(margins: margins, largest: margins.max() ?? 0)
    }
}

/// One block's view of the bounds during a step (pointers at the block's first unit).
struct BlockPruning {
    var upper: UnsafeMutablePointer<Double>
    var lower: UnsafeMutablePointer<Double>
    var assignment: UnsafeMutablePointer<Int>
    var exactNorms: UnsafePointer<Double>
    var normErrors: UnsafePointer<Double>
    var kappa: Double
    var centroids: LloydBounds.CentroidTerms
    var skipped = 0

    /// The part of unit i's margin that is its own: e_x + kappa·(‖x‖² + N_x).
    @inline(__always)
    func unitTerm(_ i: Int, normSquared: Double) -> Double {
        normErrors[i] + kappa * (exactNorms[i] + normSquared)
    }

    /// Whether unit i provably keeps its cluster: every other centroid's computed distance exceeds its own's.
    @inline(__always)
    func keepsCluster(_ i: Int, normSquared: Double) -> Bool {
        let a = assignment[i]
        guard a >= 0 else { return false }
        let low = lower[i], high = upper[i], own = unitTerm(i, normSquared: normSquared)
        return low > 0 && low * low - (own + centroids.largest) > high * high + (own + centroids.margins[a])
    }
}

extension SignInvariantKMeans {
    /// `lloydStep` with the bounds of the run: the same result, bit for bit, with fewer products. `products`: every
    /// unit's products with `centroids` ([count, k], `RowDots`' bits) if already known (the seeding's), used instead.
    static func boundedStep(units: [Float], count: Int, dimension: Int, unitNormsSquared: [Double], centroids: [Float],
                            k: Int, blockSize: Int, bounds: inout LloydBounds,
                            products: [Float]? = nil) -> LloydBlockPartial {
        let centroidNorms = rowNormsSquared(centroids, count: k, dimension: dimension)
        let terms = bounds.prepare(centroids: centroids, centroidNormsSquared: centroidNorms, k: k, dimension: dimension)
        var total: LloydBlockPartial?
        var skipped = 0
        let kappa = bounds.kappa
        units.withUnsafeBufferPointer { x in
            unitNormsSquared.withUnsafeBufferPointer { norms in
                bounds.upper.withUnsafeMutableBufferPointer { upper in
                    bounds.lower.withUnsafeMutableBufferPointer { lower in
                        bounds.assignment.withUnsafeMutableBufferPointer { assignment in
                            bounds.exactNorms.withUnsafeBufferPointer { exact in
                                bounds.normErrors.withUnsafeBufferPointer { errors in
                                    guard let x = x.baseAddress, let norms = norms.baseAddress,
                                          let upper = upper.baseAddress, let lower = lower.baseAddress,
                                          let assignment = assignment.baseAddress, let exact = exact.baseAddress,
                                          let errors = errors.baseAddress else { return }
                                    FixedBlocks.forEach(count: count, blockSize: blockSize) { start, rows in
                                        var pruning = BlockPruning(upper: upper + start, lower: lower + start,
                                                                   assignment: assignment + start,
                                                                   exactNorms: exact + start, normErrors: errors + start,
                                                                   kappa: kappa, centroids: terms)
                                        let part = products.flatMap { $0.count == count * k ? $0 : nil }.map { products in
                                            products.withUnsafeBufferPointer { known in
                                                lloydBlock(units: x + start * dimension, count: rows,
                                                           dimension: dimension, unitNormsSquared: norms + start,
                                                           centroids: centroids, centroidNormsSquared: centroidNorms,
                                                           k: k, pruning: &pruning,
                                                           precomputed: known.baseAddress.map { $0 + start * k })
                                            }
                                        } ?? lloydBlock(units: x + start * dimension, count: rows,
                                                        dimension: dimension, unitNormsSquared: norms + start,
                                                        centroids: centroids, centroidNormsSquared: centroidNorms,
                                                        k: k, pruning: &pruning)
                                        skipped += pruning.skipped
                                        if total == nil { total = part } else { total?.reduce(adding: part) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        bounds.skipped += skipped
        return total ?? LloydBlockPartial(sums: [Float](repeating: 0, count: k * dimension),
                                          counts: [Int](repeating: 0, count: k), objective: 0,
                                          assignment: [], signs: [], distances: [])
    }
}
