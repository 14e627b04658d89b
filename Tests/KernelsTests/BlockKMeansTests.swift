import Testing
@testable import Kernels

/// The split k-means (k-means|| seeding + Lloyd over fixed blocks): block partials against the in-process kernel,
/// the whole clustering against dense references, checkpoint round trips and hostile partial bytes.
@Suite struct BlockKMeansTests {
    /// Cuts rows [count, dimension] into blocks of the given sizes; ids are consecutive from 1000.
    static func blocks(_ units: [Float], dimension: Int, sizes: [Int], outFeatures: Int) -> [UnitBlock] {
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return UnitBlock(vectors: Array(units[(start * dimension)..<((start + size) * dimension)]), count: size,
                             dimension: dimension, outFeatures: outFeatures,
                             ids: (start..<(start + size)).map { UInt64(1000 + $0) })
        }
    }

    static func run(_ blocks: [UnitBlock], k: Int, seed: UInt64, iterations: Int = 50, reweight: Bool = false,
                    checkpointEveryRound: Bool = false) throws -> (BlockKMeansOutcome, rounds: Int) {
        let dimension = blocks[0].dimension
        let configuration = BlockKMeansConfiguration(k: k, dimension: dimension, outFeatures: blocks[0].outFeatures,
                                                     seed: seed, iterations: iterations, tolerance: 1e-6,
                                                     blockCount: blocks.count, reweightRound: reweight)
        var driver = BlockKMeansDriver(configuration: configuration)
        while !driver.isDone {
            let partials = try blocks.indices.map { b in
                try BlockKMeans.compute(try #require(driver.request(block: b)), block: blocks[b], seed: seed)
            }
            try driver.advance(with: partials)
            if checkpointEveryRound {
                driver = try BlockKMeansDriver(decoding: driver.encoded(), configuration: configuration)
            }
        }
        return (try #require(driver.outcome), driver.round)
    }

    @Test("a Lloyd round's block partials, reduced in block order, are SignInvariantKMeans.lloydStep's bits",
          arguments: [[100, 100, 100], [64, 64, 64, 64, 44]])
    func lloydPartialsMatchTheInProcessStep(sizes: [Int]) throws {
        let (n, d, k) = (300, 20, 7)
        let units = TestData.gaussian(n * d, seed: 3)
        let centroids = TestData.gaussian(k * d, seed: 4)
        let norms = SignInvariantKMeans.rowNormsSquared(units, count: n, dimension: d)
        let step = SignInvariantKMeans.lloydStep(units: units, count: n, dimension: d, unitNormsSquared: norms,
                                                 centroids: centroids, k: k, blockSize: sizes[0])
        let request = BlockRoundRequest(kind: .lloyd, round: 9, centers: centroids, centerCount: k, farthest: 3)
        let partials = try Self.blocks(units, dimension: d, sizes: sizes, outFeatures: 8).map {
            try BlockKMeans.compute(request, block: $0, seed: 1)
        }
        var sums = partials[0].sums, counts = partials[0].counts, objective = partials[0].cost
        for partial in partials.dropFirst() {
            for i in sums.indices { sums[i] += partial.sums[i] }
            for c in 0..<k { counts[c] += partial.counts[c] }
            objective += partial.cost
        }
        #expect(sums.map(\.bitPattern) == step.sums.map(\.bitPattern))
        #expect(counts == step.counts)
        #expect(objective == step.objective)
        // Each block reports its farthest units, distance descending.
        for partial in partials {
            #expect(partial.units.count == 3)
            #expect(zip(partial.units, partial.units.dropFirst()).allSatisfy { $0.first >= $1.first })
        }
    }

    @Test("split k-means finds planted clusters; centroids are the dense aligned means of their members",
          arguments: [UInt64(1), 2, 3])
    func matchesDenseReferenceOnPlantedClusters(seed: UInt64) throws {
        let (k, perCluster, d) = (5, 40, 16)
        let planted = SignInvariantKMeansTests.planted(clusters: k, perCluster: perCluster, dimension: d, noise: 0.3, seed: seed)
        let blocks = Self.blocks(planted.units, dimension: d, sizes: [70, 70, 60], outFeatures: 6)
        let (outcome, rounds) = try Self.run(blocks, k: k, seed: seed)
        #expect(outcome.clusterCount == k)
        #expect(outcome.unitCount == k * perCluster)
        #expect(outcome.clusterSizes.sorted() == [Int](repeating: perCluster, count: k))
        #expect(rounds >= 1 + 1 + 1 + 1)
        // Dense reference: assign every unit to the nearest final centroid, then the aligned means in Double.
        let n = k * perCluster
        var sums = [Double](repeating: 0, count: k * d), members = [Int](repeating: 0, count: k), objective = 0.0
        var labelsOfCluster = [Set<Int>](repeating: [], count: k)
        for i in 0..<n {
            var best = 0, bestDistance = Double.infinity, bestDot = 0.0
            for c in 0..<k {
                var dot = 0.0, xx = 0.0, mm = 0.0
                for j in 0..<d {
                    let x = Double(planted.units[i * d + j]), m = Double(outcome.centroids[c * d + j])
                    dot += x * m; xx += x * x; mm += m * m
                }
                let distance = xx + mm - 2 * abs(dot)
                if distance < bestDistance { bestDistance = distance; best = c; bestDot = dot }
            }
            members[best] += 1
            objective += max(0, bestDistance)
            labelsOfCluster[best].insert(planted.labels[i])
            for j in 0..<d { sums[best * d + j] += (bestDot < 0 ? -1 : 1) * Double(planted.units[i * d + j]) }
        }
        #expect(members == outcome.clusterSizes)
        #expect(labelsOfCluster.allSatisfy { $0.count == 1 })
        for c in 0..<k {
            for j in 0..<d {
                #expect(abs(sums[c * d + j] / Double(members[c]) - Double(outcome.centroids[c * d + j])) < 1e-4)
            }
        }
        #expect(abs(objective - outcome.finalObjective) <= 1e-4 * objective)
        // Dual reweighting's statistic: Σ‖x‖ per cluster.
        for c in 0..<k {
            var norms = 0.0
            for i in 0..<n where labelsOfCluster[c].contains(planted.labels[i]) {
                norms += (0..<d).reduce(0.0) { $0 + Double(planted.units[i * d + $1]) * Double(planted.units[i * d + $1]) }.squareRoot()
            }
            #expect(abs(norms - outcome.normSums[c]) < 1e-6 * norms)
        }
    }

    @Test("the reweight round's h equals Σ_i (x_B·μ_B)(x_A·μ_A) computed densely")
    func reweightStatistics() throws {
        let (n, d, out, k) = (90, 12, 5, 4)
        let units = TestData.gaussian(n * d, seed: 11)
        let blocks = Self.blocks(units, dimension: d, sizes: [30, 30, 30], outFeatures: out)
        let (outcome, _) = try Self.run(blocks, k: k, seed: 2, reweight: true)
        let h = try #require(outcome.projections)
        for s in 0..<k {
            var expected = 0.0
            for i in 0..<n {
                var dotB = 0.0, dotA = 0.0
                for j in 0..<out { dotB += Double(units[i * d + j]) * Double(outcome.centroids[s * d + j]) }
                for j in out..<d { dotA += Double(units[i * d + j]) * Double(outcome.centroids[s * d + j]) }
                expected += dotB * dotA
            }
            #expect(abs(h[s] - expected) <= 1e-4 * max(1, abs(expected)))
        }
    }

    @Test("checkpointing the state after every round changes no bit of the result")
    func stateRoundTrip() throws {
        let (n, d) = (240, 14)
        let units = TestData.gaussian(n * d, seed: 21)
        let blocks = Self.blocks(units, dimension: d, sizes: [80, 80, 80], outFeatures: 4)
        let (straight, rounds) = try Self.run(blocks, k: 6, seed: 9, reweight: true)
        let (resumed, resumedRounds) = try Self.run(blocks, k: 6, seed: 9, reweight: true, checkpointEveryRound: true)
        #expect(rounds == resumedRounds)
        #expect(straight.centroids.map(\.bitPattern) == resumed.centroids.map(\.bitPattern))
        #expect(straight.clusterSizes == resumed.clusterSizes)
        #expect(straight.objectiveHistory == resumed.objectiveHistory)
        #expect(straight.projections == resumed.projections)
        // A state written for another plan is refused.
        let other = BlockKMeansConfiguration(k: 6, dimension: d, outFeatures: 4, seed: 9, iterations: 50, tolerance: 1e-6,
                                             blockCount: 4, reweightRound: true)
        #expect(throws: KernelShapeError.self) {
            _ = try BlockKMeansDriver(decoding: BlockKMeansDriver(configuration: other).encoded(),
                                      configuration: BlockKMeansConfiguration(k: 6, dimension: d, outFeatures: 4, seed: 9,
                                                                              iterations: 50, tolerance: 1e-6, blockCount: 3,
                                                                              reweightRound: true))
        }
    }

    @Test("the first center and the draws depend on (seed, round, unit id) only, not on the block plan")
    func counterSampler() throws {
        let (n, d) = (120, 8)
        let units = TestData.gaussian(n * d, seed: 5)
        func first(_ sizes: [Int]) throws -> [Float] {
            let blocks = Self.blocks(units, dimension: d, sizes: sizes, outFeatures: 3)
            var best: ReportedUnit?
            for block in blocks {
                let partial = try BlockKMeans.compute(BlockRoundRequest(kind: .firstCenter, round: 0), block: block, seed: 77)
                for unit in partial.units where best == nil || unit.first.bitPattern < (best?.first.bitPattern ?? 0) { best = unit }
            }
            return try #require(best).vector
        }
        #expect(try first([120]) == first([40, 40, 40]))
        #expect(try first([40, 40, 40]) == first([7, 100, 13]))
        #expect(BlockKMeans.uniform(seed: 1, round: 2, id: 3) == BlockKMeans.uniform(seed: 1, round: 2, id: 3))
        #expect(BlockKMeans.uniform(seed: 1, round: 2, id: 3) != BlockKMeans.uniform(seed: 1, round: 3, id: 3))
        #expect(BlockKMeans.uniform(seed: 1, round: 2, id: 3) != BlockKMeans.uniform(seed: 2, round: 2, id: 3))
    }

    @Test("partial bytes round-trip; truncated, extended or inconsistent partials are rejected")
    func malformedPartials() throws {
        let (n, d, k) = (50, 6, 3)
        let units = TestData.gaussian(n * d, seed: 8)
        let block = Self.blocks(units, dimension: d, sizes: [50], outFeatures: 2)[0]
        let centroids = Array(units[0..<(k * d)])
        let partial = try BlockKMeans.compute(BlockRoundRequest(kind: .lloyd, round: 3, centers: centroids, centerCount: k,
                                                                farthest: 2), block: block, seed: 1)
        let bytes = partial.encoded()
        #expect(try BlockPartial.decode(bytes) == partial)
        for length in stride(from: 0, to: bytes.count, by: 7) {
            #expect(throws: KernelShapeError.self) { _ = try BlockPartial.decode(Array(bytes[0..<length])) }
        }
        #expect(throws: KernelShapeError.self) { _ = try BlockPartial.decode(bytes + [0]) }
        var random = DeterministicRandom(seed: 4)
        for _ in 0..<50 {
            let garbage = (0..<random.nextIndex(below: 400)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            _ = try? BlockPartial.decode(garbage)  // must not trap
        }
        // A well-formed partial that does not fit the round is refused by the driver.
        let configuration = BlockKMeansConfiguration(k: k, dimension: d, outFeatures: 2, seed: 1, iterations: 5,
                                                     tolerance: 0, blockCount: 1, reweightRound: false)
        let driver = BlockKMeansDriver(configuration: configuration)
        #expect(throws: KernelShapeError.self) { try driver.validate(partial) }  // round 0 wants a first center
        var wrong = BlockPartial(kind: .firstCenter, unitCount: 5)
        #expect(throws: KernelShapeError.self) { try driver.validate(wrong) }  // non-empty block, no unit
        wrong.units = [ReportedUnit(id: 1, first: 0, second: 0, vector: [1, 2])]
        #expect(throws: KernelShapeError.self) { try driver.validate(wrong) }  // wrong dimension
        var shortDriver = driver
        #expect(throws: KernelShapeError.self) { try shortDriver.advance(with: []) }
    }
}
