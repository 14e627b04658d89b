import Testing
@testable import Kernels

@Suite struct SignInvariantKMeansTests {
    /// `clusters` planted directions of norm 10, each unit = ±(direction + noise), random sign.
    static func planted(clusters: Int, perCluster: Int, dimension: Int, noise: Double, seed: UInt64)
        -> (units: [Float], labels: [Int], centers: [Float]) {
        var random = DeterministicRandom(seed: seed)
        var centers = [Float](repeating: 0, count: clusters * dimension)
        for c in 0..<clusters {
            var row = (0..<dimension).map { _ in random.nextGaussian() }
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            row = row.map { $0 * 10 / norm }
            for j in 0..<dimension { centers[c * dimension + j] = Float(row[j]) }
        }
        var units: [Float] = [], labels: [Int] = []
        for i in 0..<(clusters * perCluster) {
            let c = (i * 7) % clusters  // interleaved, so cluster order is not unit order
            let sign: Double = random.nextIndex(below: 2) == 0 ? -1 : 1
            for j in 0..<dimension {
                units.append(Float(sign * (Double(centers[c * dimension + j]) + noise * random.nextGaussian())))
            }
            labels.append(c)
        }
        return (units, labels, centers)
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func objectiveNeverIncreases(seed: UInt64) throws {
        let (n, d, k) = (300, 24, 9)
        let units = TestData.gaussian(n * d, seed: seed)
        let result = try SignInvariantKMeans.cluster(units: units, count: n, dimension: d, k: k,
                                                 options: KMeansOptions(iterations: 40, tolerance: 0), seed: seed)
        #expect(result.iterations == 40)
        #expect(result.objectiveHistory.count == 41)
        for (previous, next) in zip(result.objectiveHistory, result.objectiveHistory.dropFirst()) {
            #expect(next <= previous * (1 + 1e-6))
        }
        #expect(result.objectiveHistory.last! < result.objectiveHistory.first!)
        #expect(result.clusterSizes.reduce(0, +) == n)
        #expect(result.clusterSizes.allSatisfy { $0 > 0 })
    }

    @Test(arguments: [UInt64(7), 8, 9, 10])
    func recoversWellSeparatedClustersUpToSign(seed: UInt64) throws {
        let (k, d) = (5, 40)
        let data = Self.planted(clusters: k, perCluster: 30, dimension: d, noise: 0.05, seed: seed)
        let result = try SignInvariantKMeans.cluster(units: data.units, count: data.labels.count, dimension: d, k: k,
                                                 options: KMeansOptions(), seed: seed)
        // A bijection between planted labels and found clusters.
        var map: [Int: Int] = [:]
        for (i, label) in data.labels.enumerated() {
            if let found = map[label] { #expect(found == result.assignment[i]) } else { map[label] = result.assignment[i] }
        }
        #expect(Set(map.values).count == k)
        // Each centroid is its planted center up to sign.
        for (label, cluster) in map {
            var dot = 0.0, norm = 0.0
            for j in 0..<d {
                dot += Double(data.centers[label * d + j]) * Double(result.centroids[cluster * d + j])
                norm += Double(result.centroids[cluster * d + j]) * Double(result.centroids[cluster * d + j])
            }
            #expect(abs(abs(dot) / (10 * norm.squareRoot()) - 1) < 1e-3)
        }
    }

    @Test func twoRunsAreByteIdentical() throws {
        let (n, d, k) = (200, 16, 6)
        let units = TestData.gaussian(n * d, seed: 77)
        let options = KMeansOptions(iterations: 25, tolerance: 0)
        let first = try SignInvariantKMeans.cluster(units: units, count: n, dimension: d, k: k, options: options, seed: 5)
        let second = try SignInvariantKMeans.cluster(units: units, count: n, dimension: d, k: k, options: options, seed: 5)
        #expect(first.centroids.map(\.bitPattern) == second.centroids.map(\.bitPattern))
        #expect(first.assignment == second.assignment)
        #expect(first.objectiveHistory == second.objectiveHistory)
    }

    /// Every Lloyd step run, the way `lloyd` ran them before it learned to stop at a fixed point: the reference for
    /// `fixedPointShortcutGivesTheSameBits`.
    static func everyStep(units: [Float], count n: Int, dimension d: Int, k: Int, options: KMeansOptions,
                          seed: UInt64) -> (result: KMeansResult, fixedPointAt: Int?) {
        let norms = SignInvariantKMeans.rowNormsSquared(units, count: n, dimension: d)
        var centroids = SignInvariantKMeans.initialCentroids(units: units, count: n, dimension: d, k: k,
                                                             unitNormsSquared: norms, options: options, seed: seed)
        var step = SignInvariantKMeans.lloydStep(units: units, count: n, dimension: d, unitNormsSquared: norms,
                                                 centroids: centroids, k: k, blockSize: options.blockSize)
        var history = [step.objective]
        var iterations = 0
        var fixedPointAt: Int?
        while iterations < options.iterations {
            let next = SignInvariantKMeans.updateCentroids(&step, units: units, dimension: d, k: k)
            if fixedPointAt == nil && next.map(\.bitPattern) == centroids.map(\.bitPattern) { fixedPointAt = iterations }
            centroids = next
            step = SignInvariantKMeans.lloydStep(units: units, count: n, dimension: d, unitNormsSquared: norms,
                                                 centroids: centroids, k: k, blockSize: options.blockSize)
            iterations += 1
            let previous = history[history.count - 1]
            history.append(step.objective)
            if options.tolerance > 0 && (previous <= 0 || (previous - step.objective) < options.tolerance * previous) {
                break
            }
        }
        centroids = SignInvariantKMeans.updateCentroids(&step, units: units, dimension: d, k: k)
        return (KMeansResult(clusterCount: k, centroids: centroids, assignment: step.assignment, signs: step.signs,
                             clusterSizes: step.counts, iterations: iterations, objectiveHistory: history), fixedPointAt)
    }

    @Test("a run that reaches a fixed point early gives the bits, history and iteration count of running every step",
          arguments: [(seed: UInt64(11), tolerance: 0.0, iterations: 30), (seed: 12, tolerance: 0, iterations: 30),
                      (seed: 13, tolerance: 1e-9, iterations: 30), (seed: 14, tolerance: 0, iterations: 3)])
    func fixedPointShortcutGivesTheSameBits(run: (seed: UInt64, tolerance: Double, iterations: Int)) throws {
        let (k, d) = (6, 20)
        let data = Self.planted(clusters: k, perCluster: 25, dimension: d, noise: 0.8, seed: run.seed)
        let n = data.labels.count
        let options = KMeansOptions(iterations: run.iterations, tolerance: run.tolerance)
        let fast = try SignInvariantKMeans.cluster(units: data.units, count: n, dimension: d, k: k, options: options,
                                                   seed: run.seed)
        let (slow, fixedPointAt) = Self.everyStep(units: data.units, count: n, dimension: d, k: k, options: options,
                                                  seed: run.seed)
        if run.iterations == 30 {
            // The case under test: the fixed point comes well before the last iteration.
            #expect(try #require(fixedPointAt) < 20)
        }
        #expect(fast.centroids.map(\.bitPattern) == slow.centroids.map(\.bitPattern))
        #expect(fast.assignment == slow.assignment)
        #expect(fast.signs.map(\.bitPattern) == slow.signs.map(\.bitPattern))
        #expect(fast.clusterSizes == slow.clusterSizes)
        #expect(fast.iterations == slow.iterations)
        #expect(fast.objectiveHistory.map(\.bitPattern) == slow.objectiveHistory.map(\.bitPattern))
    }

    @Test func sameBitsTellsSignedZerosApart() {
        #expect(SignInvariantKMeans.sameBits([1, 0, 2], [1, 0, 2]))
        #expect(!SignInvariantKMeans.sameBits([1, 0, 2], [1, -0.0, 2]))
        #expect(!SignInvariantKMeans.sameBits([1, 0], [1, 0, 0]))
        #expect(SignInvariantKMeans.sameBits([], []))
    }

    @Test(arguments: [3, 4, 10])
    func everyUnitIsItsOwnClusterWhenKIsAtLeastN(k: Int) throws {
        let units = TestData.gaussian(3 * 5, seed: 1)
        let result = try SignInvariantKMeans.cluster(units: units, count: 3, dimension: 5, k: k,
                                                 options: KMeansOptions(), seed: 1)
        #expect(result.clusterCount == 3)
        #expect(result.centroids == units)
        #expect(result.assignment == [0, 1, 2])
        #expect(result.finalObjective == 0)
    }

    @Test(arguments: [1, 13, 64])
    func blockedStepAgreesWithOneBlock(blockSize: Int) {
        let (n, d, k) = (150, 12, 5)
        let units = TestData.gaussian(n * d, seed: 3)
        let centroids = TestData.gaussian(k * d, seed: 4)
        let norms = SignInvariantKMeans.rowNormsSquared(units, count: n, dimension: d)
        // One BLAS thread for both: concurrent tests' singleThreaded scopes would otherwise change the count
        // between the two steps (OpenBLAS's 2-thread sgemm gives other bits), as merges always run pinned.
        let (whole, blocked) = BLAS.singleThreaded {
            (SignInvariantKMeans.lloydStep(units: units, count: n, dimension: d, unitNormsSquared: norms,
                                           centroids: centroids, k: k, blockSize: 4096),
             SignInvariantKMeans.lloydStep(units: units, count: n, dimension: d, unitNormsSquared: norms,
                                           centroids: centroids, k: k, blockSize: blockSize))
        }
        #expect(whole.assignment == blocked.assignment)
        #expect(whole.signs == blocked.signs)
        #expect(whole.counts == blocked.counts)
        // Dots come from Float GEMMs whose kernel depends on the block height (a 1-row block takes OpenBLAS's
        // GEMV-like path on some CPUs), so the objective agrees to Float rounding of the dots, not to 1e-9.
        #expect(abs(whole.objective - blocked.objective) <= 1e-6 * whole.objective)
        for i in whole.sums.indices { #expect(abs(whole.sums[i] - blocked.sums[i]) < 1e-4) }
        // The signed sums are the aligned members' sums (independent loop).
        for c in 0..<k { for j in 0..<d {
            var expected = 0.0
            for i in 0..<n where whole.assignment[i] == c { expected += Double(whole.signs[i]) * Double(units[i * d + j]) }
            #expect(abs(Double(whole.sums[c * d + j]) - expected) < 1e-4)
        } }
    }

    @Test func emptyClusterTakesFarthestUnit() {
        // Two tight groups and a third centroid far from every unit: it gets no members and must be re-seeded.
        let units: [Float] = [1, 0, 1.1, 0, 0.9, 0.1, 0, 1, 0, 1.2, 3, 3.1]
        let centroids: [Float] = [1, 0, 0, 1, 100, -100]
        let norms = SignInvariantKMeans.rowNormsSquared(units, count: 6, dimension: 2)
        var step = SignInvariantKMeans.lloydStep(units: units, count: 6, dimension: 2, unitNormsSquared: norms,
                                                 centroids: centroids, k: 3, blockSize: 4096)
        #expect(step.counts[2] == 0)
        let updated = SignInvariantKMeans.updateCentroids(&step, units: units, dimension: 2, k: 3)
        // Unit 5 = (3, 3.1) is farthest from its centroid.
        #expect(step.assignment[5] == 2)
        #expect(Array(updated[4..<6]) == [3, 3.1])
        #expect(step.counts.allSatisfy { $0 > 0 })
        #expect(step.counts.reduce(0, +) == 6)
    }
}
