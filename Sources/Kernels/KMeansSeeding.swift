/// k-means|| seeding (Bahmani et al., "Scalable k-means++", 2012) for an in-process clustering: the rule a split
/// module's seeding rounds follow (`BlockKMeansDriver`), with `KMeansOptions.seedingRounds` passes instead of k steps.
///
/// Why: greedy k-means++ (`seedPlusPlus`) makes one pass over the units per seed, each only 2 + log k products
/// wide (4 at k = 16), and a narrow pass costs nearly as much as a wide one (reading the units, not the products,
/// is its cost): at lego's sizes those 16 passes were a fifth of the whole 64-adapter merge. k-means|| draws
/// ~ℓ = `oversamplingFactor`·k candidates per pass, each unit independently with probability ℓ·D²/φ (φ = Σ D²);
/// each candidate is weighted by the units nearest to it and the weighted candidates are clustered into k by
/// weighted greedy k-means++ then weighted Lloyd (`CandidateClustering`, a few dozen points); those centroids
/// start the Lloyd iterations. Measured on the 64-adapter pool (`brickyard bench-engine kmeans-seeding`,
/// bench/results/kmeans-seeding.md): with 2 rounds and ℓ = 2k seeding takes a third less CPU and the k-means
/// objective is within 0.3 % of greedy seeding's; lego's error over 5 job seeds was 0.3 % lower with the issue's
/// options (`oversample: 1, refit: 0`) but 0.4 % higher with the default oversample and refit (the excess over the
/// SVD floor 0.0089 → 0.0118), so it is off by default (`KMeansOptions.seedingRounds` 0; lego's `init: kmeans||`
/// turns it on). One round or ℓ = k gave ~1 % worse objectives; ranking greedy's candidates on a quarter of the
/// units (still one 1-wide pass per seed) was
/// no faster and worse.
///
/// Deterministic: the first candidate and every draw come from one `DeterministicRandom(seed)` stream in unit order,
/// the sums over units are in unit order, and the products are `RowDots`' (bits independent of CPU path and threads).
extension SignInvariantKMeans {
    /// Initial centroids of one run ([k, dimension] row-major): k-means|| when `options` choose it for this many
    /// units (`KMeansOptions.seedsInParallel`: at least `parallelSeedingUnitsPerCluster`·k), greedy k-means++
    /// (`seedPlusPlus`) otherwise.
    public static func initialCentroids(units: [Float], count: Int, dimension: Int, k: Int, unitNormsSquared: [Double],
                                        options: KMeansOptions, seed: UInt64) -> [Float] {
        if options.seedsInParallel(count: count, k: k) {
            return seedParallel(units: units, count: count, dimension: dimension, k: k,
                                unitNormsSquared: unitNormsSquared, rounds: options.seedingRounds,
                                oversampling: options.oversamplingFactor * Double(k), seed: seed)
        }
        return seedPlusPlus(units: units, count: count, dimension: dimension, k: k, unitNormsSquared: unitNormsSquared,
                            candidates: options.candidates(k: k), seed: seed)
    }

    /// `initialCentroids`, with the units' products with the seeds ([count, k], `RowDots`' bits) when the seeding
    /// computed them all (greedy k-means++), for the first Lloyd step.
    static func seeding(units: [Float], count: Int, dimension: Int, k: Int, unitNormsSquared: [Double],
                        options: KMeansOptions, seed: UInt64) -> (centroids: [Float], products: [Float]?) {
        if options.seedsInParallel(count: count, k: k) {
            return (initialCentroids(units: units, count: count, dimension: dimension, k: k,
                                     unitNormsSquared: unitNormsSquared, options: options, seed: seed), nil)
        }
        let seeded = seedPlusPlusWithProducts(units: units, count: count, dimension: dimension, k: k,
                                              unitNormsSquared: unitNormsSquared, candidates: options.candidates(k: k),
                                              seed: seed)
        return (seeded.centroids, seeded.products)
    }

    /// k-means|| seeding: a uniform first candidate, then `rounds` passes that each draw unit i when u_i·φ < ℓ·D²_i
    /// (u_i uniform; D²_i its sign-invariant distance to the nearest candidate so far; a unit at distance 0 is never
    /// drawn), then the weighted candidates clustered into k. If the pool has fewer than k distinct candidates (every
    /// unit at distance 0 from them), the lowest-index units not drawn fill the rest (Lloyd then re-seeds the empty
    /// clusters, as after greedy seeding of such a pool).
    static func seedParallel(units: [Float], count: Int, dimension: Int, k: Int, unitNormsSquared: [Double],
                             rounds: Int, oversampling: Double, seed: UInt64) -> [Float] {
        guard count > 0, k > 0 else { return [] }
        let (candidates, weights) = parallelCandidates(units: units, count: count, dimension: dimension,
                                                       unitNormsSquared: unitNormsSquared, rounds: rounds,
                                                       oversampling: oversampling, seed: seed)
        let m = candidates.count
        var points = [Float](repeating: 0, count: m * dimension)
        units.withUnsafeBufferPointer { x in
            points.withUnsafeMutableBufferPointer { p in
                guard let x = x.baseAddress, let p = p.baseAddress else { return }
                for (c, unit) in candidates.enumerated() {
                    BLAS.copy(dimension, x: x + unit * dimension, y: p + c * dimension)
                }
            }
        }
        var (centroids, clustered) = CandidateClustering.cluster(points: points, weights: weights, count: m,
                                                                 dimension: dimension, k: k, seed: seed)
        if clustered < k {
            let taken = Set(candidates)
            for unit in 0..<count where clustered < k && !taken.contains(unit) {
                centroids += units[(unit * dimension)..<((unit + 1) * dimension)]
                clustered += 1
            }
            // Fewer units than k cannot happen here (k < count), but never return a short matrix.
            if clustered < k { centroids += [Float](repeating: 0, count: (k - clustered) * dimension) }
        }
        return centroids
    }

    /// k-means||' draws: the candidates (unit indices, in draw order: the uniform first one, then each round's in
    /// unit order) and each one's weight, the number of units nearest to it (ties: the earlier candidate).
    static func parallelCandidates(units: [Float], count: Int, dimension: Int, unitNormsSquared: [Double], rounds: Int,
                                   oversampling: Double, seed: UInt64) -> (candidates: [Int], weights: [Double]) {
        guard count > 0 else { return ([], []) }
        var random = DeterministicRandom(seed: seed)
        var nearest = [Double](repeating: .infinity, count: count)
        var nearestCandidate = [Int](repeating: 0, count: count)
        var drawn = [random.nextIndex(below: count)]
        var candidates: [Int] = []
        for round in 0...max(1, rounds) {
            if round > 0 {
                var phi = 0.0
                for i in 0..<count { phi += nearest[i] }
                guard phi > 0 else { break }
                drawn = []
                for i in 0..<count {
                    let u = random.nextUnitDouble()
                    if nearest[i] > 0 && u * phi < oversampling * nearest[i] { drawn.append(i) }
                }
                if drawn.isEmpty { continue }
            }
            updateNearest(units: units, count: count, dimension: dimension, unitNormsSquared: unitNormsSquared,
                          drawn: drawn, firstIndex: candidates.count, nearest: &nearest, nearestCandidate: &nearestCandidate)
            candidates += drawn
        }
        var weights = [Double](repeating: 0, count: candidates.count)
        for i in 0..<count { weights[nearestCandidate[i]] += 1 }
        return (candidates, weights)
    }

    /// Rows per `RowDots` call of a seeding pass (bounds the products buffer; no part of the result's definition:
    /// a row's products do not depend on the rows computed with it).
    static let seedingRows = 256

    /// One seeding pass: every unit's distance to the `drawn` units (candidates `firstIndex`, `firstIndex + 1`, …),
    /// keeping the nearest (ties: the earlier candidate). A drawn unit is at distance 0 from itself.
    static func updateNearest(units: [Float], count: Int, dimension: Int, unitNormsSquared: [Double], drawn: [Int],
                              firstIndex: Int, nearest: inout [Double], nearestCandidate: inout [Int]) {
        let width = drawn.count
        guard width > 0 else { return }
        var rows = [Float](repeating: 0, count: width * dimension)
        var dots = [Float](repeating: 0, count: min(count, seedingRows) * width)
        units.withUnsafeBufferPointer { x in
            guard let x = x.baseAddress else { return }
            rows.withUnsafeMutableBufferPointer { r in
                guard let r = r.baseAddress else { return }
                for (j, unit) in drawn.enumerated() { BLAS.copy(dimension, x: x + unit * dimension, y: r + j * dimension) }
            }
            rows.withUnsafeBufferPointer { r in
                dots.withUnsafeMutableBufferPointer { p in
                    guard let r = r.baseAddress, let p = p.baseAddress else { return }
                    FixedBlocks.forEach(count: count, blockSize: seedingRows) { start, n in
                        RowDots.compute(x + start * dimension, rows: n, dimension: dimension, centroids: r, count: width,
                                        into: p)
                        for row in 0..<n {
                            let i = start + row
                            for j in 0..<width {
                                let d = drawn[j] == i ? 0 : distance(unitNormSquared: unitNormsSquared[i],
                                                                     centroidNormSquared: unitNormsSquared[drawn[j]],
                                                                     dot: p[row * width + j])
                                if d < nearest[i] { nearest[i] = d; nearestCandidate[i] = firstIndex + j }
                            }
                        }
                    }
                }
            }
        }
    }
}
