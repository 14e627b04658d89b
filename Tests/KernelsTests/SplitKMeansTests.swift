import Testing
@testable import Kernels

/// `SplitKMeans` (restarts as tracks of rounds, then the final statistics round) and the seeding rounds' carried
/// nearest-candidate state: against separate runs, against a from-scratch distance computation, across any order
/// of tracks and checkpoints after every round, and on hostile states.
@Suite struct SplitKMeansTests {
    static func configuration(_ blocks: [UnitBlock], k: Int, seed: UInt64, reweight: Bool) -> BlockKMeansConfiguration {
        BlockKMeansConfiguration(k: k, dimension: blocks[0].dimension, outFeatures: blocks[0].outFeatures, seed: seed,
                                 iterations: 30, tolerance: 1e-6, blockCount: blocks.count, reweightRound: reweight)
    }

    static func partials(_ kmeans: SplitKMeans, track: Int, blocks: [UnitBlock]) throws -> [BlockPartial] {
        try blocks.indices.map { b in
            try BlockKMeans.compute(try #require(kmeans.request(track: track, block: b)), block: blocks[b],
                                    seed: kmeans.seed(track: track))
        }
    }

    /// Runs every track to the end. `order` picks which active track advances next; `checkpoint` round-trips the
    /// state through its bytes after every round.
    static func run(_ blocks: [UnitBlock], k: Int, seed: UInt64, restarts: Int, reweight: Bool = true,
                    checkpoint: Bool = false, principalIterations: Int = 0,
                    order: ([Int], Int) -> Int = { tracks, _ in tracks[0] }) throws -> SplitKMeans {
        let configuration = configuration(blocks, k: k, seed: seed, reweight: reweight)
        var kmeans = SplitKMeans(configuration: configuration, restarts: restarts, principalIterations: principalIterations)
        var step = 0
        while !kmeans.isDone {
            let tracks = kmeans.activeTracks
            try #require(!tracks.isEmpty)
            let track = order(tracks, step)
            try kmeans.advance(track: track, with: try partials(kmeans, track: track, blocks: blocks))
            if checkpoint {
                kmeans = try SplitKMeans(decoding: kmeans.encoded(), configuration: configuration, restarts: restarts,
                                         principalIterations: principalIterations)
            }
            step += 1
        }
        return kmeans
    }

    static func blocks(seed: UInt64 = 31) -> [UnitBlock] {
        let planted = SignInvariantKMeansTests.planted(clusters: 9, perCluster: 30, dimension: 18, noise: 0.8, seed: seed)
        return BlockKMeansTests.blocks(planted.units, dimension: 18, sizes: [100, 90, 80], outFeatures: 7)
    }

    @Test("restarts: the kept run is the restart with the lowest objective (ties: lowest), each run bit-equal to a lone driver")
    func keptRunIsTheBestRestart() throws {
        let blocks = Self.blocks()
        let kmeans = try Self.run(blocks, k: 6, seed: 4, restarts: 4)
        let outcome = try #require(kmeans.outcome)
        var objectives: [Double] = []
        for r in 0..<4 {
            // Restart r alone: a plain driver seeded with the unsplit method's restart seed.
            var own = Self.configuration(blocks, k: 6, seed: SignInvariantKMeans.restartSeed(4, restart: r), reweight: false)
            own.reweightRound = false
            var driver = BlockKMeansDriver(configuration: own)
            while !driver.isDone {
                try driver.advance(with: try blocks.indices.map { b in
                    try BlockKMeans.compute(try #require(driver.request(block: b)), block: blocks[b], seed: own.seed)
                })
            }
            let alone = try #require(driver.outcome)
            #expect(alone.centroids.map(\.bitPattern) == kmeans.runs[r].outcome?.centroids.map(\.bitPattern))
            objectives.append(alone.finalObjective)
        }
        let best = objectives.indices.min { objectives[$0] < objectives[$1] || objectives[$0] == objectives[$1] && $0 < $1 }
        #expect(outcome.restart == best)
        #expect(outcome.finalObjective == objectives.min())
        #expect(Set(objectives).count > 1, "the restarts should differ on this pool: \(objectives)")
        // The statistics round ran against the kept centroids.
        #expect(outcome.projections?.count == outcome.clusterCount)
    }

    @Test("restarts: 1 is the single driver's run, bit for bit (restart 0 uses the module seed)")
    func oneRestartIsTheSingleRun() throws {
        let blocks = Self.blocks(seed: 5)
        let kmeans = try Self.run(blocks, k: 5, seed: 12, restarts: 1)
        let configuration = Self.configuration(blocks, k: 5, seed: 12, reweight: true)
        var driver = BlockKMeansDriver(configuration: configuration)
        while !driver.isDone {
            try driver.advance(with: try blocks.indices.map { b in
                try BlockKMeans.compute(try #require(driver.request(block: b)), block: blocks[b], seed: 12)
            })
        }
        let single = try #require(driver.outcome), split = try #require(kmeans.outcome)
        #expect(single.centroids.map(\.bitPattern) == split.centroids.map(\.bitPattern))
        #expect(single.objectiveHistory == split.objectiveHistory)
        #expect(single.projections == split.projections)
        #expect(single.clusterSizes == split.clusterSizes)
    }

    @Test("tracks in any interleaving, with a checkpoint after every round, give the same bits",
          arguments: [0, 1, 2])
    func anyTrackOrderSameBits(pattern: Int) throws {
        let blocks = Self.blocks(seed: 8)
        let straight = try #require(try Self.run(blocks, k: 6, seed: 3, restarts: 3).outcome)
        let order: ([Int], Int) -> Int = { tracks, step in
            switch pattern {
            case 0: tracks[step % tracks.count]          // round robin
            case 1: tracks[tracks.count - 1]             // last restart first
            default: tracks[(step * 7 + 3) % tracks.count]
            }
        }
        let other = try #require(try Self.run(blocks, k: 6, seed: 3, restarts: 3, checkpoint: true, order: order).outcome)
        #expect(other.centroids.map(\.bitPattern) == straight.centroids.map(\.bitPattern))
        #expect(other.restart == straight.restart)
        #expect(other.objectiveHistory == straight.objectiveHistory)
        #expect(other.projections == straight.projections)
        #expect(other.statistics == straight.statistics)
    }

    @Test("incremental seeding: the carried nearest candidate equals a from-scratch search over all candidates")
    func carriedNearestMatchesFullSearch() throws {
        let blocks = Self.blocks(seed: 17)
        let configuration = Self.configuration(blocks, k: 6, seed: 21, reweight: false)
        var driver = BlockKMeansDriver(configuration: configuration)
        var allCandidates: [Float] = []
        var checkedRounds = 0
        while !driver.isDone {
            let requests = try blocks.indices.map { try #require(driver.request(block: $0)) }
            if requests[0].kind == .oversample || requests[0].kind == .candidateWeights {
                // Every candidate so far: the ones before this round's (as the carried state saw them) plus the new.
                #expect(allCandidates.count == requests[0].centerOffset * configuration.dimension)
                allCandidates += requests[0].centers
            }
            let partials = try blocks.indices.map { try BlockKMeans.compute(requests[$0], block: blocks[$0], seed: driver.configuration.seed) }
            if requests[0].kind == .oversample {
                let total = allCandidates.count / configuration.dimension
                for (b, partial) in partials.enumerated() {
                    let carried = try #require(partial.nearest)
                    var index = 0
                    BlockKMeans.forEachNearest(blocks[b], centers: allCandidates, centerCount: total) { i, _, d, _ in
                        #expect(abs(carried.distances[i] - d) <= 1e-4 * max(1, d))
                        index += 1
                    }
                    #expect(index == blocks[b].count)
                }
                checkedRounds += 1
            }
            if requests[0].kind == .candidateWeights {
                // Counts over all candidates agree with the full search's nearest (up to exact ties).
                let total = allCandidates.count / configuration.dimension
                var counts = [Int](repeating: 0, count: total)
                for block in blocks {
                    BlockKMeans.forEachNearest(block, centers: allCandidates, centerCount: total) { _, c, _, _ in counts[c] += 1 }
                }
                var reduced = [Int](repeating: 0, count: total)
                for partial in partials { for c in 0..<total { reduced[c] += partial.counts[c] } }
                #expect(reduced == counts)
            }
            try driver.advance(with: partials)
        }
        #expect(checkedRounds == configuration.seedingRounds)
        // Only the new candidates travel: the requests' center counts sum to the candidates drawn.
        #expect(allCandidates.count > 0)
    }

    @Test("draw rounds: each block reports exactly the units u·φ < ℓ·D² keeps (from scratch), a subset of what it drew against its own cost")
    func drawsAreExactlyTheKeptUnits() throws {
        let blocks = Self.blocks(seed: 23)
        let configuration = Self.configuration(blocks, k: 6, seed: 9, reweight: false)
        var driver = BlockKMeansDriver(configuration: configuration)
        var drawRounds = 0, kept = 0, againstOwnCost = 0
        var blockCosts: [Double] = []
        while !driver.isDone {
            let requests = try blocks.indices.map { try #require(driver.request(block: $0)) }
            let partials = try blocks.indices.map { try BlockKMeans.compute(requests[$0], block: blocks[$0], seed: configuration.seed) }
            if requests[0].kind == .oversample {
                #expect(partials.allSatisfy { $0.units.isEmpty })  // draws wait for the module's cost
                blockCosts = partials.map(\.cost)
            }
            if requests[0].kind == .draw {
                drawRounds += 1
                let phi = blockCosts.reduce(0, +)
                #expect(requests[0].cost == phi && requests[0].oversampling == configuration.oversampling)
                for (b, block) in blocks.enumerated() {
                    let state = try #require(requests[b].nearest)
                    var expected: [UInt64] = [], superset = 0
                    for i in 0..<block.count where state.distances[i] > 0 {
                        let u = BlockKMeans.uniform(seed: configuration.seed, round: requests[b].round, id: block.ids[i])
                        if u * phi < configuration.oversampling * state.distances[i] { expected.append(block.ids[i]) }
                        if u * blockCosts[b] < configuration.oversampling * state.distances[i] { superset += 1 }
                    }
                    #expect(partials[b].units.map(\.id) == expected)
                    for unit in partials[b].units {
                        let row = try #require(block.ids.firstIndex(of: unit.id))
                        #expect(unit.vector == Array(block.vectors[(row * block.dimension)..<((row + 1) * block.dimension)]))
                    }
                    kept += expected.count
                    againstOwnCost += superset
                }
            }
            try driver.advance(with: partials)
        }
        #expect(drawRounds == configuration.seedingRounds)
        #expect(kept > 0 && kept < againstOwnCost)  // three blocks: drawing against their own costs sends more
    }

    @Test("a draw partial with a unit the rule does not keep, or a draw request without its state or cost, is refused")
    func hostileDraws() throws {
        let blocks = Self.blocks(seed: 5)
        let configuration = Self.configuration(blocks, k: 6, seed: 2, reweight: false)
        var driver = BlockKMeansDriver(configuration: configuration)
        while driver.request()?.kind != .draw {
            try driver.advance(with: try blocks.indices.map {
                try BlockKMeans.compute(try #require(driver.request(block: $0)), block: blocks[$0], seed: configuration.seed)
            })
        }
        let request = try #require(driver.request(block: 0))
        var partial = try BlockKMeans.compute(request, block: blocks[0], seed: configuration.seed)
        try driver.validate(partial)
        let keptIDs = Set(partial.units.map(\.id))
        let state = try #require(request.nearest)
        let outside = try #require(blocks[0].ids.indices.first { !keptIDs.contains(blocks[0].ids[$0]) && state.distances[$0] > 0 })
        let dim = blocks[0].dimension
        partial.units.append(ReportedUnit(id: blocks[0].ids[outside],
                                          first: BlockKMeans.uniform(seed: configuration.seed, round: request.round, id: blocks[0].ids[outside]),
                                          second: state.distances[outside],
                                          vector: Array(blocks[0].vectors[(outside * dim)..<((outside + 1) * dim)])))
        #expect(throws: KernelShapeError.self) { try driver.validate(partial) }
        var missing = request
        missing.nearest = nil
        #expect(throws: KernelShapeError.self) { _ = try BlockKMeans.compute(missing, block: blocks[0], seed: 1) }
        var free = request
        free.cost = 0
        #expect(throws: KernelShapeError.self) { _ = try BlockKMeans.compute(free, block: blocks[0], seed: 1) }
    }

    @Test("per-track checkpoints: only the track that moved is written; resuming from those files after any round gives the same bits",
          arguments: [0, 3])
    func perTrackCheckpoints(principalIterations: Int) throws {
        let blocks = Self.blocks(seed: 7)
        let configuration = Self.configuration(blocks, k: 5, seed: 3, reweight: true)
        let (out, dim) = (blocks[0].outFeatures, blocks[0].dimension)
        let quality = SplitQualityTrack(outFeatures: out, inFeatures: dim - out, blockCount: blocks.count, stacked: 270,
                                        restarts: 3, forcedExact: false, probes: 24, width: 6, rank: 5, maxEvaluations: 3)
        var straight = SplitKMeans(configuration: configuration, restarts: 3, quality: quality,
                                   principalIterations: principalIterations)
        var files: [Int: [UInt8]] = [:]
        var writes = 0, step = 0
        while !straight.isDone {
            let tracks = straight.activeTracks
            let track = tracks[step % tracks.count]
            let before = (0..<straight.trackCount).map { straight.encoded(track: $0) }
            try straight.advance(track: track, with: try Self.partials(straight, track: track, blocks: blocks))
            // Only the reduced track's state changed (the kept restart and the quality decision are derived).
            for other in 0..<straight.trackCount where other != track {
                #expect(straight.encoded(track: other) == before[other], "track \(other) changed with track \(track)")
            }
            files[track] = straight.encoded(track: track)
            writes += 1
            // A coordinator restarted now resumes from the files alone.
            let resumed = try SplitKMeans(decodingTracks: files, configuration: configuration, restarts: 3, quality: quality,
                                          principalIterations: principalIterations)
            #expect(resumed.encoded() == straight.encoded())
            #expect(resumed.activeTracks == straight.activeTracks && resumed.round == straight.round)
            step += 1
        }
        #expect(writes == straight.round)
        let reference = try Self.run(blocks, k: 5, seed: 3, restarts: 3, principalIterations: principalIterations)
        #expect(reference.outcome?.centroids.map(\.bitPattern) == straight.outcome?.centroids.map(\.bitPattern))
        #expect(reference.outcome?.directions?.map(\.bitPattern) == straight.outcome?.directions?.map(\.bitPattern))
        #expect((straight.outcome?.directions != nil) == (principalIterations > 0))
        #expect(straight.principal?.isDone == (principalIterations > 0 ? true : nil))
        if principalIterations > 0 {
            // The final track's state without the principal directions the job asks for is not accepted as theirs:
            // a job without them refuses it.
            #expect(throws: KernelShapeError.self) {
                _ = try SplitKMeans(decodingTracks: files, configuration: configuration, restarts: 3, quality: quality)
            }
        }
        // A track state under another track's number, or for another number of restarts, is refused.
        let moved = [1: try #require(files[0])]
        #expect(throws: KernelShapeError.self) {
            _ = try SplitKMeans(decodingTracks: moved, configuration: configuration, restarts: 3, quality: quality)
        }
        #expect(throws: KernelShapeError.self) {
            _ = try SplitKMeans(decodingTracks: [0: try #require(files[0])], configuration: configuration, restarts: 2)
        }
        // A final round without every restart done is refused.
        #expect(throws: KernelShapeError.self) {
            _ = try SplitKMeans(decodingTracks: [3: try #require(files[3])], configuration: configuration, restarts: 3,
                                quality: quality)
        }
    }

    @Test("hostile carried states and partials are refused, never trapped on")
    func hostileCarriedState() throws {
        let blocks = Self.blocks(seed: 2)
        let block = blocks[0]
        let center = Array(block.vectors[0..<block.dimension])
        var request = BlockRoundRequest(kind: .oversample, round: 2, centers: center, centerCount: 1, oversampling: 12,
                                        centerOffset: 3, nearest: NearestCandidates(count: block.count - 1))
        #expect(throws: KernelShapeError.self) { _ = try BlockKMeans.compute(request, block: block, seed: 1) }  // wrong count
        var state = NearestCandidates(distances: [Double](repeating: 1, count: block.count),
                                      indices: [UInt32](repeating: 0, count: block.count))
        state.indices[5] = 3  // not below the offset
        request.nearest = state
        #expect(throws: KernelShapeError.self) { _ = try BlockKMeans.compute(request, block: block, seed: 1) }
        state.indices[5] = 0
        state.distances[7] = -.infinity
        request.nearest = state
        #expect(throws: KernelShapeError.self) { _ = try BlockKMeans.compute(request, block: block, seed: 1) }
        request.nearest = nil  // later rounds need the state
        #expect(throws: KernelShapeError.self) { _ = try BlockKMeans.compute(request, block: block, seed: 1) }
        // Bytes: round trip, and a ragged or out-of-range encoding is refused.
        state.distances[7] = 2
        #expect(try NearestCandidates.decode(state.encoded(), candidates: 3) == state)
        #expect(throws: KernelShapeError.self) { _ = try NearestCandidates.decode(state.encoded().dropLast(), candidates: 3) }
        #expect(throws: KernelShapeError.self) { _ = try NearestCandidates.decode(state.encoded(), candidates: 0) }
        // A state file for another number of restarts, or damaged, is refused.
        let kmeans = try Self.run(blocks, k: 4, seed: 1, restarts: 2)
        let configuration = Self.configuration(blocks, k: 4, seed: 1, reweight: true)
        #expect(throws: KernelShapeError.self) {
            _ = try SplitKMeans(decoding: kmeans.encoded(), configuration: configuration, restarts: 3)
        }
        let bytes = kmeans.encoded()
        for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 40)) {
            #expect(throws: KernelShapeError.self) {
                _ = try SplitKMeans(decoding: Array(bytes[0..<cut]), configuration: configuration, restarts: 2)
            }
        }
        #expect(try SplitKMeans(decoding: bytes, configuration: configuration, restarts: 2).outcome?.centroids
                == kmeans.outcome?.centroids)
    }
}
