import Testing
@testable import Kernels

/// k-means|| seeding (`SignInvariantKMeans.seedParallel`) against a plain reference: the candidates each round
/// draws and their weights follow from distances computed here in Double by direct loops; the result has k rows,
/// is the same bytes on every run, and finds every planted cluster.
@Suite struct KMeansSeedingTests {
    /// Plain k-means||: distances in Double from the definition min(‖x − c‖², ‖x + c‖²), the same random stream.
    static func referenceCandidates(units: [Float], count n: Int, dimension d: Int, rounds: Int, oversampling: Double,
                                    seed: UInt64) -> (candidates: [Int], weights: [Double]) {
        func distance(_ i: Int, _ j: Int) -> Double {
            var minus = 0.0, plus = 0.0
            for e in 0..<d {
                let x = Double(units[i * d + e]), c = Double(units[j * d + e])
                minus += (x - c) * (x - c)
                plus += (x + c) * (x + c)
            }
            return min(minus, plus)
        }
        var random = DeterministicRandom(seed: seed)
        var candidates = [random.nextIndex(below: n)]
        var nearest = (0..<n).map { distance($0, candidates[0]) }
        var owner = [Int](repeating: 0, count: n)
        for _ in 0..<rounds {
            let phi = nearest.reduce(0, +)
            guard phi > 0 else { break }
            var drawn: [Int] = []
            for i in 0..<n {
                let u = random.nextUnitDouble()
                if nearest[i] > 0 && u * phi < oversampling * nearest[i] { drawn.append(i) }
            }
            for (offset, j) in drawn.enumerated() {
                for i in 0..<n {
                    let dist = i == j ? 0 : distance(i, j)
                    if dist < nearest[i] { nearest[i] = dist; owner[i] = candidates.count + offset }
                }
            }
            candidates += drawn
        }
        var weights = [Double](repeating: 0, count: candidates.count)
        for i in 0..<n { weights[owner[i]] += 1 }
        return (candidates, weights)
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func candidatesAndWeightsMatchThePlainReference(seed: UInt64) {
        let data = SignInvariantKMeansTests.planted(clusters: 6, perCluster: 30, dimension: 24, noise: 0.3, seed: seed)
        let n = data.labels.count
        let norms = SignInvariantKMeans.rowNormsSquared(data.units, count: n, dimension: 24)
        let got = SignInvariantKMeans.parallelCandidates(units: data.units, count: n, dimension: 24,
                                                         unitNormsSquared: norms, rounds: 2, oversampling: 12, seed: seed)
        let expected = Self.referenceCandidates(units: data.units, count: n, dimension: 24, rounds: 2, oversampling: 12,
                                                seed: seed)
        #expect(got.candidates == expected.candidates)
        #expect(got.weights == expected.weights)
        #expect(got.weights.reduce(0, +) == Double(n))
    }

    @Test(arguments: [UInt64(11), 12, 13])
    func seedsAreKRowsSameBytesAndCoverEveryPlantedCluster(seed: UInt64) throws {
        let (k, d) = (8, 30)
        let data = SignInvariantKMeansTests.planted(clusters: k, perCluster: 25, dimension: d, noise: 0.05, seed: seed)
        let n = data.labels.count
        let norms = SignInvariantKMeans.rowNormsSquared(data.units, count: n, dimension: d)
        let options = KMeansOptions(seedingRounds: 2)
        #expect(options.seedsInParallel(count: n, k: k))
        let first = SignInvariantKMeans.initialCentroids(units: data.units, count: n, dimension: d, k: k,
                                                         unitNormsSquared: norms, options: options, seed: seed)
        let second = SignInvariantKMeans.initialCentroids(units: data.units, count: n, dimension: d, k: k,
                                                          unitNormsSquared: norms, options: options, seed: seed)
        #expect(first.count == k * d)
        #expect(first.map(\.bitPattern) == second.map(\.bitPattern))
        // Every planted cluster's members are nearest to some seed that no other cluster's members are nearest to.
        var owners = [Set<Int>](repeating: [], count: k)
        for i in 0..<n {
            var best = 0, bestDistance = Double.infinity
            for c in 0..<k {
                var dot = 0.0, norm = 0.0
                for e in 0..<d { dot += Double(data.units[i * d + e]) * Double(first[c * d + e]); norm += Double(first[c * d + e]) * Double(first[c * d + e]) }
                let dist = norms[i] + norm - 2 * abs(dot)
                if dist < bestDistance { bestDistance = dist; best = c }
            }
            owners[data.labels[i]].insert(best)
        }
        #expect(owners.allSatisfy { $0.count == 1 })
        #expect(Set(owners.compactMap(\.first)).count == k)
    }

    /// A pool of fewer distinct directions than k (copies, up to sign): every unit ends at distance 0 from the
    /// candidates, the seeding still returns k finite rows and the clustering keeps every cluster non-empty.
    @Test func fewerDistinctUnitsThanClusters() throws {
        let (d, k) = (12, 4)
        let base = TestData.gaussian(3 * d, seed: 3)
        var units: [Float] = []
        for i in 0..<40 { units += base[((i % 3) * d)..<((i % 3 + 1) * d)].map { i % 2 == 0 ? $0 : -$0 } }
        let norms = SignInvariantKMeans.rowNormsSquared(units, count: 40, dimension: d)
        let seeds = SignInvariantKMeans.seedParallel(units: units, count: 40, dimension: d, k: k, unitNormsSquared: norms,
                                                     rounds: 2, oversampling: 8, seed: 5)
        #expect(seeds.count == k * d && seeds.allSatisfy(\.isFinite))
        let result = try SignInvariantKMeans.cluster(units: units, count: 40, dimension: d, k: k,
                                                     options: KMeansOptions(iterations: 10, tolerance: 0, seedingRounds: 2),
                                                     seed: 5)
        #expect(result.clusterSizes.allSatisfy { $0 > 0 })
        #expect(result.finalObjective < 1e-6 * norms.reduce(0, +))
    }

    /// Small pools (fewer than 8 units per cluster) and `seedingRounds: 0` (the default) keep greedy k-means++: its
    /// exact bits.
    @Test func smallPoolsKeepGreedySeeding() {
        let (n, d, k) = (40, 9, 6)
        let units = TestData.gaussian(n * d, seed: 21)
        let norms = SignInvariantKMeans.rowNormsSquared(units, count: n, dimension: d)
        let greedy = SignInvariantKMeans.seedPlusPlus(units: units, count: n, dimension: d, k: k, unitNormsSquared: norms,
                                                      candidates: KMeansOptions().candidates(k: k), seed: 4)
        for options in [KMeansOptions(), KMeansOptions(seedingRounds: 2)] {
            let seeds = SignInvariantKMeans.initialCentroids(units: units, count: n, dimension: d, k: k,
                                                             unitNormsSquared: norms, options: options, seed: 4)
            #expect(seeds.map(\.bitPattern) == greedy.map(\.bitPattern))
        }
        #expect(!KMeansOptions(seedingRounds: 2).seedsInParallel(count: n, k: k))
        #expect(KMeansOptions(seedingRounds: 2).seedsInParallel(count: 8 * k, k: k))
        #expect(!KMeansOptions().seedsInParallel(count: 8 * k, k: k))
    }
}
