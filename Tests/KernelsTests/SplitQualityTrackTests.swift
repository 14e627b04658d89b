import Foundation
import Testing
@testable import Kernels

/// The quality track of split modules (`SplitQualityTrack`, `BlockKMeans.product`): block products add up to the
/// dense products of T; exact figures equal a dense reference; estimates cover the dense figures within their
/// stated errors; the state round-trips through its bytes and refuses hostile partials.
@Suite struct SplitQualityTrackTests {
    /// Units with decaying scales (so T has a spread spectrum), in blocks of `sizes` units.
    static func blocks(out: Int, in inFeatures: Int, sizes: [Int], seed: UInt64) -> [UnitBlock] {
        var random = DeterministicRandom(seed: seed)
        let dim = out + inFeatures, total = sizes.reduce(0, +)
        var units = [Float](repeating: 0, count: total * dim)
        for u in 0..<total {
            let scale = Float(pow(0.93, Double(u % 40)))
            for j in 0..<dim { units[u * dim + j] = scale * Float(random.nextGaussian()) }
        }
        return BlockKMeansTests.blocks(units, dimension: dim, sizes: sizes, outFeatures: out)
    }

    /// T = Σ_u b_u a_uᵀ in Double, row-major [out, in].
    static func denseTarget(_ blocks: [UnitBlock]) -> [Double] {
        let out = blocks[0].outFeatures, dim = blocks[0].dimension, inFeatures = dim - out
        var t = [Double](repeating: 0, count: out * inFeatures)
        for block in blocks {
            for u in 0..<block.count {
                for r in 0..<out {
                    let b = Double(block.vectors[u * dim + r])
                    for c in 0..<inFeatures { t[r * inFeatures + c] += b * Double(block.vectors[u * dim + out + c]) }
                }
            }
        }
        return t
    }

    /// Dense relative error of B'A' and the Eckart–Young floor at rank k (from the SVD of T).
    static func denseFigures(_ t: [Double], out: Int, in inFeatures: Int, left: [Float], right: [Float],
                             rank k: Int) throws -> (error: Double, floor: Double) {
        var norm = 0.0, difference = 0.0
        for r in 0..<out {
            for c in 0..<inFeatures {
                var approximation = 0.0
                for s in 0..<k { approximation += Double(left[r * k + s]) * Double(right[s * inFeatures + c]) }
                norm += t[r * inFeatures + c] * t[r * inFeatures + c]
                difference += (t[r * inFeatures + c] - approximation) * (t[r * inFeatures + c] - approximation)
            }
        }
        let values = try LinearAlgebra.svd(t.map { Float($0) }, rows: out, cols: inFeatures).s
        let top = values.prefix(k).reduce(0.0) { $0 + Double($1) * Double($1) }
        return ((difference / norm).squareRoot(), (max(norm - top, 0) / norm).squareRoot())
    }

    static func factors(out: Int, in inFeatures: Int, rank: Int, seed: UInt64) -> (left: [Float], right: [Float]) {
        var random = DeterministicRandom(seed: seed)
        return ((0..<(out * rank)).map { _ in Float(random.nextGaussian()) },
                (0..<(rank * inFeatures)).map { _ in 0.3 * Float(random.nextGaussian()) })
    }

    /// Runs the track's rounds over `blocks` (round-tripping its state through its bytes after each when asked);
    /// estimation stays estimation (the rule is decided as for a clustering that needs no exact figures).
    static func run(_ track: SplitQualityTrack, blocks: [UnitBlock], seed: UInt64, checkpoint: Bool = false) throws
        -> SplitQualityTrack {
        var track = track
        while let request = track.request {
            try track.advance(with: try blocks.map { try BlockKMeans.compute(request, block: $0, seed: seed) })
            if checkpoint { track = try track.decoding(track.encoded()) }
        }
        track.decide(clusterCount: 0, iterations: 0, unitCount: 0)
        return track
    }

    static func estimated(out: Int, in inFeatures: Int, blocks: Int, rank k: Int, evaluations: Int) -> SplitQualityTrack {
        SplitQualityTrack(outFeatures: out, inFeatures: inFeatures, blockCount: blocks, stacked: 100, restarts: 1,
                          forcedExact: false, probes: 24, width: k + 8, rank: k, maxEvaluations: evaluations)
    }

    @Test("block products add up to the dense products of T (T, T·M, Tᵀ·M, T·[G | Ω])")
    func productsAddUpOverBlocks() throws {
        let (out, inFeatures) = (7, 11)
        let blocks = Self.blocks(out: out, in: inFeatures, sizes: [40, 25, 33], seed: 3)
        let t = Self.denseTarget(blocks)
        let scale = t.map(abs).max() ?? 1
        func summed(_ request: BlockRoundRequest) throws -> [Float] {
            let parts = try blocks.map { try BlockKMeans.compute(request, block: $0, seed: 17).sums }
            return parts.dropFirst().reduce(parts[0]) { zip($0, $1).map { $0 + $1 } }
        }
        func expectClose(_ got: [Float], _ want: [Double], _ what: String) {
            #expect(got.count == want.count, "\(what)")
            let worst = zip(got, want).map { abs(Double($0) - $1) }.max() ?? .infinity
            #expect(worst <= 1e-4 * scale * 10, "\(what): worst difference \(worst)")
        }
        expectClose(try summed(BlockRoundRequest(kind: .target, round: 0)), t, "T")
        let w = 3
        var random = DeterministicRandom(seed: 8)
        let right = (0..<(inFeatures * w)).map { _ in Float(random.nextGaussian()) }
        let left = (0..<(out * w)).map { _ in Float(random.nextGaussian()) }
        var tm = [Double](repeating: 0, count: out * w), ttm = [Double](repeating: 0, count: inFeatures * w)
        for r in 0..<out {
            for c in 0..<inFeatures {
                for j in 0..<w {
                    tm[r * w + j] += t[r * inFeatures + c] * Double(right[c * w + j])
                    ttm[c * w + j] += t[r * inFeatures + c] * Double(left[r * w + j])
                }
            }
        }
        expectClose(try summed(BlockRoundRequest(kind: .targetTimes, round: 0, centers: right, centerCount: w)), tm, "T·M")
        expectClose(try summed(BlockRoundRequest(kind: .targetTransposedTimes, round: 0, centers: left, centerCount: w)),
                    ttm, "Tᵀ·M")
        let (m, width) = (5, 2)
        let probes = SplitQualityTrack.probeMatrix(seed: 17, inFeatures: inFeatures, probes: m, sketchWidth: width)
        // G is the quality estimator's own probes (so the coordinator can rebuild it).
        let g = QualityEstimator.probes(seed: 17, cols: inFeatures, count: m)
        for c in 0..<inFeatures { #expect(Array(probes[(c * (m + width))..<(c * (m + width) + m)]) == Array(g[(c * m)..<((c + 1) * m)])) }
        var image = [Double](repeating: 0, count: out * (m + width))
        for r in 0..<out {
            for c in 0..<inFeatures {
                for j in 0..<(m + width) { image[r * (m + width) + j] += t[r * inFeatures + c] * Double(probes[c * (m + width) + j]) }
            }
        }
        expectClose(try summed(BlockRoundRequest(kind: .probeImage, round: 0, centerCount: width, probes: m)), image, "T·[G | Ω]")
        // A product round with a matrix of the wrong shape is refused.
        #expect(throws: KernelShapeError.self) {
            _ = try BlockKMeans.compute(BlockRoundRequest(kind: .targetTimes, round: 0, centers: left, centerCount: w),
                                        block: blocks[0], seed: 1)
        }
    }

    @Test("exact figures equal the dense error and floor (tall and wide T)", arguments: [(12, 9), (6, 14)])
    func exactTrackEqualsDenseFigures(shape: (Int, Int)) throws {
        let (out, inFeatures) = shape
        let blocks = Self.blocks(out: out, in: inFeatures, sizes: [30, 20, 25], seed: 11)
        let track = try Self.run(SplitQualityTrack(outFeatures: out, inFeatures: inFeatures, blockCount: 3,
                                                   stacked: 75, restarts: 1, forcedExact: true),
                                 blocks: blocks, seed: 2, checkpoint: true)
        #expect(track.isDone && track.rounds == 1 && track.exact)
        let k = 3
        let (left, right) = Self.factors(out: out, in: inFeatures, rank: k, seed: 4)
        let quality = try track.quality(approximationLeft: left, approximationRight: right, rank: k, seed: 2)
        let dense = try Self.denseFigures(Self.denseTarget(blocks), out: out, in: inFeatures, left: left, right: right, rank: k)
        #expect(abs(quality.relativeError - dense.error) <= 1e-6, "\(quality.relativeError) vs \(dense.error)")
        let floor = try #require(quality.floor)
        #expect(abs(floor - dense.floor) <= 1e-6, "\(floor) vs \(dense.floor)")
        #expect(quality.relativeErrorStandardError == nil)
    }

    @Test("estimated figures cover the dense error and floor within their stated errors over 20 seeds")
    func estimatedTrackCoversDenseFigures() throws {
        let (out, inFeatures, k) = (40, 30, 4)
        let blocks = Self.blocks(out: out, in: inFeatures, sizes: [50, 40, 45], seed: 21)
        let t = Self.denseTarget(blocks)
        let (left, right) = Self.factors(out: out, in: inFeatures, rank: k, seed: 6)
        let dense = try Self.denseFigures(t, out: out, in: inFeatures, left: left, right: right, rank: k)
        var withinTwo = (error: 0, floor: 0)
        let seeds = 20
        for seed in 0..<UInt64(seeds) {
            let configured = Self.estimated(out: out, in: inFeatures, blocks: 3, rank: k, evaluations: 6)
            let track = try Self.run(configured, blocks: blocks, seed: 100 + seed)
            #expect(track.isDone && track.step >= 4)
            let quality = try track.quality(approximationLeft: left, approximationRight: right, rank: k, seed: 100 + seed)
            let errorSE = try #require(quality.relativeErrorStandardError)
            let floor = try #require(quality.floor), floorSE = try #require(quality.floorStandardError)
            #expect(abs(quality.relativeError - dense.error) <= 4 * errorSE + 1e-6,
                    "seed \(seed): error \(quality.relativeError) ± \(errorSE), dense \(dense.error)")
            #expect(abs(floor - dense.floor) <= 4 * floorSE + 1e-6, "seed \(seed): floor \(floor) ± \(floorSE), dense \(dense.floor)")
            #expect(errorSE < 0.2 * dense.error && floorSE < 0.2 * dense.floor, "seed \(seed): \(errorSE), \(floorSE)")
            if abs(quality.relativeError - dense.error) <= 2 * errorSE { withinTwo.error += 1 }
            if abs(floor - dense.floor) <= 2 * floorSE { withinTwo.floor += 1 }
        }
        #expect(withinTwo.error >= seeds * 7 / 10 && withinTwo.floor >= seeds * 7 / 10, "\(withinTwo)")
    }

    @Test("the state round-trips bit for bit after every round; other settings and hostile partials are refused")
    func checkpointAndHostileInput() throws {
        let (out, inFeatures, k) = (20, 16, 3)
        let blocks = Self.blocks(out: out, in: inFeatures, sizes: [30, 30], seed: 5)
        let configured = Self.estimated(out: out, in: inFeatures, blocks: 2, rank: k, evaluations: 4)
        let straight = try Self.run(configured, blocks: blocks, seed: 9)
        let resumed = try Self.run(configured, blocks: blocks, seed: 9, checkpoint: true)
        #expect(straight == resumed)
        #expect(straight.encoded() == resumed.encoded())
        let other = Self.estimated(out: out, in: inFeatures, blocks: 2, rank: k, evaluations: 5)
        #expect(throws: KernelShapeError.self) { _ = try other.decoding(straight.encoded()) }
        #expect(throws: KernelShapeError.self) { _ = try configured.decoding(Array(straight.encoded().dropLast(3))) }
        let request = try #require(configured.request)
        let good = try BlockKMeans.compute(request, block: blocks[0], seed: 9)
        try configured.validate(good)
        var short = good
        short.sums.removeLast()
        var poisoned = good
        poisoned.sums[3] = .nan
        var wrongKind = good
        wrongKind.kind = .targetTimes
        for bad in [short, poisoned, wrongKind] {
            #expect(throws: KernelShapeError.self) { try configured.validate(bad) }
        }
        var track = configured
        #expect(throws: KernelShapeError.self) { try track.advance(with: [good]) }
        #expect(throws: KernelShapeError.self) {
            _ = try configured.quality(approximationLeft: [], approximationRight: [], rank: 0, seed: 9)
        }
    }

    @Test("a split k-means with a quality track: same clustering as without, same bytes in any track order")
    func splitKMeansRunsTheTrack() throws {
        let blocks = SplitKMeansTests.blocks(seed: 13)
        let configuration = SplitKMeansTests.configuration(blocks, k: 4, seed: 9, reweight: true)
        let (out, dim) = (blocks[0].outFeatures, blocks[0].dimension)
        let quality = SplitQualityTrack(outFeatures: out, inFeatures: dim - out, blockCount: blocks.count,
                                        stacked: 270, restarts: 2, forcedExact: false, probes: 24, width: 6, rank: 4,
                                        maxEvaluations: 3)
        func run(lastFirst: Bool) throws -> SplitKMeans {
            var kmeans = SplitKMeans(configuration: configuration, restarts: 2, quality: quality)
            while !kmeans.isDone {
                let tracks = kmeans.activeTracks
                let track = try #require(lastFirst ? tracks.last : tracks.first)
                try kmeans.advance(track: track, with: try SplitKMeansTests.partials(kmeans, track: track, blocks: blocks))
                kmeans = try SplitKMeans(decoding: kmeans.encoded(), configuration: configuration, restarts: 2,
                                         quality: quality)
            }
            return kmeans
        }
        let a = try run(lastFirst: false), b = try run(lastFirst: true)
        let plain = try SplitKMeansTests.run(blocks, k: 4, seed: 9, restarts: 2)
        #expect(a.encoded() == b.encoded())
        let outcome = try #require(a.outcome)
        #expect(outcome.quality?.isDone == true)
        // The rule: exact figures of 18-wide units at k = 4 fit a quarter of the clustering's modelled flops, so
        // the exact round ran after the estimation rounds (and was decided from the kept clustering).
        #expect(outcome.quality?.exact == true && outcome.quality?.decided == true)
        #expect(a.round == plain.round + (outcome.quality?.rounds ?? 0))
        #expect(plain.outcome?.centroids.map(\.bitPattern) == outcome.centroids.map(\.bitPattern))
        #expect(plain.outcome?.quality == nil)
        // A state written without the track does not resume with one.
        #expect(throws: KernelShapeError.self) {
            _ = try SplitKMeans(decoding: plain.encoded(), configuration: configuration, restarts: 2, quality: quality)
        }
    }
}
