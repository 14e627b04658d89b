import Testing
@testable import Kernels

/// lego's `oversample` on split modules (`ClusterSelectionRounds` in `SplitKMeans`' final track): the fine clusters'
/// rank-ones and h against the unsplit kernels on the same blocks, the merged clustering against the fine one mapped
/// by the rule, the rounds after it at k, per-track checkpoints, and hostile states.
@Suite struct SplitSelectionTests {
    static let (out, dimension, fine, rank) = (7, 18, 8, 4)

    /// A stand-in for lego's rule (MergeEngine): greedy least squares keeps rank − 1, the rest join the last cluster.
    static let rule = ClusterSelectionRounds.Selection(rank: rank) { gram, projections, count in
        let chosen = try RankOneSelection.greedy(gram: gram, projections: projections, count: count, select: rank - 1)
        var targets = [Int](repeating: rank - 1, count: count)
        for (position, cluster) in chosen.enumerated() { targets[cluster] = position }
        return targets
    }

    static func run(_ blocks: [UnitBlock], checkpoint: Bool, iterations: Int = 3) throws -> SplitKMeans {
        var configuration = SplitKMeansTests.configuration(blocks, k: fine, seed: 7, reweight: true)
        configuration.k = fine
        var kmeans = SplitKMeans(configuration: configuration, restarts: 2, principalIterations: iterations,
                                 selection: rule)
        while let track = kmeans.activeTracks.first {
            try kmeans.advance(track: track, with: try SplitKMeansTests.partials(kmeans, track: track, blocks: blocks))
            if checkpoint {
                let tracks = Dictionary(uniqueKeysWithValues: (0..<kmeans.trackCount).map { ($0, kmeans.encoded(track: $0)) })
                kmeans = try SplitKMeans(decodingTracks: tracks, configuration: configuration, restarts: 2,
                                         principalIterations: iterations, selection: rule)
            }
        }
        return kmeans
    }

    @Test("the selection rounds equal the unsplit kernels on the same blocks; the merged clustering is the fine one mapped")
    func equalToTheUnsplitKernels() throws {
        let sizes = [90, 90, 90]
        let units = SignInvariantKMeansTests.planted(clusters: 9, perCluster: 30, dimension: Self.dimension, noise: 0.8,
                                                     seed: 23).units
        let blocks = BlockKMeansTests.blocks(units, dimension: Self.dimension, sizes: sizes, outFeatures: Self.out)
        let kmeans = try Self.run(blocks, checkpoint: false)
        let outcome = try #require(kmeans.outcome)
        let selecting = try #require(kmeans.selecting)
        let keptRun = try #require(kmeans.kept)
        let fine = try #require(kmeans.runs[keptRun].outcome)
        #expect(fine.clusterCount == Self.fine && outcome.clusterCount == Self.rank)
        let inFeatures = Self.dimension - Self.out
        // The fine rank-ones: ClusterPrincipalDirections.principal's bits with lego's stop (blocks of 90 units on
        // both sides).
        let rankOnes = try #require(selecting.principal.units)
        let reference = ClusterPrincipalDirections.principal(
            units: units, count: 270, outFeatures: Self.out, inFeatures: inFeatures,
            assignment: fine.assignment.flatMap { $0.map(Int.init) }, k: Self.fine, centroids: fine.centroids,
            iterations: 3, tolerance: ClusterPrincipalDirections.defaultTolerance, blockSize: 90).units
        #expect(rankOnes.map(\.bitPattern) == reference.map(\.bitPattern))
        // h against them: the unsplit statistics to rounding (per-block sums added up).
        var statistics = ClusterStatistics(k: Self.fine, outFeatures: Self.out, inFeatures: inFeatures)
        statistics.addProjections(units: units, count: 270, centroids: rankOnes, blockSize: 90)
        let h = try #require(selecting.projections), expected = try #require(statistics.projections)
        for (x, y) in zip(h, expected) { #expect(abs(x - y) <= 1e-9 * max(1, abs(y))) }
        // The merged clustering: the fine assignment mapped by the rule, statistics summed over fine clusters.
        let targets = try Self.rule.targets(statistics.centroidGram(rankOnes), h, Self.fine)
        #expect(outcome.assignment == fine.assignment.map { $0.map { UInt32(targets[Int($0)]) } })
        let flat = outcome.assignment.flatMap { $0.map(Int.init) }
        let merged = try ClusterStatistics.of(units: units, count: 270, outFeatures: Self.out, inFeatures: inFeatures,
                                              assignment: flat, signs: [Float](repeating: 1, count: 270), k: Self.rank)
        #expect(outcome.clusterSizes == merged.counts && outcome.statistics.counts == merged.counts)
        for (x, y) in zip(outcome.statistics.normSums, merged.normSums) { #expect(abs(x - y) <= 1e-9 * max(1, y)) }
        #expect(outcome.centroids.count == Self.rank * Self.dimension)
        // Then the usual final rounds at k: principal directions from the merged centroids, the statistics round.
        let principal = try #require(kmeans.principal)
        #expect(principal.clusterCount == Self.rank && principal.isDone)
        let directions = ClusterPrincipalDirections.principal(
            units: units, count: 270, outFeatures: Self.out, inFeatures: inFeatures, assignment: flat, k: Self.rank,
            centroids: outcome.centroids, iterations: 3, tolerance: ClusterPrincipalDirections.defaultTolerance,
            blockSize: 90).units
        #expect(outcome.directions?.map(\.bitPattern) == directions.map(\.bitPattern))
        #expect(outcome.projections?.count == Self.rank)
        // The objective reported is the fine clustering's (as unsplit lego's `oversample`).
        #expect(outcome.finalObjective == fine.finalObjective)
        // Checkpointed and restored after every round: the same bits.
        let resumed = try #require(try Self.run(blocks, checkpoint: true).outcome)
        #expect(resumed.directions == outcome.directions && resumed.assignment == outcome.assignment)
        #expect(resumed.projections == outcome.projections)
    }

    @Test("no selection when the kept clustering has at most rank clusters; hostile selection states are refused")
    func guardsAndHostileStates() throws {
        let blocks = SplitKMeansTests.blocks(seed: 3)
        // k-means at the output rank: no selection rounds.
        let configuration = SplitKMeansTests.configuration(blocks, k: Self.rank, seed: 2, reweight: true)
        var plain = SplitKMeans(configuration: configuration, restarts: 1, principalIterations: 2, selection: Self.rule)
        while let track = plain.activeTracks.first {
            try plain.advance(track: track, with: try SplitKMeansTests.partials(plain, track: track, blocks: blocks))
        }
        #expect(plain.selecting == nil && plain.outcome?.clusterCount == Self.rank)
        // Mid-selection: a partial of the wrong kind or size is refused; states of another clustering are refused.
        var fineConfiguration = SplitKMeansTests.configuration(blocks, k: Self.fine, seed: 2, reweight: true)
        fineConfiguration.k = Self.fine
        var kmeans = SplitKMeans(configuration: fineConfiguration, restarts: 1, principalIterations: 1,
                                 selection: Self.rule)
        while (kmeans.selecting?.step ?? 0) < 2, let track = kmeans.activeTracks.first {
            try kmeans.advance(track: track, with: try SplitKMeansTests.partials(kmeans, track: track, blocks: blocks))
        }
        let track = kmeans.finalTrack
        let request = try #require(kmeans.request(track: track, block: 0))
        #expect(request.kind == .reweight && request.centerCount == Self.fine)
        let good = try BlockKMeans.compute(request, block: blocks[0], seed: 2)
        try kmeans.validate(good, track: track)
        var short = good; short.perCenter.removeLast()
        var notFinite = good; notFinite.perCenter[0] = .nan
        var wrongKind = good; wrongKind.kind = .principalLeft
        for bad in [short, notFinite, wrongKind] {
            #expect(throws: KernelShapeError.self) { try kmeans.validate(bad, track: track) }
        }
        // A truncated selection section is refused.
        let sections = Dictionary(uniqueKeysWithValues: (0..<kmeans.trackCount).map { ($0, kmeans.sections(track: $0)) })
        let logs = Dictionary(uniqueKeysWithValues: (0..<kmeans.trackCount).map {
            ($0, $0 < 1 ? kmeans.runs[$0].seedingCandidates : [])
        })
        for section in [SplitKMeans.Section.selectionLeft, .selectionRight] {
            let bytes = try #require(sections[track]?[section])
            for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 20)) {
                var damaged = sections
                damaged[track]?[section] = Array(bytes[0..<cut])
                #expect(throws: KernelShapeError.self) {
                    _ = try SplitKMeans(decodingSections: damaged, logs: logs, configuration: fineConfiguration,
                                        restarts: 1, principalIterations: 1, selection: Self.rule)
                }
            }
        }
        // A selection state when the job asks for none.
        let tracks = Dictionary(uniqueKeysWithValues: (0..<kmeans.trackCount).map { ($0, kmeans.encoded(track: $0)) })
        #expect(throws: KernelShapeError.self) {
            _ = try SplitKMeans(decodingTracks: tracks, configuration: fineConfiguration, restarts: 1, principalIterations: 1)
        }
        let restored = try SplitKMeans(decodingTracks: tracks, configuration: fineConfiguration, restarts: 1,
                                       principalIterations: 1, selection: Self.rule)
        #expect(restored.selecting?.step == 2 && restored.selecting?.principal == kmeans.selecting?.principal)
    }
}
