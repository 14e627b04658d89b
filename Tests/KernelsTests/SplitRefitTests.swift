import Testing
@testable import Kernels

/// lego's `refit` on split modules (`FactorRefitRounds`, `BlockKMeans.refit`): the rounds against the unsplit kernel
/// `FactorRefit.refit` (same bits on one block, the same fit to rounding on several), inside `SplitKMeans`' final
/// track (after the statistics round, checkpointed after every round), and hostile partials and states.
@Suite struct SplitRefitTests {
    static let (out, inFeatures, dimension) = (7, 11, 18)

    static func units(seed: UInt64) -> [Float] {
        SignInvariantKMeansTests.planted(clusters: 9, perCluster: 30, dimension: dimension, noise: 0.8, seed: seed).units
    }

    /// Start factors from k units: B' columns their B halves, A' rows their A halves (weight 1).
    static func start(_ units: [Float], k: Int) -> (b: [Float], a: [Float]) {
        var b = [Float](repeating: 0, count: out * k), a = [Float](repeating: 0, count: k * inFeatures)
        for t in 0..<k {
            let row = 29 * t
            for i in 0..<out { b[i * k + t] = units[row * dimension + i] }
            for j in 0..<inFeatures { a[t * inFeatures + j] = units[row * dimension + out + j] }
        }
        return (b, a)
    }

    /// Runs the refit rounds over `blocks`, every partial computed by the block kernel.
    static func refit(_ blocks: [UnitBlock], b: [Float], a: [Float], k: Int, rounds: Int) throws -> FactorRefitRounds {
        var state = try FactorRefitRounds(b: b, a: a, outFeatures: out, inFeatures: inFeatures, rank: k, rounds: rounds)
        while let request = state.request(round: state.step) {
            let partials = try blocks.map { try BlockKMeans.compute(request, block: $0, seed: 1) }
            try state.advance(with: partials, blockUnits: blocks.map(\.count))
            // Checkpointed after every round: the state round-trips bit for bit.
            state = try FactorRefitRounds(decoding: state.encoded())
        }
        return state
    }

    /// ‖T − B'A'‖_F / ‖T‖_F with T = Σ x_B x_Aᵀ (Double).
    static func relativeError(_ units: [Float], count: Int, b: [Float], a: [Float], k: Int) -> Double {
        let t = FactorRefitTests.target(units, count: count, out: out, in: inFeatures)
        let approximation = FactorRefitTests.product(b, a, out: out, in: inFeatures, k: k)
        let residual = zip(t, approximation).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        return (residual / t.reduce(0.0) { $0 + $1 * $1 }).squareRoot()
    }

    @Test("one block gives FactorRefit.refit's bits; several blocks its fit to rounding, never worse than the start",
          arguments: [[270], [100, 90, 80], [64, 64, 64, 64, 14]])
    func equalToTheUnsplitKernel(sizes: [Int]) throws {
        let units = Self.units(seed: 12), k = 5, count = sizes.reduce(0, +)
        let blocks = BlockKMeansTests.blocks(units, dimension: Self.dimension, sizes: sizes, outFeatures: Self.out)
        let (b0, a0) = Self.start(units, k: k)
        var b = b0, a = a0
        try FactorRefit.refit(units: units, count: count, outFeatures: Self.out, inFeatures: Self.inFeatures, b: &b, a: &a,
                              k: k, rounds: 2)
        let state = try Self.refit(blocks, b: b0, a: a0, k: k, rounds: 2)
        #expect(state.step == 4 && state.isDone && state.request(round: 4) == nil)
        let factors = try #require(state.factors)
        if sizes.count == 1 {
            #expect(factors.b.map(\.bitPattern) == b.map(\.bitPattern))
            #expect(factors.a.map(\.bitPattern) == a.map(\.bitPattern))
        }
        let split = Self.relativeError(units, count: count, b: factors.b, a: factors.a, k: k)
        let unsplit = Self.relativeError(units, count: count, b: b, a: a, k: k)
        let before = Self.relativeError(units, count: count, b: b0, a: a0, k: k)
        #expect(abs(split - unsplit) <= 1e-5, "split \(split), unsplit \(unsplit)")
        #expect(split < before - 1e-3, "refit \(split), start \(before)")
    }

    /// A closure in place of lego's weights and assembly (MergeEngine): each direction with weight 1.
    static let directionsAsFactors = SplitKMeans.RefitStart(rounds: 2) { outcome in
        let k = outcome.clusterCount, rows = outcome.directions ?? outcome.centroids
        var b = [Float](repeating: 0, count: out * k), a = [Float](repeating: 0, count: k * inFeatures)
        for t in 0..<k {
            for i in 0..<out { b[i * k + t] = rows[t * dimension + i] }
            for j in 0..<inFeatures { a[t * inFeatures + j] = rows[t * dimension + out + j] }
        }
        return (b, a)
    }

    static func run(_ blocks: [UnitBlock], checkpoint: Bool) throws -> SplitKMeans {
        let configuration = SplitKMeansTests.configuration(blocks, k: 6, seed: 9, reweight: true)
        func fresh() -> SplitKMeans {
            SplitKMeans(configuration: configuration, restarts: 2, principalIterations: 3, refit: directionsAsFactors)
        }
        var kmeans = fresh()
        while let track = kmeans.activeTracks.first {
            try kmeans.advance(track: track, with: try SplitKMeansTests.partials(kmeans, track: track, blocks: blocks))
            if checkpoint {
                let template = fresh()
                let tracks = Dictionary(uniqueKeysWithValues: (0..<kmeans.trackCount).map { ($0, kmeans.encoded(track: $0)) })
                kmeans = try SplitKMeans(decodingTracks: tracks, configuration: configuration, restarts: template.restarts,
                                         principalIterations: template.principalIterations, refit: directionsAsFactors)
            }
        }
        return kmeans
    }

    @Test("SplitKMeans runs the refit rounds after the statistics round; per-track checkpoints resume to the same bits")
    func finalTrackRunsTheRefitRounds() throws {
        let blocks = SplitKMeansTests.blocks(seed: 17)
        let kmeans = try Self.run(blocks, checkpoint: false)
        let outcome = try #require(kmeans.outcome)
        let rounds = try #require(kmeans.refit)
        #expect(rounds.step == 4 && outcome.refitRounds == 2)
        let refitted = try #require(outcome.refitted)
        // The same rounds by hand from the clustering's own start: the same bits.
        let start = try Self.directionsAsFactors.factors(outcome)
        let byHand = try #require(try Self.refit(blocks, b: start.b, a: start.a, k: outcome.clusterCount, rounds: 2).factors)
        #expect(refitted.b == byHand.b && refitted.a == byHand.a)
        #expect(refitted.b != start.b)
        // Checkpointed and restored after every round: identical.
        let resumed = try #require(try Self.run(blocks, checkpoint: true).outcome?.refitted)
        #expect(resumed.b.map(\.bitPattern) == refitted.b.map(\.bitPattern))
        #expect(resumed.a.map(\.bitPattern) == refitted.a.map(\.bitPattern))
        // Without refit the outcome has none.
        let configuration = SplitKMeansTests.configuration(blocks, k: 6, seed: 9, reweight: true)
        var plain = SplitKMeans(configuration: configuration, restarts: 2, principalIterations: 3)
        while let track = plain.activeTracks.first {
            try plain.advance(track: track, with: try SplitKMeansTests.partials(plain, track: track, blocks: blocks))
        }
        #expect(plain.outcome?.refitted == nil && plain.refit == nil)
        #expect(plain.outcome?.directions == outcome.directions)
    }

    @Test("hostile refit partials, requests and states are refused, never trapped on")
    func hostilePartialsAndStates() throws {
        let blocks = SplitKMeansTests.blocks(seed: 5)
        let configuration = SplitKMeansTests.configuration(blocks, k: 5, seed: 2, reweight: true)
        var kmeans = SplitKMeans(configuration: configuration, restarts: 1, principalIterations: 1,
                                 refit: Self.directionsAsFactors)
        while kmeans.refit == nil, let track = kmeans.activeTracks.first {
            try kmeans.advance(track: track, with: try SplitKMeansTests.partials(kmeans, track: track, blocks: blocks))
        }
        let track = kmeans.finalTrack
        let request = try #require(kmeans.request(track: track, block: 0))
        #expect(request.kind == .refitLeft && request.centerCount == 5 && request.centers.count == 5 * Self.inFeatures)
        let good = try BlockKMeans.compute(request, block: blocks[0], seed: 2)
        #expect(good.sums.count == Self.out * 5)
        #expect(try BlockPartial.decode(good.encoded()) == good)
        try kmeans.validate(good, track: track)
        var wrongKind = good; wrongKind.kind = .refitRight
        var short = good; short.sums.removeLast()
        var notFinite = good; notFinite.sums[3] = .infinity
        var withUnits = good
        withUnits.units = [ReportedUnit(id: 0, first: 0, second: 0, vector: Array(blocks[0].vectors[0..<18]))]
        for bad in [wrongKind, short, notFinite, withUnits] {
            #expect(throws: KernelShapeError.self) { try kmeans.validate(bad, track: track) }
        }
        // Partials in the wrong block order (unit counts differ) are refused at the reduction.
        var partials = try SplitKMeansTests.partials(kmeans, track: track, blocks: blocks)
        partials.swapAt(0, 2)
        var copy = kmeans
        #expect(throws: KernelShapeError.self) { try copy.advance(track: track, with: partials) }
        // Requests with centers of the wrong size.
        var wrong = request
        wrong.centers.removeLast()
        #expect(throws: KernelShapeError.self) { _ = try BlockKMeans.compute(wrong, block: blocks[0], seed: 2) }
        // States: truncated bytes, and a state of another rank, are refused.
        let state = try #require(kmeans.refit)
        let bytes = state.encoded()
        #expect(try FactorRefitRounds(decoding: bytes) == state)
        for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 25)) {
            #expect(throws: KernelShapeError.self) { _ = try FactorRefitRounds(decoding: Array(bytes[0..<cut])) }
        }
        try kmeans.advance(track: track, with: try SplitKMeansTests.partials(kmeans, track: track, blocks: blocks))
        var tracks = Dictionary(uniqueKeysWithValues: (0..<kmeans.trackCount).map { ($0, kmeans.encoded(track: $0)) })
        let other = try FactorRefitRounds(b: [Float](repeating: 1, count: Self.out * 4),
                                          a: [Float](repeating: 1, count: 4 * Self.inFeatures),
                                          outFeatures: Self.out, inFeatures: Self.inFeatures, rank: 4, rounds: 2)
        let restored = try SplitKMeans(decodingTracks: tracks, configuration: configuration, restarts: 1,
                                       principalIterations: 1, refit: Self.directionsAsFactors)
        #expect(restored.refit == kmeans.refit && restored.refit?.step == 1)
        // The final track's file with another rank's refit state in place of its own.
        var w = ByteWriter()
        let finalBytes = tracks[track] ?? []
        let own = kmeans.refit?.encoded() ?? []
        let mine = Array(finalBytes[0..<(finalBytes.count - own.count - 16)])
        let foreign = other.encoded()
        w.append(mine); w.int(1); w.int(foreign.count); w.append(foreign)
        tracks[track] = w.bytes
        #expect(throws: KernelShapeError.self) {
            _ = try SplitKMeans(decodingTracks: tracks, configuration: configuration, restarts: 1, principalIterations: 1,
                                refit: Self.directionsAsFactors)
        }
        // Refit state without a refit in the job.
        tracks[track] = finalBytes
        #expect(throws: KernelShapeError.self) {
            _ = try SplitKMeans(decodingTracks: tracks, configuration: configuration, restarts: 1, principalIterations: 1)
        }
    }
}
