import Testing
@testable import Kernels

/// `ClusterPrincipalDirections` against dense computations: the factored products equal T_c v and T_cᵀ u formed
/// densely, blocks reduce to the whole in block order, and the power iterations reach the top singular triple of
/// each cluster's dense sum (LAPACK's SVD).
@Suite struct ClusterPrincipalDirectionsTests {
    /// Dense T_c = Σ_{i∈c} x_B,i x_A,iᵀ in Double, row-major [out, in].
    static func clusterSum(_ units: [Float], assignment: [Int], cluster: Int, out: Int, in inFeatures: Int) -> [Double] {
        let dimension = out + inFeatures
        var t = [Double](repeating: 0, count: out * inFeatures)
        for (i, c) in assignment.enumerated() where c == cluster {
            for r in 0..<out {
                let left = Double(units[i * dimension + r])
                for col in 0..<inFeatures { t[r * inFeatures + col] += left * Double(units[i * dimension + out + col]) }
            }
        }
        return t
    }

    /// Units of `k` clusters: cluster c's members are ±m·d_c (one planted rank-one d_c with a clear lead) plus
    /// `noise`-sized Gaussian units; magnitudes vary, signs are random (both halves flip).
    static func plantedUnits(count: Int, out: Int, in inFeatures: Int, k: Int, noise: Double,
                             seed: UInt64) -> (units: [Float], assignment: [Int]) {
        var random = DeterministicRandom(seed: seed)
        let dimension = out + inFeatures
        let planted = TestData.gaussian(k * dimension, seed: seed &+ 77)
        var units = [Float](repeating: 0, count: count * dimension)
        var assignment = [Int](repeating: 0, count: count)
        for i in 0..<count {
            let c = i % k
            assignment[i] = c
            let sign: Float = random.nextIndex(below: 2) == 0 ? -1 : 1
            let magnitude = Float(0.5 + random.nextUnitDouble())
            for j in 0..<dimension {
                units[i * dimension + j] = sign * magnitude * planted[c * dimension + j]
                    + Float(noise * random.nextGaussian())
            }
        }
        return (units, assignment)
    }

    @Test(arguments: [ClusterPrincipalDirections.Side.left, .right])
    func productsMatchDenseClusterSums(side: ClusterPrincipalDirections.Side) throws {
        let (count, out, inFeatures, k) = (41, 9, 13, 4)
        let units = TestData.gaussian(count * (out + inFeatures), seed: 5)
        var random = DeterministicRandom(seed: 6)
        let assignment = (0..<count).map { _ in random.nextIndex(below: k) }
        let width = side == .left ? inFeatures : out
        let directions = TestData.gaussian(k * width, seed: 7)
        let product = ClusterPrincipalDirections.product(units: units, count: count, outFeatures: out,
                                                         inFeatures: inFeatures, assignment: assignment, k: k,
                                                         directions: directions, side: side, blockSize: 10)
        let resultWidth = side == .left ? out : inFeatures
        #expect(product.count == k * resultWidth)
        for c in 0..<k {
            let t = Self.clusterSum(units, assignment: assignment, cluster: c, out: out, in: inFeatures)
            let expected: [Double] = side == .left
                ? (0..<out).map { r in (0..<inFeatures).reduce(0) { $0 + t[r * inFeatures + $1] * Double(directions[c * inFeatures + $1]) } }
                : (0..<inFeatures).map { col in (0..<out).reduce(0) { $0 + t[$1 * inFeatures + col] * Double(directions[c * out + $1]) } }
            let got = (0..<resultWidth).map { Double(product[c * resultWidth + $0]) }
            #expect(TestData.relativeDifference(got, expected) < 1e-5, "cluster \(c)")
        }
    }

    /// The whole is the block-order reduction of `blockProduct` over the same blocks, bit for bit, and flipping
    /// both halves of any unit changes no bit (the product is sign-invariant).
    @Test func blocksReduceInOrderAndSignsDoNotMatter() throws {
        let (count, out, inFeatures, k, block) = (37, 6, 8, 3, 9)
        let dimension = out + inFeatures
        var units = TestData.gaussian(count * dimension, seed: 11)
        var random = DeterministicRandom(seed: 12)
        let assignment = (0..<count).map { _ in random.nextIndex(below: k) }
        let directions = TestData.gaussian(k * inFeatures, seed: 13)
        let whole = ClusterPrincipalDirections.product(units: units, count: count, outFeatures: out,
                                                       inFeatures: inFeatures, assignment: assignment, k: k,
                                                       directions: directions, side: .left, blockSize: block)
        var reduced = [Float](repeating: 0, count: k * out)
        units.withUnsafeBufferPointer { x in
            var start = 0
            while start < count {
                let rows = min(block, count - start)
                let part = ClusterPrincipalDirections.blockProduct(
                    units: x.baseAddress! + start * dimension, count: rows, outFeatures: out, inFeatures: inFeatures,
                    assignment: assignment[start..<(start + rows)], k: k, directions: directions, side: .left)
                ClusterPrincipalDirections.add(part, to: &reduced)
                start += rows
            }
        }
        #expect(whole == reduced)
        for i in stride(from: 0, to: count, by: 3) { for j in 0..<dimension { units[i * dimension + j] = -units[i * dimension + j] } }
        let flipped = ClusterPrincipalDirections.product(units: units, count: count, outFeatures: out,
                                                         inFeatures: inFeatures, assignment: assignment, k: k,
                                                         directions: directions, side: .left, blockSize: block)
        #expect(flipped == whole)
    }

    /// Power iterations reach each cluster's top singular triple: σ to 1e-4 relative, and the rank-one
    /// [√σ u ; √σ v] equals LAPACK's σ₁ u₁ v₁ᵀ of the dense T_c.
    @Test(arguments: [UInt64(1), 2, 3])
    func unitsAreTheTopSingularTripleOfEachCluster(seed: UInt64) throws {
        let (count, out, inFeatures, k) = (60, 12, 17, 3)
        let (units, assignment) = Self.plantedUnits(count: count, out: out, in: inFeatures, k: k, noise: 0.3, seed: seed)
        // Start from zero "centroids" except a generic A half, as a catch-all's near-zero mean would.
        let start = TestData.gaussian(k * (out + inFeatures), seed: seed &+ 5)
        let (rows, sigma) = ClusterPrincipalDirections.units(units: units, count: count, outFeatures: out,
                                                             inFeatures: inFeatures, assignment: assignment, k: k,
                                                             centroids: start, iterations: 60, blockSize: 16)
        let dimension = out + inFeatures
        for c in 0..<k {
            let t = Self.clusterSum(units, assignment: assignment, cluster: c, out: out, in: inFeatures)
            let svd = try LinearAlgebra.svd(t.map { Float($0) }, rows: out, cols: inFeatures)
            #expect(abs(sigma[c] - Double(svd.s[0])) <= 1e-4 * Double(svd.s[0]), "cluster \(c)")
            let p = min(out, inFeatures)
            let best = (0..<(out * inFeatures)).map { e in
                Double(svd.s[0]) * Double(svd.u[(e / inFeatures) * p]) * Double(svd.vt[e % inFeatures])
            }
            let got = (0..<(out * inFeatures)).map { e in
                Double(rows[c * dimension + e / inFeatures]) * Double(rows[c * dimension + out + e % inFeatures])
            }
            #expect(TestData.relativeDifference(got, best) < 1e-3, "cluster \(c)")
        }
    }

    /// An empty cluster (no members) gives a zero row and σ = 0, never NaN.
    @Test func emptyClusterGivesZero() {
        let (count, out, inFeatures) = (8, 3, 4)
        let units = TestData.gaussian(count * (out + inFeatures), seed: 2)
        let assignment = [Int](repeating: 0, count: count)
        let centroids = TestData.gaussian(2 * (out + inFeatures), seed: 3)
        let (rows, sigma) = ClusterPrincipalDirections.units(units: units, count: count, outFeatures: out,
                                                             inFeatures: inFeatures, assignment: assignment, k: 2,
                                                             centroids: centroids, iterations: 3)
        #expect(sigma[1] == 0)
        #expect(rows[(out + inFeatures)...].allSatisfy { $0 == 0 })
        #expect(sigma[0] > 0 && rows.allSatisfy { $0.isFinite })
    }
}
