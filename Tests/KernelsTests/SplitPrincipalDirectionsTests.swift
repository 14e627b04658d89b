import Testing
@testable import Kernels

/// lego's `direction: principal` on split modules (`PrincipalDirectionRounds`, `BlockKMeans.principal`): the rounds
/// against the unsplit kernel `ClusterPrincipalDirections.units` on the same blocks, assignment and centroids, the
/// fallback start of a cluster whose mean has a zero A half, and hostile partials and requests.
@Suite struct SplitPrincipalDirectionsTests {
    static func planted(seed: UInt64) -> [Float] {
        SignInvariantKMeansTests.planted(clusters: 9, perCluster: 30, dimension: 18, noise: 0.8, seed: seed).units
    }

    /// Runs a split k-means with the principal-direction rounds to the end, one track after another.
    static func run(_ blocks: [UnitBlock], k: Int, seed: UInt64, restarts: Int, reweight: Bool,
                    iterations: Int) throws -> SplitKMeans {
        let configuration = SplitKMeansTests.configuration(blocks, k: k, seed: seed, reweight: reweight)
        var kmeans = SplitKMeans(configuration: configuration, restarts: restarts, principalIterations: iterations)
        while let track = kmeans.activeTracks.first {
            try kmeans.advance(track: track, with: try SplitKMeansTests.partials(kmeans, track: track, blocks: blocks))
        }
        return kmeans
    }

    /// The unsplit kernel on the split outcome's clustering, with blocks of `blockSize` units and lego's stop.
    static func unsplitPrincipal(_ blocks: [UnitBlock], outcome: BlockKMeansOutcome, iterations: Int, blockSize: Int,
                                 tolerance: Double = ClusterPrincipalDirections.defaultTolerance)
        -> ClusterPrincipalDirections.Principal {
        let units = blocks.flatMap(\.vectors), count = blocks.reduce(0) { $0 + $1.count }
        let out = blocks[0].outFeatures, inFeatures = blocks[0].dimension - out
        return ClusterPrincipalDirections.principal(
            units: units, count: count, outFeatures: out, inFeatures: inFeatures,
            assignment: outcome.assignment.flatMap { $0.map(Int.init) }, k: outcome.clusterCount,
            centroids: outcome.centroids, iterations: iterations, tolerance: tolerance, blockSize: blockSize)
    }

    static func unsplitDirections(_ blocks: [UnitBlock], outcome: BlockKMeansOutcome, iterations: Int,
                                  blockSize: Int) -> [Float] {
        unsplitPrincipal(blocks, outcome: outcome, iterations: iterations, blockSize: blockSize).units
    }

    /// Drives `rounds` to the end over `blocks` (assignment per block). After every round the state is restored
    /// from the halves a coordinator would hold (the latest of each) and must equal the live one.
    static func drive(_ rounds: PrincipalDirectionRounds, blocks: [UnitBlock], assignment: [[UInt32]],
                      requests: inout [BlockRoundRequest]) throws -> PrincipalDirectionRounds {
        var state = rounds
        var left: [UInt8]?, right: [UInt8]?
        while !state.isDone {
            let round = try blocks.indices.map { b in try #require(state.request(round: 0, assignment: assignment[b])) }
            requests.append(round[0])
            let kind = try #require(state.nextKind)
            try state.advance(with: try blocks.indices.map { b in try BlockKMeans.compute(round[b], block: blocks[b], seed: 1) },
                              blockUnits: blocks.map(\.count))
            if kind == .principalLeft { left = state.encodedLeft() } else { right = state.encodedRight() }
            #expect(try rounds.decoding(left: left, right: right) == state)
            #expect(try rounds.decoding(state.encoded()) == state)
        }
        return state
    }

    @Test("the split rounds give ClusterPrincipalDirections.units' bits on the same blocks, assignment and centroids",
          arguments: [([90, 90, 90], true), ([64, 64, 64, 64, 14], false)])
    func equalToTheUnsplitKernel(sizes: [Int], reweight: Bool) throws {
        let blocks = BlockKMeansTests.blocks(Self.planted(seed: 21), dimension: 18, sizes: sizes, outFeatures: 7)
        let kmeans = try Self.run(blocks, k: 6, seed: 8, restarts: 2, reweight: reweight, iterations: 4)
        let outcome = try #require(kmeans.outcome)
        let rounds = try #require(kmeans.principal)
        let principal = Self.unsplitPrincipal(blocks, outcome: outcome, iterations: 4, blockSize: sizes[0])
        let ran = try #require(principal.iterations.max())
        #expect(!rounds.needsStart && rounds.step == 2 * ran && outcome.powerIterations == ran)
        // The kept run's final assignment: one cluster per unit, the cluster sizes of the statistics.
        #expect(outcome.assignment.map(\.count) == sizes)
        var sizesFromAssignment = [Int](repeating: 0, count: outcome.clusterCount)
        for cluster in outcome.assignment.joined() { sizesFromAssignment[Int(cluster)] += 1 }
        #expect(sizesFromAssignment == outcome.clusterSizes)
        let directions = try #require(outcome.directions)
        let reference = Self.unsplitDirections(blocks, outcome: outcome, iterations: 4, blockSize: sizes[0])
        #expect(directions.map(\.bitPattern) == reference.map(\.bitPattern))
        #expect(directions != outcome.centroids)
        // The statistics round ran against the principal units: h equals the unsplit h of those units (the split
        // reduction adds per-block sums, the unsplit one runs on: equal to rounding).
        if reweight {
            let out = blocks[0].outFeatures
            var statistics = ClusterStatistics(k: outcome.clusterCount, outFeatures: out,
                                               inFeatures: blocks[0].dimension - out)
            statistics.addProjections(units: blocks.flatMap(\.vectors), count: sizes.reduce(0, +), centroids: directions,
                                      blockSize: sizes[0])
            let h = try #require(outcome.projections), expected = try #require(statistics.projections)
            for (x, y) in zip(h, expected) { #expect(abs(x - y) <= 1e-9 * max(1, abs(y))) }
        } else {
            #expect(outcome.projections == nil)
        }
    }

    @Test("a cluster whose mean has a zero A half starts from its first member with a non-zero one, as unsplit")
    func zeroStartingDirection() throws {
        // Cluster one: B along e1, A halves 0, +e2, −e2 (aligned mean: A half exactly 0); cluster two: B along e3,
        // A along e1, with small offsets. The zero-A member comes first, in block 0; the others in block 1.
        let (out, inFeatures) = (4, 3)
        let rows: [[Float]] = [
            [3, 0, 0, 0, 0, 0, 0], [0, 0, 2, 0.1, 1, 0.1, 0], [0, 0.1, 2, 0, 1, 0, 0.1], [0, 0, 2.1, 0, 1.1, 0, 0],
            [3, 0.1, 0, 0, 0, 1, 0], [3, -0.1, 0, 0, 0, -1, 0], [0, 0, 1.9, 0, 0.9, 0, 0], [0.1, 0, 2, 0, 1, 0.05, 0],
        ]
        let blocks = BlockKMeansTests.blocks(rows.flatMap { $0 }, dimension: out + inFeatures, sizes: [4, 4],
                                            outFeatures: out)
        let kmeans = try Self.run(blocks, k: 2, seed: 3, restarts: 1, reweight: true, iterations: 3)
        let outcome = try #require(kmeans.outcome)
        try #require(outcome.assignment == [[0, 1, 1, 1], [0, 0, 1, 1]] || outcome.assignment == [[1, 0, 0, 0], [1, 1, 0, 0]],
                     "clustering \(outcome.assignment)")
        let rounds = try #require(kmeans.principal)
        let ran = try #require(Self.unsplitPrincipal(blocks, outcome: outcome, iterations: 3, blockSize: 4).iterations.max())
        #expect(rounds.needsStart && rounds.step == 1 + 2 * ran && outcome.powerIterations == ran)
        let directions = try #require(outcome.directions)
        #expect(directions.map(\.bitPattern)
                == Self.unsplitDirections(blocks, outcome: outcome, iterations: 3, blockSize: 4).map(\.bitPattern))
        // The zero-A cluster still contributes its rank-one (B ≈ e2 direction, A = ±e2).
        let zeroCluster = Int(outcome.assignment[0][0])
        let row = Array(directions[(zeroCluster * 7)..<(zeroCluster * 7 + 7)])
        #expect(row.contains { $0 != 0 })
    }

    @Test("the per-cluster stop: one block gives ClusterPrincipalDirections.principal's bits and iterations; stopped clusters leave the rounds",
          arguments: [(60, ClusterPrincipalDirections.defaultTolerance), (6, 0.0)])
    func perClusterStop(cap: Int, tolerance: Double) throws {
        // Planted clusters of different spread: tight ones converge in a few iterations, loose ones take longer.
        var units: [Float] = []
        for (c, noise) in [0.02, 4.0, 0.3, 8.0].enumerated() {
            units += SignInvariantKMeansTests.planted(clusters: 1, perCluster: 40, dimension: 18, noise: noise,
                                                      seed: 40 + UInt64(c)).units
        }
        let blocks = BlockKMeansTests.blocks(units, dimension: 18, sizes: [160], outFeatures: 7)
        let kmeans = try Self.run(blocks, k: 4, seed: 5, restarts: 1, reweight: false, iterations: 1)
        let outcome = try #require(kmeans.outcome)
        let fresh = PrincipalDirectionRounds(centroids: outcome.centroids, clusterCount: 4, outFeatures: 7,
                                             inFeatures: 11, iterations: cap, tolerance: tolerance)
        var requests: [BlockRoundRequest] = []
        let done = try Self.drive(fresh, blocks: blocks, assignment: outcome.assignment, requests: &requests)
        let reference = Self.unsplitPrincipal(blocks, outcome: outcome, iterations: cap, blockSize: 160,
                                              tolerance: tolerance)
        #expect(try #require(done.units).map(\.bitPattern) == reference.units.map(\.bitPattern))
        #expect(done.iterationsRun == reference.iterations.max())
        if tolerance == 0 {
            // No stop: every cluster runs the cap, and the bits are `units`' (every iteration for every cluster).
            #expect(reference.iterations == [Int](repeating: cap, count: 4) && done.step == 2 * cap)
            #expect(requests.allSatisfy { $0.centerCount == 4 })
            let all = ClusterPrincipalDirections.units(
                units: units, count: 160, outFeatures: 7, inFeatures: 11, assignment: outcome.assignment[0].map(Int.init),
                k: 4, centroids: outcome.centroids, iterations: cap, blockSize: 160).units
            #expect(all.map(\.bitPattern) == reference.units.map(\.bitPattern))
            return
        }
        // The clusters stopped at different iterations, all before the cap: fewer rounds than 2 × cap.
        try #require(Set(reference.iterations).count > 1, "iterations \(reference.iterations)")
        #expect(reference.iterations.max()! < cap && done.step == 2 * reference.iterations.max()!)
        // A round carries the clusters still running: its directions, and the others' members marked skipped.
        for (n, request) in requests.enumerated() {
            let iteration = n / 2 + 1
            let live = reference.iterations.indices.filter { reference.iterations[$0] >= iteration }
            #expect(request.centerCount == live.count)
            #expect(request.centers.count == live.count * (request.kind == .principalLeft ? 11 : 7))
            let skipped = outcome.assignment[0].filter { !live.contains(Int($0)) }.count
            #expect(request.assignment?.filter { $0 == PrincipalDirectionRounds.skippedCluster }.count == skipped)
        }
        // Halves of rounds that do not follow each other are refused.
        var early = fresh
        var rounds: [BlockRoundRequest] = []
        for _ in 0..<3 {
            let request = try #require(early.request(round: 0, assignment: outcome.assignment[0]))
            rounds.append(request)
            try early.advance(with: [try BlockKMeans.compute(request, block: blocks[0], seed: 1)])
        }
        #expect(throws: KernelShapeError.self) { _ = try fresh.decoding(left: done.encodedLeft(), right: early.encodedRight()) }
        #expect(throws: KernelShapeError.self) { _ = try fresh.decoding(left: early.encodedLeft(), right: nil) }
        // … and so are halves written with another tolerance or cap.
        let other = PrincipalDirectionRounds(centroids: outcome.centroids, clusterCount: 4, outFeatures: 7,
                                             inFeatures: 11, iterations: cap, tolerance: 1e-3)
        #expect(throws: KernelShapeError.self) { _ = try other.decoding(left: done.encodedLeft(), right: done.encodedRight()) }
    }

    @Test("hostile principal partials and requests are refused, never trapped on")
    func hostilePartialsAndRequests() throws {
        let blocks = BlockKMeansTests.blocks(Self.planted(seed: 4), dimension: 18, sizes: [100, 90, 80], outFeatures: 7)
        let configuration = SplitKMeansTests.configuration(blocks, k: 5, seed: 2, reweight: true)
        var kmeans = SplitKMeans(configuration: configuration, restarts: 1, principalIterations: 2)
        while kmeans.principal == nil, let track = kmeans.activeTracks.first {
            try kmeans.advance(track: track, with: try SplitKMeansTests.partials(kmeans, track: track, blocks: blocks))
        }
        let track = kmeans.finalTrack
        let request = try #require(kmeans.request(track: track, block: 0))
        #expect(request.kind == .principalLeft && request.assignment?.count == 100)
        let good = try BlockKMeans.compute(request, block: blocks[0], seed: 2)
        #expect(good.sums.count == 5 * 7)
        #expect(try BlockPartial.decode(good.encoded()) == good)
        var wrongKind = good; wrongKind.kind = .principalRight
        var short = good; short.sums.removeLast()
        var notFinite = good; notFinite.sums[3] = .nan
        var start = good; start.kind = .principalStart
        start.units = [ReportedUnit(id: 1000, first: 0, second: 0, cluster: 1, index: 0, vector: Array(blocks[0].vectors[0..<18]))]
        for bad in [wrongKind, short, notFinite, start] {
            #expect(throws: KernelShapeError.self) { try kmeans.validate(bad, track: track) }
        }
        // A round whose partial has another block's unit count is refused at the reduction.
        var partials = try SplitKMeansTests.partials(kmeans, track: track, blocks: blocks)
        partials.swapAt(0, 2)
        var copy = kmeans
        #expect(throws: KernelShapeError.self) { try copy.advance(track: track, with: partials) }
        // Requests: an assignment of the wrong length, to a cluster out of range, or none at all; the skipped
        // marker only in power rounds.
        var wrong = request
        wrong.assignment?.removeLast()
        #expect(throws: KernelShapeError.self) { _ = try BlockKMeans.compute(wrong, block: blocks[0], seed: 2) }
        wrong = request
        wrong.assignment?[7] = 5
        #expect(throws: KernelShapeError.self) { _ = try BlockKMeans.compute(wrong, block: blocks[0], seed: 2) }
        var skipping = request
        skipping.assignment?[7] = PrincipalDirectionRounds.skippedCluster
        let skippedPartial = try BlockKMeans.compute(skipping, block: blocks[0], seed: 2)
        #expect(skippedPartial.sums != good.sums && skippedPartial.sums.count == good.sums.count)
        skipping.kind = .principalStart
        #expect(throws: KernelShapeError.self) { _ = try BlockKMeans.compute(skipping, block: blocks[0], seed: 2) }
        wrong = request
        wrong.assignment = nil
        #expect(throws: KernelShapeError.self) { _ = try BlockKMeans.compute(wrong, block: blocks[0], seed: 2) }
        // Truncated partial bytes.
        let encoded = good.encoded()
        for cut in stride(from: 0, to: encoded.count, by: max(1, encoded.count / 30)) {
            #expect(throws: KernelShapeError.self) { _ = try BlockPartial.decode(Array(encoded[0..<cut])) }
        }
        // The state of the rounds round-trips, and bytes for other rounds are refused.
        let state = try #require(kmeans.principal)
        #expect(try state.decoding(state.encoded()) == state)
        let other = PrincipalDirectionRounds(centroids: [Float](repeating: 1, count: 5 * 18), clusterCount: 5,
                                             outFeatures: 7, inFeatures: 11, iterations: 3)
        #expect(throws: KernelShapeError.self) { _ = try other.decoding(state.encoded()) }
    }

    @Test("Lloyd partials carry the block's assignment; a missing or inconsistent one is refused")
    func lloydPartialsCarryTheAssignment() throws {
        let blocks = BlockKMeansTests.blocks(Self.planted(seed: 6), dimension: 18, sizes: [100, 170], outFeatures: 7)
        let configuration = SplitKMeansTests.configuration(blocks, k: 5, seed: 1, reweight: false)
        var driver = BlockKMeansDriver(configuration: configuration)
        while driver.request()?.kind != .lloyd {
            try driver.advance(with: try blocks.indices.map { b in
                try BlockKMeans.compute(try #require(driver.request(block: b)), block: blocks[b], seed: 1)
            })
        }
        let request = try #require(driver.request(block: 0))
        let partial = try BlockKMeans.compute(request, block: blocks[0], seed: 1)
        #expect(partial.assignment?.count == 100)
        #expect(partial.units.allSatisfy { partial.assignment?[$0.index] == UInt32($0.cluster) && blocks[0].ids[$0.index] == $0.id })
        try driver.validate(partial)
        var missing = partial; missing.assignment = nil
        var moved = partial; moved.units[0].index = (moved.units[0].index + 1) % 100
        moved.assignment?[moved.units[0].index] = UInt32((moved.units[0].cluster + 1) % 5)
        var outside = partial; outside.assignment?[0] = 9
        for bad in [missing, moved, outside] {
            #expect(throws: KernelShapeError.self) { try driver.validate(bad) }
        }
    }
}
