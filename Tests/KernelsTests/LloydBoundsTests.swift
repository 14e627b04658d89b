import Testing
@testable import Kernels

/// The bounded Lloyd steps (`LloydBounds`): the same bits as the full step at every step, on data where the bounds
/// skip many units (planted clusters), where they can hardly skip any (Gaussian noise: near ties everywhere),
/// with duplicated units (exact ties), one cluster, empty clusters and small blocks.
@Suite struct LloydBoundsTests {
    /// Runs `steps` steps from the same seeds with and without bounds, comparing every step's result bit for bit;
    /// returns the units skipped.
    static func compare(units: [Float], n: Int, d: Int, k: Int, steps: Int, blockSize: Int, seed: UInt64) -> Int {
        let norms = SignInvariantKMeans.rowNormsSquared(units, count: n, dimension: d)
        var centroids = SignInvariantKMeans.seedPlusPlus(units: units, count: n, dimension: d, k: k,
                                                         unitNormsSquared: norms, candidates: 3, seed: seed)
        var bounds = LloydBounds(units: units, count: n, dimension: d, unitNormsSquared: norms)
        for step in 0..<steps {
            let full = SignInvariantKMeans.lloydStep(units: units, count: n, dimension: d, unitNormsSquared: norms,
                                                     centroids: centroids, k: k, blockSize: blockSize)
            var bounded = SignInvariantKMeans.boundedStep(units: units, count: n, dimension: d, unitNormsSquared: norms,
                                                          centroids: centroids, k: k, blockSize: blockSize,
                                                          bounds: &bounds)
            #expect(bounded.assignment == full.assignment, "step \(step)")
            #expect(bounded.signs.map(\.bitPattern) == full.signs.map(\.bitPattern), "step \(step)")
            #expect(bounded.distances.map(\.bitPattern) == full.distances.map(\.bitPattern), "step \(step)")
            #expect(bounded.sums.map(\.bitPattern) == full.sums.map(\.bitPattern), "step \(step)")
            #expect(bounded.counts == full.counts, "step \(step)")
            #expect(bounded.objective.bitPattern == full.objective.bitPattern, "step \(step)")
            centroids = SignInvariantKMeans.updateCentroids(&bounded, units: units, dimension: d, k: k)
        }
        return bounds.skipped
    }

    @Test("planted clusters: most units skip their products after the first step, bits unchanged",
          arguments: [(d: 40, noise: 0.3, blockSize: 4096), (d: 300, noise: 1.0, blockSize: 7), (d: 33, noise: 2.0, blockSize: 64)])
    func plantedClusters(run: (d: Int, noise: Double, blockSize: Int)) {
        let k = 6
        let data = SignInvariantKMeansTests.planted(clusters: k, perCluster: 30, dimension: run.d, noise: run.noise,
                                                    seed: UInt64(run.d))
        let n = data.labels.count
        let skipped = Self.compare(units: data.units, n: n, d: run.d, k: k, steps: 8, blockSize: run.blockSize, seed: 3)
        #expect(skipped > n * 3)
    }

    @Test("Gaussian units (near ties everywhere), more clusters than structure", arguments: [UInt64(1), 2, 3])
    func gaussianNoise(seed: UInt64) {
        let (n, d, k) = (200, 24, 9)
        _ = Self.compare(units: TestData.gaussian(n * d, seed: seed), n: n, d: d, k: k, steps: 10, blockSize: 4096,
                         seed: seed)
    }

    @Test("duplicated and sign-flipped units (exact ties between centroids), one cluster, more clusters than units can fill")
    func tiesAndEdges() {
        let (d, base) = (20, TestData.gaussian(5 * 20, seed: 8))
        var units: [Float] = []
        for copy in 0..<8 { units += base.map { copy % 2 == 0 ? $0 : -$0 } }
        let n = units.count / d
        _ = Self.compare(units: units, n: n, d: d, k: 7, steps: 6, blockSize: 4096, seed: 2)
        _ = Self.compare(units: units, n: n, d: d, k: 1, steps: 4, blockSize: 11, seed: 2)
        _ = Self.compare(units: units, n: n, d: d, k: 12, steps: 5, blockSize: 4096, seed: 4)
    }
}
