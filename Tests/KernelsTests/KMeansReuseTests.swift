import Testing
@testable import Kernels

/// What lego's k-means now computes once and hands on, checked bit for bit against computing it again: the unit
/// norms (`UnitNorms`, also from the unit extraction), greedy seeding's products for the first Lloyd step, and the
/// final Lloyd sums that `ClusterStatistics` takes instead of another pass.
@Suite struct KMeansReuseTests {
    static func bits(_ x: [Double]) -> [UInt64] { x.map(\.bitPattern) }
    static func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

    @Test("UnitNorms: nrm2's norms and their squares, and Double Σx², as the passes they replace",
          arguments: [(n: 13, d: 37), (n: 5, d: 16), (n: 9, d: 300), (n: 0, d: 8), (n: 3, d: 1)])
    func unitNormsMatchThePasses(shape: (n: Int, d: Int)) {
        let units = TestData.gaussian(shape.n * shape.d, seed: UInt64(shape.d), scale: 3)
        let norms = UnitNorms.of(units, count: shape.n, dimension: shape.d)
        #expect(norms.count == shape.n)
        #expect(Self.bits(norms.squares)
                == Self.bits(SignInvariantKMeans.rowNormsSquared(units, count: shape.n, dimension: shape.d)))
        #expect(Self.bits(norms.exactSquares)
                == Self.bits(LloydBounds.exactNormsSquared(units, count: shape.n, dimension: shape.d)))
        for i in 0..<shape.n {
            let dense = (0..<shape.d).reduce(0.0) { $0 + Double(units[i * shape.d + $1]) * Double(units[i * shape.d + $1]) }
            #expect(abs(norms.norms[i] * norms.norms[i] - dense) <= 1e-5 * dense)
            #expect(abs(norms.exactSquares[i] - dense) <= 1e-12 * dense)
        }
        // Appended in pieces: the same values.
        var pieces = UnitNorms()
        units.withUnsafeBufferPointer { x in
            guard let x = x.baseAddress else { return }
            let half = shape.n / 2
            pieces.append(rows: x, count: half, dimension: shape.d)
            pieces.append(rows: x + half * shape.d, count: shape.n - half, dimension: shape.d)
        }
        #expect(pieces == norms)
    }

    @Test("the extraction's norms are those of its rows (both bases), and are dropped when the rows change",
          arguments: [UnitBasis.svd, .raw])
    func extractionNorms(basis: UnitBasis) throws {
        let terms = TestData.randomTerms(count: 4, rank: 3, out: 11, in: 7, seed: 5)
        var units = try RankOneUnits.extract(terms: terms, outFeatures: 11, inFeatures: 7, gauge: .balanced, basis: basis)
        let norms = try #require(units.norms)
        #expect(norms == UnitNorms.of(units.vectors, count: units.count, dimension: units.dimension))
        #expect(norms.count == units.count)
        units.vectors[0] *= 2
        #expect(units.norms == nil)
    }

    @Test("greedy seeding's products are RowDots' products of the units with the seeds", arguments: [UInt64(1), 2, 3])
    func seedingProducts(seed: UInt64) {
        let (n, d, k) = (150, 41, 7)
        let units = TestData.gaussian(n * d, seed: seed)
        let norms = SignInvariantKMeans.rowNormsSquared(units, count: n, dimension: d)
        let seeded = SignInvariantKMeans.seedPlusPlusWithProducts(units: units, count: n, dimension: d, k: k,
                                                                  unitNormsSquared: norms, candidates: 4, seed: seed)
        let plain = SignInvariantKMeans.seedPlusPlus(units: units, count: n, dimension: d, k: k, unitNormsSquared: norms,
                                                     candidates: 4, seed: seed)
        #expect(Self.bits(seeded.centroids) == Self.bits(plain))
        var expected = [Float](repeating: 0, count: n * k)
        units.withUnsafeBufferPointer { x in
            seeded.centroids.withUnsafeBufferPointer { m in
                expected.withUnsafeMutableBufferPointer { p in
                    RowDots.compute(x.baseAddress!, rows: n, dimension: d, centroids: m.baseAddress!, count: k,
                                    into: p.baseAddress!)
                }
            }
        }
        #expect(Self.bits(seeded.products) == Self.bits(expected))
    }

    @Test("a bounded step given the products equals the full step", arguments: [4096, 7])
    func stepWithKnownProducts(blockSize: Int) {
        let (k, d) = (5, 29)
        let data = SignInvariantKMeansTests.planted(clusters: k, perCluster: 20, dimension: d, noise: 0.8, seed: 4)
        let n = data.labels.count
        let norms = SignInvariantKMeans.rowNormsSquared(data.units, count: n, dimension: d)
        let seeded = SignInvariantKMeans.seedPlusPlusWithProducts(units: data.units, count: n, dimension: d, k: k,
                                                                  unitNormsSquared: norms, candidates: 3, seed: 6)
        var bounds = LloydBounds(units: data.units, count: n, dimension: d, unitNormsSquared: norms)
        let known = SignInvariantKMeans.boundedStep(units: data.units, count: n, dimension: d, unitNormsSquared: norms,
                                                    centroids: seeded.centroids, k: k, blockSize: blockSize,
                                                    bounds: &bounds, products: seeded.products)
        let full = SignInvariantKMeans.lloydStep(units: data.units, count: n, dimension: d, unitNormsSquared: norms,
                                                 centroids: seeded.centroids, k: k, blockSize: blockSize)
        #expect(known.assignment == full.assignment)
        #expect(Self.bits(known.signs) == Self.bits(full.signs))
        #expect(Self.bits(known.distances) == Self.bits(full.distances))
        #expect(Self.bits(known.sums) == Self.bits(full.sums))
        #expect(known.objective.bitPattern == full.objective.bitPattern)
    }

    /// Planted clusters, Gaussian noise, and duplicated sign-flipped units (exact ties; empty clusters to refill).
    static func pools() -> [(units: [Float], n: Int, d: Int, k: Int)] {
        let planted = SignInvariantKMeansTests.planted(clusters: 6, perCluster: 25, dimension: 33, noise: 1.0, seed: 2)
        let base = TestData.gaussian(4 * 20, seed: 8)
        var ties: [Float] = []
        for copy in 0..<6 { ties += base.map { copy % 2 == 0 ? $0 : -$0 } }
        return [(planted.units, planted.labels.count, 33, 6), (TestData.gaussian(120 * 17, seed: 3), 120, 17, 9),
                (ties, 24, 20, 7)]
    }

    @Test("the clustering's aligned sums are ClusterStatistics' sums of its assignment, bit for bit",
          arguments: [4096, 7])
    func alignedSumsAreTheStatistics(blockSize: Int) throws {
        var reused = 0
        for (index, pool) in Self.pools().enumerated() {
            let options = KMeansOptions(iterations: 20, tolerance: 0, blockSize: blockSize, restarts: 2)
            let clustering = try SignInvariantKMeans.cluster(units: pool.units, count: pool.n, dimension: pool.d,
                                                             k: pool.k, options: options, seed: UInt64(index + 1))
            let computed = try ClusterStatistics.of(units: pool.units, count: pool.n, outFeatures: pool.d / 2,
                                                    inFeatures: pool.d - pool.d / 2, assignment: clustering.assignment,
                                                    signs: clustering.signs, k: pool.k, blockSize: blockSize)
            guard let sums = clustering.alignedSums else { continue }
            reused += 1
            #expect(Self.bits(sums) == Self.bits(computed.alignedSums), "pool \(index)")
            let given = try ClusterStatistics.of(units: pool.units, count: pool.n, outFeatures: pool.d / 2,
                                                 inFeatures: pool.d - pool.d / 2, assignment: clustering.assignment,
                                                 signs: clustering.signs, k: pool.k, blockSize: blockSize,
                                                 norms: UnitNorms.of(pool.units, count: pool.n, dimension: pool.d).norms,
                                                 alignedSums: sums)
            #expect(given == computed, "pool \(index)")
            #expect(Self.bits(given.normSums) == Self.bits(computed.normSums), "pool \(index)")
            #expect(Self.bits(given.normSquaredSums) == Self.bits(computed.normSquaredSums), "pool \(index)")
        }
        #expect(reused >= 2)
    }

    @Test("given norms change nothing in the clustering; wrong sizes are refused")
    func givenNorms() throws {
        let pool = Self.pools()[0]
        let options = KMeansOptions(iterations: 10, tolerance: 0, restarts: 1)
        let plain = try SignInvariantKMeans.cluster(units: pool.units, count: pool.n, dimension: pool.d, k: pool.k,
                                                    options: options, seed: 9)
        let norms = UnitNorms.of(pool.units, count: pool.n, dimension: pool.d)
        let given = try SignInvariantKMeans.cluster(units: pool.units, count: pool.n, dimension: pool.d, k: pool.k,
                                                    options: options, seed: 9, norms: norms)
        #expect(Self.bits(given.centroids) == Self.bits(plain.centroids))
        #expect(given.assignment == plain.assignment)
        #expect(given.objectiveHistory.map(\.bitPattern) == plain.objectiveHistory.map(\.bitPattern))
        let short = UnitNorms.of(pool.units, count: pool.n - 1, dimension: pool.d)
        #expect(throws: KernelShapeError.self) {
            _ = try SignInvariantKMeans.cluster(units: pool.units, count: pool.n, dimension: pool.d, k: pool.k,
                                                options: options, seed: 9, norms: short)
        }
        #expect(throws: KernelShapeError.self) {
            _ = try ClusterStatistics.of(units: pool.units, count: pool.n, outFeatures: 10, inFeatures: pool.d - 10,
                                         assignment: plain.assignment, signs: plain.signs, k: pool.k,
                                         norms: short.norms)
        }
    }
}
