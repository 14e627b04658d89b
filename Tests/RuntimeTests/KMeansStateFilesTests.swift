import BrickyardTestSupport
import Foundation
import Logging
import Testing
@testable import Coordinator
@testable import Kernels

/// The split k-means checkpoint files (`KMeansStateFiles.swift`): after every round only what the round changed is
/// written (one section; a seeding round's new candidates appended to the log), the files alone resume the exact
/// state, and a damaged, truncated or old-layout file is refused with a message naming it.
@Suite struct KMeansStateFilesTests {
    static let (out, dimension) = (7, 18)

    static func blocks(seed: UInt64) -> [UnitBlock] {
        var random = DeterministicRandom(seed: seed)
        let centers = (0..<10).map { _ in (0..<dimension).map { _ in Float(3 * random.nextGaussian()) } }
        var start = 0
        return [70, 60, 50].map { size in
            defer { start += size }
            var vectors: [Float] = []
            for i in 0..<size {
                vectors += centers[(start + i) % 10].map { $0 + Float(random.nextGaussian()) }
            }
            return UnitBlock(vectors: vectors, count: size, dimension: dimension, outFeatures: out,
                             ids: (start..<(start + size)).map { UInt64(500 + $0) })
        }
    }

    /// lego's `oversample` stand-in: greedy least squares keeps rank − 1 fine clusters, the rest join the last one.
    static let rule = ClusterSelectionRounds.Selection(rank: 4) { gram, projections, count in
        let chosen = try RankOneSelection.greedy(gram: gram, projections: projections, count: count, select: 3)
        var targets = [Int](repeating: 3, count: count)
        for (position, cluster) in chosen.enumerated() { targets[cluster] = position }
        return targets
    }

    static let configuration = BlockKMeansConfiguration(k: 8, dimension: dimension, outFeatures: out, seed: 6,
                                                        iterations: 20, tolerance: 1e-6, blockCount: 3,
                                                        reweightRound: true)
    static let quality = SplitQualityTrack(outFeatures: out, inFeatures: dimension - out, blockCount: 3, stacked: 180,
                                           restarts: 2, forcedExact: false, width: 6, rank: 4)

    static func fresh() -> SplitKMeans {
        SplitKMeans(configuration: configuration, restarts: 2, quality: quality, principalIterations: 6, selection: rule)
    }

    static func resume(_ store: CheckpointStore) throws -> SplitKMeans {
        let saved = try store.readKMeansCheckpoint(index: 3)
        return try SplitKMeans(decodingSections: saved.sections, logs: saved.logs, configuration: configuration,
                               restarts: 2, quality: quality, principalIterations: 6, selection: rule)
    }

    static func store(_ dir: TestDirectory) throws -> CheckpointStore {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return try CheckpointStore(directory: dir.path, jobHash: "h", taskCount: 5, logger: logger)
    }

    /// Advances the next active track (taking turns) by one round.
    static func step(_ kmeans: inout SplitKMeans, blocks: [UnitBlock], turn: Int) throws -> Int {
        let tracks = kmeans.activeTracks
        let track = tracks[turn % tracks.count]
        let partials = try blocks.indices.map { b in
            try BlockKMeans.compute(try #require(kmeans.request(track: track, block: b)), block: blocks[b],
                                    seed: kmeans.seed(track: track))
        }
        try kmeans.advance(track: track, with: partials)
        return track
    }

    @Test("each round writes only what it changed; the files alone resume the exact state after any round")
    func resumeAfterEveryRound() throws {
        let dir = try TestDirectory("kmeans-sections")
        defer { dir.remove() }
        let store = try Self.store(dir)
        let blocks = Self.blocks(seed: 3)
        var kmeans = Self.fresh()
        var written = 0, whole = 0, turn = 0, kinds = Set<SplitKMeans.Section>()
        while !kmeans.isDone {
            let track = try Self.step(&kmeans, blocks: blocks, turn: turn)
            turn += 1
            let checkpoint = kmeans.checkpoint(track: track)
            kinds.insert(checkpoint.section)
            let before = checkpoint.log.count
            written += try store.writeKMeansCheckpoint(checkpoint, index: 3)
            whole += kmeans.encoded(track: track).count
            // A seeding round appended its new candidates only: the log holds exactly the candidates so far.
            if track < 2, before > 0 {
                let size = try FileManager.default.attributesOfItem(atPath: store.kmeansLogPath(index: 3, track: track))[.size] as? Int
                #expect(size == 4 * before)
            }
            let resumed = try Self.resume(store)
            #expect(resumed.encoded() == kmeans.encoded(), "after round \(kmeans.round) (track \(track))")
            #expect(resumed.round == kmeans.round && resumed.activeTracks == kmeans.activeTracks)
        }
        // Every kind of section was written, and less than rewriting the whole track after each round.
        #expect(kinds == [.run, .selectionLeft, .selectionRight, .selectionStatistics, .principalLeft, .principalRight,
                          .final, .quality])
        #expect(Double(written) < 0.7 * Double(whole), "written \(written) of \(whole)")
        print("kmeans-sections: \(written) bytes written, \(whole) as whole tracks, \(kmeans.round) rounds")
        // The module's files go with it, and another module's stay.
        try store.writeKMeansCheckpoint(kmeans.checkpoint(track: 0), index: 13)
        store.removeKMeansState(index: 3)
        #expect(try store.readKMeansCheckpoint(index: 3).sections.isEmpty)
        #expect(try store.readKMeansCheckpoint(index: 13).sections.count == 1)
    }

    @Test("a damaged, truncated or old-layout state file, or a short candidate log, is refused with a message naming it")
    func damagedFilesAreRefused() throws {
        let dir = try TestDirectory("kmeans-sections-damaged")
        defer { dir.remove() }
        let store = try Self.store(dir)
        let blocks = Self.blocks(seed: 4)
        var kmeans = Self.fresh()
        // Into restart 0's seeding: its log holds several rounds' candidates.
        var turn = 0
        while kmeans.runs[0].seedingCandidates.count < 2 * Self.dimension || kmeans.runs[0].candidatesKept == 0 {
            let track = try Self.step(&kmeans, blocks: blocks, turn: turn)
            turn += 1
            try store.writeKMeansCheckpoint(kmeans.checkpoint(track: track), index: 3)
        }
        let section = store.kmeansSectionPath(index: 3, track: 0, section: .run)
        let log = store.kmeansLogPath(index: 3, track: 0)
        let goodSection = try #require(FileManager.default.contents(atPath: section))
        let goodLog = try #require(FileManager.default.contents(atPath: log))
        #expect(try Self.resume(store).encoded() == kmeans.encoded())
        // A round killed between its log append and its section: bytes past what the section covers are ignored.
        try (goodLog + Data(repeating: 7, count: 4 * Self.dimension)).write(to: URL(fileURLWithPath: log))
        #expect(try Self.resume(store).encoded() == kmeans.encoded())
        func refused(_ path: String, _ bytes: Data, _ message: String) throws {
            try bytes.write(to: URL(fileURLWithPath: path))
            do {
                _ = try store.readKMeansCheckpoint(index: 3)
                Issue.record("\(path) was accepted")
            } catch let error as CoordinatorError {
                #expect(error.code == .corruptRecord && "\(error)".contains(path) && "\(error)".contains(message), "\(error)")
            }
            try goodSection.write(to: URL(fileURLWithPath: section))
            try goodLog.write(to: URL(fileURLWithPath: log))
        }
        var flipped = goodSection
        flipped[flipped.count / 2] ^= 0x20
        try refused(section, flipped, "damaged or truncated")
        try refused(section, goodSection.prefix(goodSection.count - 9), "damaged or truncated")
        try refused(section, Data(), "damaged or truncated")
        var badLog = goodLog
        badLog[5] ^= 0x01
        try refused(log, badLog, "candidate log damaged")
        try refused(log, goodLog.prefix(goodLog.count - 4), "candidate log missing or truncated")
        // A file of the older one-file-per-track layout is refused, not misread; removal takes it too.
        let old = dir.path + "/task-000003-t1-kmeans.state"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: old))
        #expect(throws: CoordinatorError.self) { _ = try store.readKMeansCheckpoint(index: 3) }
        store.removeKMeansState(index: 3)
        #expect(!FileManager.default.fileExists(atPath: old) && !FileManager.default.fileExists(atPath: log))
        #expect(try store.readKMeansCheckpoint(index: 3).sections.isEmpty)
    }
}
