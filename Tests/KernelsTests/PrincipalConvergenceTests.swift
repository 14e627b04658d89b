import Testing
@testable import Kernels

/// `ClusterPrincipalDirections.principal`'s per-cluster stop: a cluster that stops after r iterations has exactly the
/// bits of r iterations without a stop (its sums see its own members only, whatever the others do), converged
/// clusters still give their dense top singular triple, and a cluster without a dominant direction runs to the cap.
@Suite struct PrincipalConvergenceTests {
    @Test(arguments: [UInt64(1), 2, 3, 4])
    func eachClusterHasTheBitsOfItsOwnIterationCount(seed: UInt64) {
        let (count, out, inFeatures, k) = (90, 12, 17, 5)
        let (units, assignment) = ClusterPrincipalDirectionsTests.plantedUnits(count: count, out: out, in: inFeatures,
                                                                              k: k, noise: 0.05 * Double(seed), seed: seed)
        let centroids = TestData.gaussian(k * (out + inFeatures), seed: seed &+ 9)
        let stopped = ClusterPrincipalDirections.principal(units: units, count: count, outFeatures: out,
                                                           inFeatures: inFeatures, assignment: assignment, k: k,
                                                           centroids: centroids, iterations: 12, tolerance: 1e-5,
                                                           blockSize: 16)
        let dimension = out + inFeatures
        #expect(stopped.iterations.allSatisfy { (1...12).contains($0) })
        for c in 0..<k {
            let alone = ClusterPrincipalDirections.units(units: units, count: count, outFeatures: out,
                                                         inFeatures: inFeatures, assignment: assignment, k: k,
                                                         centroids: centroids, iterations: stopped.iterations[c],
                                                         blockSize: 16)
            let row = (c * dimension)..<((c + 1) * dimension)
            #expect(stopped.units[row].map(\.bitPattern) == alone.units[row].map(\.bitPattern), "cluster \(c)")
            #expect(stopped.singularValues[c].bitPattern == alone.singularValues[c].bitPattern, "cluster \(c)")
        }
    }

    /// Tolerance 0 runs every iteration: the bits of `units`, and every cluster reports the cap.
    @Test func zeroToleranceRunsEveryIteration() {
        let (count, out, inFeatures, k) = (40, 6, 9, 3)
        let (units, assignment) = ClusterPrincipalDirectionsTests.plantedUnits(count: count, out: out, in: inFeatures,
                                                                              k: k, noise: 0.2, seed: 8)
        let centroids = TestData.gaussian(k * (out + inFeatures), seed: 10)
        let full = ClusterPrincipalDirections.principal(units: units, count: count, outFeatures: out,
                                                        inFeatures: inFeatures, assignment: assignment, k: k,
                                                        centroids: centroids, iterations: 7, tolerance: 0)
        #expect(full.iterations == [7, 7, 7])
    }

    /// Nearly parallel members converge within a few iterations and stop there, with the dense top singular triple
    /// (LAPACK) to 1e-4; a cluster of two orthogonal directions of equal weight never settles and runs to the cap.
    @Test func alignedClustersStopEarlyAndStillMatchTheDenseTriple() throws {
        let (out, inFeatures, perCluster) = (10, 14, 20)
        let dimension = out + inFeatures
        var random = DeterministicRandom(seed: 31)
        let direction = TestData.gaussian(dimension, seed: 32)
        let first = TestData.gaussian(dimension, seed: 33), second = TestData.gaussian(dimension, seed: 34)
        var units: [Float] = [], assignment: [Int] = []
        for i in 0..<perCluster {  // cluster 0: ±(1 + small) · one direction
            let sign: Float = i % 2 == 0 ? 1 : -1
            units += direction.map { sign * $0 * Float(1 + 0.01 * random.nextGaussian()) }
            assignment.append(0)
        }
        for i in 0..<perCluster {  // cluster 1: two unrelated rank-ones, alternating, equal norms
            units += (i % 2 == 0 ? first : second)
            assignment.append(1)
        }
        let centroids = [Float](direction + first)
        let result = ClusterPrincipalDirections.principal(units: units, count: 2 * perCluster, outFeatures: out,
                                                          inFeatures: inFeatures, assignment: assignment, k: 2,
                                                          centroids: centroids, iterations: 8, tolerance: 1e-5)
        #expect(result.iterations[0] < 8)
        let t = ClusterPrincipalDirectionsTests.clusterSum(units, assignment: assignment, cluster: 0, out: out, in: inFeatures)
        let svd = try LinearAlgebra.svd(t.map { Float($0) }, rows: out, cols: inFeatures)
        #expect(abs(result.singularValues[0] - Double(svd.s[0])) <= 1e-4 * Double(svd.s[0]))
        #expect(result.iterations[1] <= 8)
        #expect(result.singularValues.allSatisfy { $0.isFinite && $0 > 0 })
    }
}
