import Testing
@testable import Kernels

@Suite struct ClusterStatisticsTests {
    static func gaussian(_ count: Int, seed: UInt64) -> [Float] {
        var random = DeterministicRandom(seed: seed)
        return (0..<count).map { _ in Float(random.nextGaussian()) }
    }

    @Test func coherenceIsOneForIdenticalUnits() throws {
        let unit = Self.gaussian(512, seed: 1)
        let units = (0..<10).flatMap { i in unit.map { $0 * Float(i % 2 == 0 ? 1 : -1) } }  // signs do not matter
        let clustering = try SignInvariantKMeans.cluster(units: units, count: 10, dimension: 512, k: 1,
                                                         options: KMeansOptions(), seed: 3)
        let statistics = try ClusterStatistics.of(units: units, count: 10, outFeatures: 256, inFeatures: 256,
                                                  assignment: clustering.assignment, signs: clustering.signs, k: 1)
        #expect(abs(statistics.coherence[0] - 1) < 1e-6)
        #expect(statistics.catchAllShare() == 0)
    }

    /// 64 unrelated units of dimension 512 in one cluster (signs aligned by the k-means): about 1/√64.
    @Test(arguments: [UInt64(1), 2, 3])
    func coherenceIsLowForRandomUnits(seed: UInt64) throws {
        let units = Self.gaussian(64 * 512, seed: seed)
        let clustering = try SignInvariantKMeans.cluster(units: units, count: 64, dimension: 512, k: 1,
                                                         options: KMeansOptions(), seed: seed)
        let statistics = try ClusterStatistics.of(units: units, count: 64, outFeatures: 200, inFeatures: 312,
                                                  assignment: clustering.assignment, signs: clustering.signs, k: 1)
        #expect(statistics.coherence[0] < 0.3)
        #expect(statistics.coherence[0] > 0.05)
        #expect(statistics.catchAllShare() == 1)
    }

    /// Blocks reduce to the statistics of the whole: counts and norm sums exactly, aligned sums to rounding, and
    /// the same blocks always give the same bits.
    @Test func blocksReduceToTheWhole() throws {
        let (count, out, inFeatures, k) = (37, 6, 5, 4)
        let units = Self.gaussian(count * (out + inFeatures), seed: 9)
        var random = DeterministicRandom(seed: 4)
        let assignment = (0..<count).map { _ in random.nextIndex(below: k) }
        let signs: [Float] = (0..<count).map { _ in random.nextIndex(below: 2) == 0 ? -1 : 1 }
        let whole = try ClusterStatistics.of(units: units, count: count, outFeatures: out, inFeatures: inFeatures,
                                             assignment: assignment, signs: signs, k: k, blockSize: 1000)
        let blocked = try ClusterStatistics.of(units: units, count: count, outFeatures: out, inFeatures: inFeatures,
                                               assignment: assignment, signs: signs, k: k, blockSize: 5)
        let again = try ClusterStatistics.of(units: units, count: count, outFeatures: out, inFeatures: inFeatures,
                                             assignment: assignment, signs: signs, k: k, blockSize: 5)
        #expect(blocked == again)
        #expect(whole.counts == blocked.counts)
        #expect(whole.counts.reduce(0, +) == count)
        for c in 0..<k {
            #expect(abs(whole.normSums[c] - blocked.normSums[c]) < 1e-9)
            #expect(abs(whole.normSquaredSums[c] - blocked.normSquaredSums[c]) < 1e-9)
        }
        for (x, y) in zip(whole.alignedSums, blocked.alignedSums) { #expect(abs(x - y) < 1e-4) }
        // Independent check of one aligned sum.
        let dimension = out + inFeatures
        for c in 0..<k {
            for d in 0..<dimension {
                let expected = (0..<count).filter { assignment[$0] == c }.reduce(Float(0)) { $0 + signs[$1] * units[$1 * dimension + d] }
                #expect(abs(whole.alignedSums[c * dimension + d] - expected) < 1e-4)
            }
        }
    }

    /// Reweighting rules from the statistics alone, against their formulas on a hand-made cluster.
    @Test func reweightingFormulas() throws {
        // Two clusters in dimension 4 (out 2, in 2): cluster 0 = two parallel units of norms 1 and 3,
        // cluster 1 = two orthogonal units of norm 2.
        let units: [Float] = [1, 0, 0, 0,  3, 0, 0, 0,  0, 2, 0, 0,  0, 0, 2, 0]
        let statistics = try ClusterStatistics.of(units: units, count: 4, outFeatures: 2, inFeatures: 2,
                                                  assignment: [0, 0, 1, 1], signs: [1, 1, 1, 1], k: 2)
        let centroids = statistics.centroids
        #expect(centroids == [2, 0, 0, 0,  0, 1, 1, 0])
        #expect(abs(statistics.coherence[0] - 1) < 1e-12)
        #expect(abs(statistics.coherence[1] - (8.0).squareRoot() / 4) < 1e-7)
        let dual = try ClusterReweighting.dual.weights(statistics, centroids: centroids)
        #expect(abs(dual[0] - 10.0 / 4) < 1e-12)   // Σ‖x‖² / mean‖x‖² = 10 / 2²
        #expect(abs(dual[1] - 8.0 / 4) < 1e-12)    // 8 / 2²
        let sum = try ClusterReweighting.sum.weights(statistics, centroids: centroids)
        #expect(abs(sum[0] - 2) < 1e-12)           // n (mean‖x‖ / ‖μ‖)² = 2 · (2/2)²
        #expect(abs(sum[1] - 4) < 1e-6)            // 2 · (2/√2)²
        #expect(try ClusterReweighting.none.weights(statistics, centroids: centroids) == [1, 1])
        #expect(throws: KernelShapeError.self) { _ = try ClusterReweighting.optimal.weights(statistics, centroids: centroids) }
    }
}
