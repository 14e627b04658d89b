import Foundation

/// Options of the sign-invariant k-means.
public struct KMeansOptions: Sendable, Equatable {
    /// Maximum number of Lloyd iterations (update + reassignment).
    public var iterations: Int
    /// Stop when the relative drop of the objective is below this; 0 runs exactly `iterations`.
    public var tolerance: Double
    /// Units per Lloyd block. Part of the result's definition (it fixes the summation order of centroid sums):
    /// keep it fixed so a module gives the same bytes whether its blocks run locally or on several workers.
    public var blockSize: Int
    /// Independent seeding + Lloyd runs (scikit-learn's `n_init`); the lowest final objective wins, ties to the
    /// lowest restart index. Values below 1 count as 1.
    public var restarts: Int
    /// D² candidates drawn per greedy k-means++ step; nil takes scikit-learn's `2 + Int(log(k))`, 1 is plain
    /// k-means++.
    public var seedingCandidates: Int?
    /// k-means|| passes over the units (`seedParallel`) for pools of at least `parallelSeedingUnitsPerCluster`·k
    /// units; 0 (the default) always seeds by greedy k-means++ (`KMeansSeeding.swift` has the measurements: 2 rounds
    /// at factor 2 seed faster, but lego's default merge came out slightly worse on the 64-adapter pool).
    public var seedingRounds: Int
    /// k-means|| draws about this many candidates per cluster per pass (ℓ = factor·k).
    public var oversamplingFactor: Double

    public static let defaultBlockSize = 4096
    /// Below this many units per cluster k-means|| is not used (greedy k-means++ on few units is cheap).
    public static let parallelSeedingUnitsPerCluster = 8

    public init(iterations: Int = 100, tolerance: Double = 1e-4, blockSize: Int = KMeansOptions.defaultBlockSize,
                restarts: Int = 1, seedingCandidates: Int? = nil, seedingRounds: Int = 0, oversamplingFactor: Double = 2) {
        self.iterations = iterations
        self.tolerance = tolerance
        self.blockSize = blockSize
        self.restarts = restarts
        self.seedingCandidates = seedingCandidates
        self.seedingRounds = max(0, seedingRounds)
        self.oversamplingFactor = oversamplingFactor
    }

    /// Whether a run over `count` units into `k` clusters seeds by k-means|| (else greedy k-means++).
    public func seedsInParallel(count: Int, k: Int) -> Bool {
        seedingRounds > 0 && oversamplingFactor > 0 && k > 1 && count >= KMeansOptions.parallelSeedingUnitsPerCluster * k
    }

    /// Candidates per greedy seeding step for `k` clusters.
    public func candidates(k: Int) -> Int {
        max(1, seedingCandidates ?? 2 + Int(log(Double(max(1, k)))))
    }
}

/// What a clustering produced.
public struct KMeansResult: Sendable {
    public var clusterCount: Int
    /// Row-major [clusterCount, dimension]: each centroid is the mean of its members, each member aligned by
    /// the sign of its dot product with the centroid it was assigned to.
    public var centroids: [Float]
    /// Cluster of each unit.
    public var assignment: [Int]
    /// ±1 per unit: the sign it entered its centroid with.
    public var signs: [Float]
    public var clusterSizes: [Int]
    /// Lloyd iterations run by the kept restart (0 when every unit is its own cluster).
    public var iterations: Int
    /// Index of the restart whose clustering was kept (0 when only one ran).
    public var restart: Int = 0
    /// Objective after seeding and after every iteration; never increases (up to Float rounding of the products).
    public var objectiveHistory: [Double]
    /// Row-major [clusterCount, dimension]: Σ over each cluster's members of sign · x, with the bits
    /// `ClusterStatistics.of` computes for this assignment and these signs over the same blocks (the final Lloyd step's
    /// sums, reused instead of another pass). nil when the final update moved a unit into an empty cluster (its sums
    /// were then corrected by a subtraction, not re-added in unit order) or when no Lloyd step ran.
    public var alignedSums: [Float]? = nil
    /// Objective of the last assignment: Σ_i min_c d(x_i, μ_c) with d = ‖x‖² + ‖μ‖² − 2|x·μ|.
    public var finalObjective: Double { objectiveHistory.last ?? 0 }
}

/// A block's share of one Lloyd step: assignment of its units to the current centroids, and the signed sums,
/// counts and objective the centroid update needs. Blocks reduce in block order, so a step's result does not
/// depend on where its blocks were computed.
public struct LloydBlockPartial: Sendable {
    /// Row-major [k, dimension]: Σ over the block's members of sign(x·μ) x.
    public var sums: [Float]
    public var counts: [Int]
    public var objective: Double
    /// Cluster per unit of the block.
    public var assignment: [Int]
    /// sign(x·μ) per unit (+1 for 0).
    public var signs: [Float]
    /// Sign-invariant squared distance per unit to its cluster's centroid.
    public var distances: [Double]
}

/// k-means under the sign-invariant distance `d(x, μ) = min(‖x − μ‖², ‖x + μ‖²) = ‖x‖² + ‖μ‖² − 2|x·μ|`
/// (LoRA-LEGO units are defined only up to sign). Distances come from the products `X Mᵀ` (`RowDots`) per block and step,
/// centroid sums from adding each unit once to its cluster's sum (`signedSums`), so every sum has an order fixed
/// by the block layout alone.
public enum SignInvariantKMeans {
    /// Clusters the rows of `units` ([count, dimension], row-major) into `k` clusters.
    /// If k ≥ count, each unit is its own cluster (in unit order) and no iteration runs.
    /// `norms`: the units' `UnitNorms` when the caller has them (else they are computed here; the same bits).
    public static func cluster(units: [Float], count: Int, dimension: Int, k: Int, options: KMeansOptions,
                               seed: UInt64, norms: UnitNorms? = nil) throws -> KMeansResult {
        guard units.count == count * dimension, count >= 0, dimension >= 0 else {
            throw KernelShapeError(kernel: "SignInvariantKMeans", problem: "\(units.count) values for \(count) units "
                                   + "of dimension \(dimension)")
        }
        guard count > 0, k > 0 else {
            return KMeansResult(clusterCount: 0, centroids: [], assignment: [], signs: [], clusterSizes: [],
                                iterations: 0, objectiveHistory: [0])
        }
        if k >= count {
            return KMeansResult(clusterCount: count, centroids: units, assignment: Array(0..<count),
                                signs: [Float](repeating: 1, count: count),
                                clusterSizes: [Int](repeating: 1, count: count), iterations: 0,
                                objectiveHistory: [0])
        }
        guard norms == nil || norms?.count == count else {
            throw KernelShapeError(kernel: "SignInvariantKMeans", problem: "\(norms?.count ?? 0) norms for \(count) units")
        }
        let norms = norms ?? UnitNorms.of(units, count: count, dimension: dimension)
        var best: KMeansResult?
        for restart in 0..<max(1, options.restarts) {
            var result = lloyd(units: units, count: count, dimension: dimension, k: k, unitNormsSquared: norms.squares,
                               exactNormsSquared: norms.exactSquares, options: options,
                               seed: restartSeed(seed, restart: restart))
            result.restart = restart
            if let kept = best, kept.finalObjective <= result.finalObjective { continue }
            best = result
        }
        return best ?? KMeansResult(clusterCount: 0, centroids: [], assignment: [], signs: [], clusterSizes: [],
                                    iterations: 0, objectiveHistory: [0])
    }

    /// The seed of one restart: the module seed itself for restart 0 (so `restarts: 1` is restart 0 alone),
    /// a SplitMix64 mix of (seed, index) for the others.
    static func restartSeed(_ seed: UInt64, restart: Int) -> UInt64 {
        guard restart > 0 else { return seed }
        var z = seed ^ (UInt64(restart) &* 0x9e37_79b9_7f4a_7c15)
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// One run: seeding (`initialCentroids`), then Lloyd iterations until `options` stop them. When an update gives back
    /// the very centroids of the step before (a fixed point, bit for bit), the remaining iterations are recorded
    /// without being computed: they would repeat that step exactly (same result, history and iteration count).
    /// `exactNormsSquared`: `UnitNorms.exactSquares` of the units if known (else `LloydBounds` computes them).
    static func lloyd(units: [Float], count: Int, dimension: Int, k: Int, unitNormsSquared unitNorms: [Double],
                      exactNormsSquared: [Double]? = nil, options: KMeansOptions, seed: UInt64) -> KMeansResult {
        // Greedy seeding already computed every unit's product with every seed: the first step takes them.
        let seeded = seeding(units: units, count: count, dimension: dimension, k: k, unitNormsSquared: unitNorms,
                             options: options, seed: seed)
        var centroids = seeded.centroids
        var bounds = LloydBounds(units: units, count: count, dimension: dimension, unitNormsSquared: unitNorms,
                                 exactNormsSquared: exactNormsSquared)
        var step = boundedStep(units: units, count: count, dimension: dimension, unitNormsSquared: unitNorms,
                               centroids: centroids, k: k, blockSize: options.blockSize, bounds: &bounds,
                               products: seeded.products)
        var history = [step.objective]
        var iterations = 0
        while iterations < options.iterations {
            let computed = step
            let next = updateCentroids(&step, units: units, dimension: dimension, k: k)
            if sameBits(next, centroids) {
                // A fixed point: a step is a function of the centroids alone, so every further step would give
                // `computed` again, bit for bit, and its objective. Record those steps without running them.
                step = computed
                repeat {
                    iterations += 1
                    history.append(step.objective)
                    // (previous − objective) = 0: the tolerance rule stops at the first repeat when it is on.
                } while iterations < options.iterations && !(options.tolerance > 0)
                break
            }
            centroids = next
            step = boundedStep(units: units, count: count, dimension: dimension, unitNormsSquared: unitNorms,
                               centroids: centroids, k: k, blockSize: options.blockSize, bounds: &bounds)
            iterations += 1
            let previous = history[history.count - 1]
            history.append(step.objective)
            if options.tolerance > 0 && (previous <= 0 || (previous - step.objective) < options.tolerance * previous) {
                break
            }
        }
        // Final centroids are the aligned means of the final assignment, so reweighting sees consistent clusters.
        let refills = step.counts.contains(0)
        centroids = updateCentroids(&step, units: units, dimension: dimension, k: k)
        return KMeansResult(clusterCount: k, centroids: centroids, assignment: step.assignment, signs: step.signs,
                            clusterSizes: step.counts, iterations: iterations, objectiveHistory: history,
                            alignedSums: refills ? nil : step.sums)
    }

    /// Whether two arrays hold the same bits (unlike `==`, tells −0 from +0 and finds NaN equal to itself).
    static func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in
                guard let x = x.baseAddress, let y = y.baseAddress else { return true }
                return memcmp(x, y, a.count * MemoryLayout<Float>.size) == 0
            }
        }
    }

    /// ‖row‖² for every row, from `nrm2` (single-threaded in OpenBLAS, so thread-count independent).
    public static func rowNormsSquared(_ matrix: [Float], count: Int, dimension: Int) -> [Double] {
        matrix.withUnsafeBufferPointer { m in
            guard let m = m.baseAddress else { return [Double](repeating: 0, count: count) }
            return (0..<count).map { i in
                let norm = Double(BLAS.nrm2(dimension, m + i * dimension))
                return norm * norm
            }
        }
    }

    /// The sign-invariant distance from the norms and the dot product. Values within Float rounding of the product
    /// (a few ulps of ‖x‖² + ‖μ‖²) are set to 0 so that duplicates of a chosen unit are never picked again.
    @inline(__always)
    static func distance(unitNormSquared: Double, centroidNormSquared: Double, dot: Float) -> Double {
        let total = unitNormSquared + centroidNormSquared
        let d = total - 2 * Double(abs(dot))
        return d <= 4 * Double(Float.ulpOfOne) * total ? 0 : d
    }

    /// Greedy k-means++ seeding (scikit-learn's default): the first centroid is a uniform unit; each next one is
    /// the best of `candidates` units drawn by D² sampling, "best" meaning the lowest potential Σ_i min(D²_i,
    /// d(x_i, candidate)) (ties: the earliest draw). A plain k-means++ step picks one D² draw, which on pools of
    /// unequal clusters often lands two seeds in one cluster and none in another; Lloyd rarely repairs that.
    /// The candidates' distances come from one `RowDots` pass `X Cᵀ` per step, which reads X once like the plain step's GEMV.
    /// When every remaining unit is at distance 0 from the chosen centroids, the lowest-index unit not chosen yet
    /// is taken.
    static func seedPlusPlus(units: [Float], count: Int, dimension: Int, k: Int, unitNormsSquared: [Double],
                             candidates: Int, seed: UInt64) -> [Float] {
        seedPlusPlusWithProducts(units: units, count: count, dimension: dimension, k: k,
                                 unitNormsSquared: unitNormsSquared, candidates: candidates, seed: seed).centroids
    }

    /// `seedPlusPlus`, also returning each unit's products with the seeds, row-major [count, k]: `products[i·k + c]`
    /// = x_i · m_c with the bits `RowDots` gives (each step's pass computed them for the candidate it kept, and a
    /// product does not depend on the other columns computed with it), so the first Lloyd step needs none.
    static func seedPlusPlusWithProducts(units: [Float], count: Int, dimension: Int, k: Int, unitNormsSquared: [Double],
                                         candidates: Int, seed: UInt64) -> (centroids: [Float], products: [Float]) {
        var random = DeterministicRandom(seed: seed)
        var products = [Float](repeating: 0, count: count * k)
        let draws = max(1, candidates)
        var centroids = [Float](repeating: 0, count: k * dimension)
        var chosen = [Bool](repeating: false, count: count)
        var nearest = [Double](repeating: .infinity, count: count)
        var cumulative = [Double](repeating: 0, count: count)
        var candidateRows = [Float](repeating: 0, count: draws * dimension)
        var dots = [Float](repeating: 0, count: count * draws)
        var candidateDistances = [Double](repeating: 0, count: count * draws)
        units.withUnsafeBufferPointer { x in
            centroids.withUnsafeMutableBufferPointer { m in
                guard let x = x.baseAddress, let m = m.baseAddress else { return }
                for c in 0..<k {
                    var picks: [Int]
                    if c == 0 {
                        picks = [random.nextIndex(below: count)]
                    } else {
                        var total = 0.0
                        for i in 0..<count { total += nearest[i]; cumulative[i] = total }
                        if total > 0 {
                            picks = (0..<draws).map { _ in
                                drawProportional(cumulative, target: random.nextUnitDouble() * total)
                            }
                        } else {
                            picks = [chosen.firstIndex(of: false) ?? 0]
                        }
                    }
                    let width = picks.count
                    candidateRows.withUnsafeMutableBufferPointer { cp in
                        guard let cp = cp.baseAddress else { return }
                        for (j, pick) in picks.enumerated() {
                            BLAS.copy(dimension, x: x + pick * dimension, y: cp + j * dimension)
                        }
                    }
                    candidateRows.withUnsafeBufferPointer { cp in
                        dots.withUnsafeMutableBufferPointer { p in
                            guard let cp = cp.baseAddress, let p = p.baseAddress else { return }
                            RowDots.compute(x, rows: count, dimension: dimension, centroids: cp, count: width, into: p)
                        }
                    }
                    // Distances to each candidate, and the potential each would leave (unit order, fixed).
                    var bestCandidate = 0
                    var bestPotential = Double.infinity
                    for j in 0..<width {
                        let pick = picks[j]
                        let candidateNorm = unitNormsSquared[pick]
                        var potential = 0.0
                        for i in 0..<count {
                            let d = chosen[i] || i == pick
                                ? 0 : distance(unitNormSquared: unitNormsSquared[i], centroidNormSquared: candidateNorm,
                                               dot: dots[i * width + j])
                            candidateDistances[j * count + i] = d
                            potential += min(d, nearest[i])
                        }
                        if potential < bestPotential { bestPotential = potential; bestCandidate = j }
                    }
                    let pick = picks[bestCandidate]
                    chosen[pick] = true
                    BLAS.copy(dimension, x: x + pick * dimension, y: m + c * dimension)
                    for i in 0..<count { products[i * k + c] = dots[i * width + bestCandidate] }
                    for i in 0..<count {
                        let d = candidateDistances[bestCandidate * count + i]
                        if d < nearest[i] { nearest[i] = d }
                    }
                }
            }
        }
        return (centroids, products)
    }

    /// The first unit whose running D² sum exceeds `target` (a unit at distance 0 never is: the sum does not grow
    /// there); the last unit that adds weight if rounding puts `target` at the total.
    static func drawProportional(_ cumulative: [Double], target: Double) -> Int {
        var low = 0, high = cumulative.count
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] > target { high = middle } else { low = middle + 1 }
        }
        if low < cumulative.count { return low }
        var last = cumulative.count - 1
        while last > 0 && cumulative[last] == cumulative[last - 1] { last -= 1 }
        return last
    }

    /// One assignment step over all units, as the ordered reduction of fixed-size blocks.
    public static func lloydStep(units: [Float], count: Int, dimension: Int, unitNormsSquared: [Double],
                                 centroids: [Float], k: Int, blockSize: Int) -> LloydBlockPartial {
        let centroidNorms = rowNormsSquared(centroids, count: k, dimension: dimension)
        var total: LloydBlockPartial?
        units.withUnsafeBufferPointer { x in
            unitNormsSquared.withUnsafeBufferPointer { norms in
                guard let x = x.baseAddress, let norms = norms.baseAddress else { return }
                FixedBlocks.forEach(count: count, blockSize: blockSize) { start, rows in
                    let part = lloydBlock(units: x + start * dimension, count: rows, dimension: dimension,
                                          unitNormsSquared: norms + start, centroids: centroids,
                                          centroidNormsSquared: centroidNorms, k: k)
                    if total == nil { total = part } else { total?.reduce(adding: part) }
                }
            }
        }
        return total ?? LloydBlockPartial(sums: [Float](repeating: 0, count: k * dimension),
                                          counts: [Int](repeating: 0, count: k), objective: 0,
                                          assignment: [], signs: [], distances: [])
    }

    /// Rows a Lloyd block handles at a time: their products, assignment and additions to the centroid sums happen
    /// while the rows are in cache (8 rows of the widest Llama-3-8B units are 590 KB). The products do not depend on
    /// it (`RowDots`' sums are per row), nor do the sums (unit order), so it is no part of the result's definition.
    static let fusedRows = 8

    /// A block's assignment and partial sums against the current centroids (row-major [k, dimension]).
    /// This is the unit of work that may later be shipped to other workers. One pass over the units: each chunk of
    /// `fusedRows` rows gets its products (`RowDots`), its assignment, and is added to its clusters' sums
    /// (`UnitSums.signed`, unit order) before the next chunk is read.
    public static func lloydBlock(units: UnsafePointer<Float>, count: Int, dimension: Int,
                                  unitNormsSquared: UnsafePointer<Double>, centroids: [Float],
                                  centroidNormsSquared: [Double], k: Int) -> LloydBlockPartial {
        lloydBlock(units: units, count: count, dimension: dimension, unitNormsSquared: unitNormsSquared,
                   centroids: centroids, centroidNormsSquared: centroidNormsSquared, k: k, pruning: nil)
    }

    /// `lloydBlock`, optionally with the run's bounds (`LloydBounds`): a unit that provably keeps its cluster gets
    /// the one product with its own centroid, the others all k; the bounds are brought up to date for every unit.
    /// `precomputed`: the block's products with the centroids, row-major [count, k], when the caller has them (the
    /// bits `RowDots` would give); they are taken instead of computing them.
    static func lloydBlock(units: UnsafePointer<Float>, count: Int, dimension: Int,
                           unitNormsSquared: UnsafePointer<Double>, centroids: [Float], centroidNormsSquared: [Double],
                           k: Int, pruning: UnsafeMutablePointer<BlockPruning>?,
                           precomputed: UnsafePointer<Float>? = nil) -> LloydBlockPartial {
        guard count > 0, dimension > 0, k > 0 else {
            // Zero-width units (or none): every product is 0, so every unit is at distance 0 from cluster 0.
            var counts = [Int](repeating: 0, count: max(k, 0))
            if k > 0 { counts[0] = max(count, 0) }
            if let pruning {
                for i in 0..<max(count, 0) { pruning.pointee.assignment[i] = -1 }
            }
            return LloydBlockPartial(sums: [Float](repeating: 0, count: max(k, 0) * max(dimension, 0)),
                                     counts: counts, objective: 0, assignment: [Int](repeating: 0, count: max(count, 0)),
                                     signs: [Float](repeating: 1, count: max(count, 0)),
                                     distances: [Double](repeating: 0, count: max(count, 0)))
        }
        var dots = [Float](repeating: 0, count: min(count, fusedRows) * k)
        var gathered = [UnsafePointer<Float>?](repeating: nil, count: fusedRows)
        var slot = [Int](repeating: -1, count: fusedRows)
        // Rows that keep their cluster: their own centroids, and the products with them (`RowDots.dots`).
        var keptRows = [UnsafePointer<Float>?](repeating: nil, count: fusedRows)
        var keptCentroids = [UnsafePointer<Float>?](repeating: nil, count: fusedRows)
        var keptDots = [Float](repeating: 0, count: fusedRows)
        var assignment = [Int](repeating: 0, count: count)
        var signs = [Float](repeating: 1, count: count)
        var distances = [Double](repeating: 0, count: count)
        var counts = [Int](repeating: 0, count: k)
        var sums = [Float](repeating: 0, count: k * dimension)
        var objective = 0.0
        centroids.withUnsafeBufferPointer { m in
            dots.withUnsafeMutableBufferPointer { p in
                sums.withUnsafeMutableBufferPointer { out in
                    gathered.withUnsafeMutableBufferPointer { rowsAt in
                        guard let m = m.baseAddress, let p = p.baseAddress, let out = out.baseAddress,
                              let rowsAt = rowsAt.baseAddress else { return }
                        FixedBlocks.forEach(count: count, blockSize: fusedRows) { start, rows in
                            // Which rows need all k products (every row without bounds).
                            var full = 0
                            var kept = 0
                            for r in 0..<rows {
                                let i = start + r
                                if let pruning, pruning.pointee.keepsCluster(i, normSquared: unitNormsSquared[i]) {
                                    slot[r] = -1 - kept
                                    keptRows[kept] = units + i * dimension
                                    keptCentroids[kept] = m + pruning.pointee.assignment[i] * dimension
                                    kept += 1
                                } else {
                                    slot[r] = full
                                    rowsAt[full] = units + i * dimension
                                    full += 1
                                }
                            }
                            if let precomputed {
                                for r in 0..<rows where slot[r] >= 0 {
                                    (p + slot[r] * k).update(from: precomputed + (start + r) * k, count: k)
                                }
                            } else if full == rows {
                                RowDots.compute(units + start * dimension, rows: rows, dimension: dimension,
                                                centroids: m, count: k, into: p)
                            } else if full > 0 {
                                RowDots.compute(rows: rowsAt, count: full, dimension: dimension, centroids: m, count: k,
                                                into: p)
                            }
                            if kept > 0 {
                                keptRows.withUnsafeBufferPointer { a in
                                    keptCentroids.withUnsafeBufferPointer { b in
                                        keptDots.withUnsafeMutableBufferPointer { out in
                                            guard let a = a.baseAddress, let b = b.baseAddress,
                                                  let out = out.baseAddress else { return }
                                            RowDots.dots(a, b, count: kept, dimension: dimension, into: out)
                                        }
                                    }
                                }
                            }
                            for r in 0..<rows {
                                let i = start + r
                                var best = 0
                                var bestDistance = Double.infinity
                                var bestDot: Float = 0
                                if slot[r] < 0, let pruning {
                                    best = pruning.pointee.assignment[i]
                                    bestDot = keptDots[-1 - slot[r]]
                                    bestDistance = distance(unitNormSquared: unitNormsSquared[i],
                                                            centroidNormSquared: centroidNormsSquared[best],
                                                            dot: bestDot)
                                    pruning.pointee.skipped += 1
                                } else {
                                    let row = p + slot[r] * k
                                    for c in 0..<k {
                                        let d = distance(unitNormSquared: unitNormsSquared[i],
                                                         centroidNormSquared: centroidNormsSquared[c], dot: row[c])
                                        if d < bestDistance { bestDistance = d; best = c }
                                    }
                                    bestDot = row[best]
                                    if let pruning {
                                        // Lower bound on every other centroid's exact distance, from its computed one.
                                        let own = pruning.pointee.unitTerm(i, normSquared: unitNormsSquared[i])
                                        var low = Double.infinity
                                        for c in 0..<k where c != best {
                                            let d = distance(unitNormSquared: unitNormsSquared[i],
                                                             centroidNormSquared: centroidNormsSquared[c], dot: row[c])
                                            low = min(low, d - own - pruning.pointee.centroids.margins[c])
                                        }
                                        pruning.pointee.lower[i] = low == .infinity ? .infinity : max(0, low).squareRoot()
                                    }
                                }
                                if let pruning {
                                    let own = pruning.pointee.unitTerm(i, normSquared: unitNormsSquared[i])
                                    pruning.pointee.upper[i] = (bestDistance + own
                                                                + pruning.pointee.centroids.margins[best]).squareRoot()
                                    pruning.pointee.assignment[i] = best
                                }
                                assignment[i] = best
                                signs[i] = bestDot < 0 ? -1 : 1
                                distances[i] = bestDistance
                                counts[best] += 1
                                objective += bestDistance
                            }
                            assignment.withUnsafeBufferPointer { a in
                                signs.withUnsafeBufferPointer { s in
                                    guard let a = a.baseAddress, let s = s.baseAddress else { return }
                                    UnitSums.signed(units + start * dimension, rows: rows, dimension: dimension,
                                                    clusters: a + start, signs: s + start, k: k, into: out)
                                }
                            }
                        }
                    }
                }
            }
        }
        return LloydBlockPartial(sums: sums, counts: counts, objective: objective, assignment: assignment,
                                 signs: signs, distances: distances)
    }

    /// Σ over each cluster's members of sign · x, by adding each unit once to its cluster's row in unit order
    /// (n·d additions; a GEMM Sᵀ X with the one-hot signed S would cost 2·n·k·d flops for the same sums). The
    /// signs are ±1, so each element is one rounded addition whatever the vector width or thread count: the bytes
    /// depend on the unit order alone (`UnitSums.signed`; the same bits as `lloydBlock`'s sums).
    /// Units whose cluster is outside 0..<k are skipped.
    public static func signedSums(units: UnsafePointer<Float>, count: Int, dimension: Int,
                                  assignment: ArraySlice<Int>, signs: ArraySlice<Float>, k: Int) -> [Float] {
        var sums = [Float](repeating: 0, count: k * dimension)
        let rows = min(count, assignment.count, signs.count)
        sums.withUnsafeMutableBufferPointer { out in
            assignment.withUnsafeBufferPointer { a in
                signs.withUnsafeBufferPointer { s in
                    guard let out = out.baseAddress, let a = a.baseAddress, let s = s.baseAddress else { return }
                    UnitSums.signed(units, rows: rows, dimension: dimension, clusters: a, signs: s, k: k, into: out)
                }
            }
        }
        return sums
    }

    /// Turns a step's sums into centroids (means). An empty cluster takes the unit farthest from its centroid
    /// (ties: lowest index) among clusters with at least two members; that unit moves to it, so every centroid
    /// stays the exact aligned mean of its members and the objective cannot increase.
    public static func updateCentroids(_ step: inout LloydBlockPartial, units: [Float], dimension: Int,
                                       k: Int) -> [Float] {
        let empty = (0..<k).filter { step.counts[$0] == 0 }
        if !empty.isEmpty {
            let order = step.distances.indices.sorted {
                step.distances[$0] != step.distances[$1] ? step.distances[$0] > step.distances[$1] : $0 < $1
            }
            var next = 0
            units.withUnsafeBufferPointer { x in
                step.sums.withUnsafeMutableBufferPointer { sums in
                    guard let x = x.baseAddress, let sums = sums.baseAddress else { return }
                    for c in empty {
                        while next < order.count && step.counts[step.assignment[order[next]]] < 2 { next += 1 }
                        guard next < order.count else { return }
                        let unit = order[next]
                        next += 1
                        let from = step.assignment[unit]
                        let row = x + unit * dimension
                        BLAS.axpy(dimension, alpha: -step.signs[unit], x: row, y: sums + from * dimension)
                        BLAS.copy(dimension, x: row, y: sums + c * dimension)
                        step.counts[from] -= 1
                        step.counts[c] = 1
                        step.assignment[unit] = c
                        step.signs[unit] = 1
                        step.distances[unit] = 0
                    }
                }
            }
        }
        var centroids = step.sums
        centroids.withUnsafeMutableBufferPointer { m in
            guard let m = m.baseAddress else { return }
            for c in 0..<k where step.counts[c] > 0 {
                BLAS.scal(dimension, alpha: 1 / Float(step.counts[c]), x: m + c * dimension)
            }
        }
        return centroids
    }
}

extension LloydBlockPartial {
    /// Adds the next block's partial (block order is the summation order).
    mutating func reduce(adding next: LloydBlockPartial) {
        let length = sums.count
        sums.withUnsafeMutableBufferPointer { s in
            next.sums.withUnsafeBufferPointer { n in
                guard let s = s.baseAddress, let n = n.baseAddress else { return }
                BLAS.axpy(length, alpha: 1, x: n, y: s)
            }
        }
        for c in counts.indices { counts[c] += next.counts[c] }
        objective += next.objective
        assignment += next.assignment
        signs += next.signs
        distances += next.distances
    }
}
