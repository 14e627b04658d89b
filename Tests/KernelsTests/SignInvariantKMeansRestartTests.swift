import Testing
@testable import Kernels

/// Greedy k-means++ seeding and restarts: planted clusters of unequal sizes and spreads, where plain k-means++
/// often puts two seeds in the big loose cluster and none in a small tight one.
@Suite struct SignInvariantKMeansRestartTests {
    /// Units = ±(center + spread · noise) with random sign; centers of norm 10 in random directions; labels in
    /// an interleaved order so cluster order is not unit order.
    static func unequal(sizes: [Int], spreads: [Double], dimension: Int, seed: UInt64)
        -> (units: [Float], labels: [Int]) {
        var random = DeterministicRandom(seed: seed)
        var centers: [[Double]] = []
        for _ in sizes {
            let row = (0..<dimension).map { _ in random.nextGaussian() }
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            centers.append(row.map { $0 * 10 / norm })
        }
        var labels: [Int] = []
        for (c, size) in sizes.enumerated() { labels += [Int](repeating: c, count: size) }
        var order = Array(labels.indices)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, random.nextIndex(below: i + 1)) }
        labels = order.map { labels[$0] }
        var units: [Float] = []
        for c in labels {
            let sign: Double = random.nextIndex(below: 2) == 0 ? -1 : 1
            for j in 0..<dimension { units.append(Float(sign * (centers[c][j] + spreads[c] * random.nextGaussian()))) }
        }
        return (units, labels)
    }

    /// True when `found` is `planted` up to a relabelling (a bijection between labels).
    static func matches(_ found: [Int], _ planted: [Int]) -> Bool {
        var forward: [Int: Int] = [:], backward: [Int: Int] = [:]
        for (f, p) in zip(found, planted) {
            if let mapped = forward[p], mapped != f { return false }
            if let mapped = backward[f], mapped != p { return false }
            forward[p] = f
            backward[f] = p
        }
        return true
    }

    /// One big loose cluster and five small tight ones, all well separated (inter-center d ≈ 200, the big
    /// cluster's spread 0.3 per coordinate): the planted labels are the global optimum by a wide margin.
    static func hardPool(seed: UInt64) -> (units: [Float], labels: [Int]) {
        unequal(sizes: [120, 6, 6, 6, 6, 6], spreads: [0.3, 0.05, 0.05, 0.05, 0.05, 0.05], dimension: 40, seed: seed)
    }

    static let seeds: [UInt64] = Array(1...30)

    @Test(arguments: seeds)
    func unequalClustersAreRecoveredExactly(seed: UInt64) throws {
        let data = Self.hardPool(seed: seed)
        let result = try SignInvariantKMeans.cluster(units: data.units, count: data.labels.count, dimension: 40, k: 6,
                                                     options: KMeansOptions(restarts: 3), seed: seed &* 31)
        #expect(Self.matches(result.assignment, data.labels))
        #expect(result.clusterSizes.sorted() == [6, 6, 6, 6, 6, 120])
    }

    /// The pool above is hard: plain k-means++ (one D² draw per step, one run) misses on a good share of the
    /// same seeds, so the test above would fail without greedy seeding and restarts.
    @Test func plainSeedingFailsOnTheSamePool() throws {
        var failures = 0
        for seed in Self.seeds {
            let data = Self.hardPool(seed: seed)
            let result = try SignInvariantKMeans.cluster(
                units: data.units, count: data.labels.count, dimension: 40, k: 6,
                options: KMeansOptions(restarts: 1, seedingCandidates: 1), seed: seed &* 31)
            if !Self.matches(result.assignment, data.labels) { failures += 1 }
        }
        #expect(failures >= 5)
    }

    /// Restart 0 is the module seed's own run, so more restarts can only keep it or find a lower objective.
    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func restartsNeverRaiseTheObjective(seed: UInt64) throws {
        let (n, d, k) = (240, 20, 12)
        let units = TestData.gaussian(n * d, seed: seed)
        let single = try SignInvariantKMeans.cluster(units: units, count: n, dimension: d, k: k,
                                                     options: KMeansOptions(restarts: 1), seed: seed)
        let several = try SignInvariantKMeans.cluster(units: units, count: n, dimension: d, k: k,
                                                      options: KMeansOptions(restarts: 5), seed: seed)
        #expect(single.restart == 0)
        #expect(several.finalObjective <= single.finalObjective)
        if several.restart == 0 {
            #expect(several.centroids.map(\.bitPattern) == single.centroids.map(\.bitPattern))
        } else {
            #expect(several.finalObjective < single.finalObjective)
        }
    }

    /// On well-separated equal clusters every restart reaches the same objective; the tie keeps restart 0.
    @Test func tiesKeepTheFirstRestart() throws {
        let data = SignInvariantKMeansTests.planted(clusters: 4, perCluster: 20, dimension: 30, noise: 0.05, seed: 11)
        let result = try SignInvariantKMeans.cluster(units: data.units, count: data.labels.count, dimension: 30, k: 4,
                                                     options: KMeansOptions(restarts: 4), seed: 9)
        #expect(result.restart == 0)
        #expect(Self.matches(result.assignment, data.labels))
    }

    @Test func restartsAreByteIdenticalAcrossRuns() throws {
        let (n, d, k) = (300, 18, 10)
        let units = TestData.gaussian(n * d, seed: 99)
        let options = KMeansOptions(restarts: 4)
        let first = try SignInvariantKMeans.cluster(units: units, count: n, dimension: d, k: k, options: options, seed: 21)
        let second = try SignInvariantKMeans.cluster(units: units, count: n, dimension: d, k: k, options: options, seed: 21)
        #expect(first.centroids.map(\.bitPattern) == second.centroids.map(\.bitPattern))
        #expect(first.assignment == second.assignment)
        #expect(first.signs == second.signs)
        #expect(first.restart == second.restart)
        #expect(first.objectiveHistory.map(\.bitPattern) == second.objectiveHistory.map(\.bitPattern))
    }

    /// Greedy seeding against an independent computation: with one candidate per step drawn from a single
    /// non-zero-weight unit the draw is forced, and every seed is a unit row, never the same unit twice.
    @Test(arguments: [1, 3, 8])
    func seedsAreDistinctUnitRows(candidates: Int) {
        let (n, d, k) = (60, 7, 9)
        let units = TestData.gaussian(n * d, seed: 5)
        let norms = SignInvariantKMeans.rowNormsSquared(units, count: n, dimension: d)
        let seeds = SignInvariantKMeans.seedPlusPlus(units: units, count: n, dimension: d, k: k, unitNormsSquared: norms,
                                                     candidates: candidates, seed: 4)
        var picked: [Int] = []
        for c in 0..<k {
            let row = Array(seeds[(c * d)..<((c + 1) * d)])
            let index = (0..<n).first { Array(units[($0 * d)..<(($0 + 1) * d)]) == row }
            #expect(index != nil)
            if let index { picked.append(index) }
        }
        #expect(Set(picked).count == k)
    }

    /// The greedy step keeps the candidate with the lowest potential: recomputed here by plain loops over every
    /// unit as a candidate, the greedy second seed with many candidates is never worse than a plain draw.
    @Test func greedyStepLowersThePotential() {
        let (n, d) = (80, 6)
        let units = TestData.gaussian(n * d, seed: 8)
        let norms = SignInvariantKMeans.rowNormsSquared(units, count: n, dimension: d)
        func potential(_ seeds: [Float], k: Int) -> Double {
            var total = 0.0
            for i in 0..<n {
                var best = Double.infinity
                for c in 0..<k {
                    var minus = 0.0, plus = 0.0
                    for j in 0..<d {
                        let x = Double(units[i * d + j]), m = Double(seeds[c * d + j])
                        minus += (x - m) * (x - m)
                        plus += (x + m) * (x + m)
                    }
                    best = min(best, minus, plus)
                }
                total += best
            }
            return total
        }
        var plainTotal = 0.0, greedyTotal = 0.0
        for seed in UInt64(1)...20 {
            let plain = SignInvariantKMeans.seedPlusPlus(units: units, count: n, dimension: d, k: 5,
                                                         unitNormsSquared: norms, candidates: 1, seed: seed)
            let greedy = SignInvariantKMeans.seedPlusPlus(units: units, count: n, dimension: d, k: 5,
                                                          unitNormsSquared: norms, candidates: 4, seed: seed)
            plainTotal += potential(plain, k: 5)
            greedyTotal += potential(greedy, k: 5)
        }
        #expect(greedyTotal < plainTotal)
    }
}
