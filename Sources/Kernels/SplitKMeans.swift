/// A split module's whole k-means: `restarts` independent `BlockKMeansDriver` runs (restart r seeded with
/// `SignInvariantKMeans.restartSeed(module seed, r)`, so restart 0 is the single run of `restarts: 1`), the kept
/// run chosen as in-process lego chooses it (lowest final objective, each reduced in block order; ties to the
/// lowest restart), then with `oversample` (the restarts clustered at more clusters than the output rank) the
/// selection rounds that keep k of them (`ClusterSelectionRounds`), then with `direction: principal` the power-iteration rounds of each cluster's best rank-one
/// (`PrincipalDirectionRounds`), then, when the reweighting needs it, one statistics round against the kept
/// centroids (or those rank-ones), then with `refit` the alternating least-squares rounds on the assembled factors
/// (`FactorRefitRounds`, started from `RefitStart.factors`: lego's weights and assembly). When the job wants quality
/// figures, a quality track (`SplitQualityTrack`) runs its product rounds from the start.
///
/// Work is organised in tracks: track r < restarts is restart r's rounds; track `restarts` is the final
/// rounds (selection, principal directions, then statistics, then refit); track `restarts + 1` the quality rounds. Tracks are independent until the choice, so the coordinator runs the restarts' rounds side by
/// side (more block tasks per wave) while the in-process reference runs them one after another; each track's
/// bytes depend only on its own partials, so both give the same result. The state round-trips exactly through
/// `encoded()` / `init(decoding:configuration:restarts:)` and is checkpointed after every reduced round.
public struct SplitKMeans: Sendable {
    /// How the final track starts lego's `refit` from the finished clustering (`FactorRefitRounds`).
    public struct RefitStart: Sendable {
        /// Alternating least-squares rounds (each two block rounds).
        public let rounds: Int
        /// The cluster → rank step's factors (B' [out, k], A' [k, in]) from the finished clustering (its
        /// directions and statistics): lego's weights and assembly, which live above this layer.
        public let factors: @Sendable (BlockKMeansOutcome) throws -> (b: [Float], a: [Float])

        public init(rounds: Int, factors: @escaping @Sendable (BlockKMeansOutcome) throws -> (b: [Float], a: [Float])) {
            self.rounds = max(1, rounds)
            self.factors = factors
        }
    }

    /// Settings shared by every restart (its seed is the module seed; `reweightRound` asks for the final round).
    public let configuration: BlockKMeansConfiguration
    public let restarts: Int
    /// Power iterations of the principal directions (0: `direction: mean`, the kept centroids are used).
    public let principalIterations: Int
    public private(set) var runs: [BlockKMeansDriver]
    /// The principal-direction rounds of the final track (made once the kept restart is known and there is more
    /// than one unit per cluster; nil otherwise).
    public private(set) var principal: PrincipalDirectionRounds?
    /// The restart kept, once every restart is done.
    public private(set) var kept: Int?
    /// Its clustering (derived once when chosen: the coordinator asks for it per block and partial).
    private var keptRun: BlockKMeansOutcome?
    /// h from the final statistics round (nil before it, or when it does not run).
    private(set) var projections: [Double]?
    private(set) var finalDone = false
    /// The quality rounds (nil: the job asked for no quality figures).
    public private(set) var quality: SplitQualityTrack?
    /// `refit` (nil: none): how the refit rounds start.
    public let refitStart: RefitStart?
    /// The refit rounds of the final track (made once the statistics are reduced, when there are more units than
    /// clusters; nil otherwise).
    public private(set) var refit: FactorRefitRounds?
    /// `oversample` (nil: none): the restarts cluster into more clusters than the output rank and these rules pick
    /// which keep their own rank.
    public let selection: ClusterSelectionRounds.Selection?
    /// The selection rounds of the final track (made once the kept restart is known, when it has more clusters than
    /// `selection.rank`; nil otherwise).
    public private(set) var selecting: ClusterSelectionRounds?

    public init(configuration: BlockKMeansConfiguration, restarts: Int, quality: SplitQualityTrack? = nil,
                principalIterations: Int = 0, refit: RefitStart? = nil,
                selection: ClusterSelectionRounds.Selection? = nil) {
        self.configuration = configuration
        self.restarts = max(1, restarts)
        self.quality = quality
        self.principalIterations = max(0, principalIterations)
        refitStart = refit
        self.selection = selection
        runs = (0..<self.restarts).map { r in
            var own = configuration
            own.seed = SignInvariantKMeans.restartSeed(configuration.seed, restart: r)
            own.reweightRound = false
            return BlockKMeansDriver(configuration: own)
        }
    }

    /// The track of the final statistics round.
    public var finalTrack: Int { restarts }
    /// The track of the quality rounds.
    public var qualityTrack: Int { restarts + 1 }

    /// Rounds reduced so far over all tracks (what a resumed coordinator reports).
    public var round: Int {
        runs.reduce(0) { $0 + $1.round } + finalRounds + (quality?.rounds ?? 0)
    }

    /// Rounds of the final track reduced so far.
    private var finalRounds: Int {
        (selecting?.step ?? 0) + (principal?.step ?? 0) + (finalDone && configuration.reweightRound ? 1 : 0)
            + (refit?.step ?? 0)
    }

    /// The clustering still has a final round to run (principal directions, then the statistics round).
    private var statisticsPending: Bool {
        if let selecting, !selecting.isDone { return true }
        guard let kept = keptOutcome, kept.clusterCount > 0 else { return false }
        if let principal, !principal.isDone { return true }
        return configuration.reweightRound && !finalDone
    }

    /// The final track still has a round to run (the clustering's, then the refit rounds).
    private var finalPending: Bool {
        statisticsPending || refit.map { !$0.isDone } ?? false
    }

    /// Once the clustering is finished: the refit rounds from its assembled factors (none with one unit per
    /// cluster, which reproduces T, as unsplit lego).
    private mutating func makeRefit() throws {
        guard let start = refitStart, refit == nil, let clustered, clustered.clusterCount > 0,
              clustered.clusterCount < clustered.unitCount else { return }
        let (b, a) = try start.factors(clustered)
        refit = try FactorRefitRounds(b: b, a: a, outFeatures: configuration.outFeatures,
                                      inFeatures: configuration.dimension - configuration.outFeatures,
                                      rank: clustered.clusterCount, rounds: start.rounds)
    }

    /// Once the kept restart is known: the selection rounds when it has more clusters than the output rank.
    private mutating func makeSelection() {
        guard let selection, selecting == nil, let fine = fineOutcome, fine.clusterCount > selection.rank else { return }
        selecting = ClusterSelectionRounds(fine: fine, rank: selection.rank, outFeatures: configuration.outFeatures,
                                           inFeatures: configuration.dimension - configuration.outFeatures,
                                           iterations: max(1, principalIterations))
    }

    /// Once the kept (merged) clustering is known: the principal-direction rounds it needs (none with one unit per cluster,
    /// where every reweighting gives weight 1 to the units themselves, as unsplit lego).
    private mutating func makePrincipal() {
        guard principalIterations > 0, principal == nil, let kept = keptOutcome, kept.clusterCount > 0,
              kept.clusterCount < kept.unitCount else { return }
        principal = PrincipalDirectionRounds(centroids: kept.centroids, clusterCount: kept.clusterCount,
                                             outFeatures: configuration.outFeatures,
                                             inFeatures: configuration.dimension - configuration.outFeatures,
                                             iterations: principalIterations)
    }

    /// The rows the statistics round and the result use: the principal rank-ones once computed, else the centroids.
    private var finalCenters: [Float]? {
        principal?.units ?? keptOutcome?.centroids
    }

    private var qualityPending: Bool { quality.map { !$0.isDone } ?? false }

    /// Once the clustering is complete (kept run, and its statistics round when it has one), the quality track
    /// learns the iterations and cluster count its exact-or-estimated rule needs.
    private mutating func settleQuality() {
        guard quality != nil, let kept = keptOutcome, !statisticsPending else { return }
        quality?.decide(clusterCount: kept.clusterCount, iterations: kept.iterations, unitCount: kept.unitCount)
    }

    public var isDone: Bool { outcome != nil }

    /// The seed a track's block computations use.
    public func seed(track: Int) -> UInt64 {
        track < restarts ? runs[track].configuration.seed : configuration.seed
    }

    /// Tracks with a round to run now, in track order.
    public var activeTracks: [Int] {
        var tracks = (0..<restarts).filter { !runs[$0].isDone }
        if tracks.isEmpty, finalPending { tracks = [finalTrack] }
        return tracks + (quality?.request != nil ? [qualityTrack] : [])
    }

    /// What block `block` computes in `track`'s next round (nil if the track has none now).
    public func request(track: Int, block: Int) -> BlockRoundRequest? {
        guard activeTracks.contains(track) else { return nil }
        if track < restarts { return runs[track].request(block: block) }
        if track == qualityTrack { return quality?.request }
        let round = runs[self.kept ?? 0].round + finalRounds
        if let selecting, !selecting.isDone {
            guard let fine = fineOutcome, fine.assignment.indices.contains(block) else { return nil }
            return selecting.request(round: round, assignment: fine.assignment[block])
        }
        guard let kept = keptOutcome, let centers = finalCenters else { return nil }
        if let principal, !principal.isDone {
            guard kept.assignment.indices.contains(block) else { return nil }
            return principal.request(round: round, assignment: kept.assignment[block])
        }
        if statisticsPending {
            return BlockRoundRequest(kind: .reweight, round: round, centers: centers, centerCount: kept.clusterCount)
        }
        return refit?.request(round: round)
    }

    /// Checks one block's answer against `track`'s current round.
    public func validate(_ partial: BlockPartial, track: Int) throws {
        guard activeTracks.contains(track) else { throw problem("track \(track) has no round running") }
        if track < restarts { return try runs[track].validate(partial) }
        if track == qualityTrack, let quality { return try quality.validate(partial) }
        if let selecting, !selecting.isDone { return try selecting.validate(partial) }
        if let principal, !principal.isDone { return try principal.validate(partial) }
        if !statisticsPending, let refit { return try refit.validate(partial) }
        let m = keptOutcome?.clusterCount ?? 0
        guard partial.kind == .reweight, partial.perCenter.count == m, partial.perCenter.allSatisfy(\.isFinite),
              partial.unitCount >= 0 else {
            throw problem("final statistics partial does not have \(m) finite values")
        }
    }

    /// Reduces `track`'s round (one partial per block, in block order).
    public mutating func advance(track: Int, with partials: [BlockPartial]) throws {
        guard activeTracks.contains(track) else { throw problem("track \(track) has no round running") }
        if track < restarts {
            try runs[track].advance(with: partials)
            if runs.allSatisfy(\.isDone) { choose() }
            settleQuality()
            try makeRefit()
            return
        }
        if track == qualityTrack, var track = quality {
            // One BLAS thread: the sketch's QR and SVD change bits with the thread count.
            try BLAS.singleThreaded { try track.advance(with: partials) }
            quality = track
            return
        }
        guard partials.count == configuration.blockCount else {
            throw problem("\(partials.count) partials for \(configuration.blockCount) blocks")
        }
        if var rounds = selecting, !rounds.isDone, let fine = fineOutcome, let selection {
            // One BLAS thread: the reductions and the selection's Gram, as in process.
            try BLAS.singleThreaded {
                try rounds.advance(with: partials, blockUnits: fine.assignment.map(\.count), fine: fine,
                                   selection: selection)
            }
            selecting = rounds
            if rounds.isDone {
                makePrincipal()
                settleQuality()
                try makeRefit()
            }
            return
        }
        if var rounds = principal, !rounds.isDone {
            let units = keptOutcome?.assignment.map(\.count)
            // One BLAS thread: the reduction's nrm2/scal, as in process.
            try BLAS.singleThreaded { try rounds.advance(with: partials, blockUnits: units) }
            principal = rounds
            settleQuality()
            try makeRefit()
            return
        }
        if !statisticsPending, var rounds = refit {
            let units = keptOutcome?.assignment.map(\.count)
            // One BLAS thread: the solves' LAPACK calls, as in process.
            try BLAS.singleThreaded { try rounds.advance(with: partials, blockUnits: units) }
            refit = rounds
            return
        }
        for partial in partials { try validate(partial, track: track) }
        let m = keptOutcome?.clusterCount ?? 0
        var h = [Double](repeating: 0, count: m)
        for partial in partials { for s in 0..<m { h[s] += partial.perCenter[s] } }
        projections = h
        finalDone = true
        settleQuality()
        try makeRefit()
    }

    /// Lowest final objective wins; ties to the lowest restart (the in-process rule).
    private mutating func choose() {
        var best = 0
        for r in 1..<restarts {
            if let a = runs[r].outcome, let b = runs[best].outcome, a.finalObjective < b.finalObjective { best = r }
        }
        kept = best
        keptRun = runs[best].outcome
        makeSelection()
        makePrincipal()
    }

    /// The kept restart's clustering (at more clusters than the output rank when oversampling).
    private var fineOutcome: BlockKMeansOutcome? { keptRun }

    /// The clustering the final rounds work on: the selection's merged one when oversampling, else the kept run's.
    private var keptOutcome: BlockKMeansOutcome? {
        if let selecting { return selecting.merged }
        return fineOutcome
    }

    /// The kept clustering with its directions and statistics, once those rounds ran (before refit and quality).
    private var clustered: BlockKMeansOutcome? {
        guard let kept, var outcome = keptOutcome, !statisticsPending else { return nil }
        outcome.restart = kept
        if let principal {
            outcome.directions = principal.units
            outcome.powerIterations = principal.iterationsRun
        }
        if configuration.reweightRound && outcome.clusterCount > 0 {
            outcome.statistics.projections = projections
        }
        return outcome
    }

    /// The kept clustering with its statistics (and refitted factors); nil until every round ran.
    public var outcome: BlockKMeansOutcome? {
        guard var outcome = clustered, !qualityPending, !finalPending else { return nil }
        outcome.quality = quality
        if let refit {
            outcome.refitted = refit.factors
            outcome.refitRounds = refit.rounds
        }
        return outcome
    }

    private func problem(_ text: String) -> KernelShapeError {
        KernelShapeError(kernel: "split k-means", problem: text)
    }

    // MARK: checkpoint

    static let magic: [UInt8] = Array("BYSKM004".utf8)
    static let trackMagic: [UInt8] = Array("BYSKT004".utf8)

    /// Tracks whose states make up the whole state: the restarts, the final statistics round, the quality rounds.
    public var trackCount: Int { restarts + 2 }

    /// A part of one track's state that one kind of round changes, so a coordinator rewrites only that part after
    /// the round (each round changes exactly one).
    public enum Section: Int, Sendable, CaseIterable, Comparable {
        /// A restart's driver state, without its seeding candidates (those are the track's append-only log).
        case run = 0
        /// The final track's statistics round (h) and refit rounds (B', A').
        case final = 1
        /// The selection's fine rank-ones: û (LEFT rounds), v̂ with σ and the stop (RIGHT and start rounds), then h.
        case selectionLeft = 2, selectionRight = 3, selectionStatistics = 4
        /// The principal directions at k: û, then v̂ with σ and the stop.
        case principalLeft = 5, principalRight = 6
        /// The quality rounds.
        case quality = 7

        /// A short name for file names.
        public var name: String {
            switch self {
            case .run: return "run"
            case .final: return "final"
            case .selectionLeft: return "selection-left"
            case .selectionRight: return "selection-right"
            case .selectionStatistics: return "selection-h"
            case .principalLeft: return "principal-left"
            case .principalRight: return "principal-right"
            case .quality: return "quality"
            }
        }

        public init?(name: String) {
            guard let section = Section.allCases.first(where: { $0.name == name }) else { return nil }
            self = section
        }

        public static func < (a: Section, b: Section) -> Bool { a.rawValue < b.rawValue }
    }

    /// What the latest reduced round of a track changed: one section's bytes, and for a restart its seeding
    /// candidates (row-major floats, empty outside seeding) of which the first `logKept` were already in the
    /// previous checkpoint (only the rest are new; the candidates only grow until the weights round clears them).
    public struct TrackCheckpoint: Sendable {
        public let track: Int
        public let section: Section
        public let bytes: [UInt8]
        public let log: [Float]
        public let logKept: Int
    }

    /// A section's bytes: a header naming the restarts, track and section, then the body.
    private func sectionBytes(track: Int, section: Section, body: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.append(Self.trackMagic)
        w.int(restarts); w.int(track); w.int(section.rawValue)
        w.append(body)
        return w.bytes
    }

    /// The section the latest reduced round of `track` changed (what a coordinator writes after it).
    public func checkpoint(track: Int) -> TrackCheckpoint {
        if track < restarts {
            return TrackCheckpoint(track: track, section: .run,
                                   bytes: sectionBytes(track: track, section: .run, body: runs[track].encoded(candidates: false)),
                                   log: runs[track].seedingCandidates, logKept: runs[track].candidatesKept)
        }
        let section: Section
        if track != finalTrack {
            section = .quality
        } else if finalDone || (refit?.step ?? 0) > 0 {
            section = .final
        } else if let principal, principal.step > 0 {
            section = principal.leftStep > principal.rightStep ? .principalLeft : .principalRight
        } else if selecting?.projections != nil {
            section = .selectionStatistics
        } else if let rounds = selecting?.principal, rounds.leftStep > rounds.rightStep {
            section = .selectionLeft
        } else {
            section = .selectionRight
        }
        return TrackCheckpoint(track: track, section: section,
                               bytes: sectionBytes(track: track, section: section, body: body(of: section) ?? []),
                               log: [], logKept: 0)
    }

    /// A section's body as the state stands (nil: nothing written there yet).
    private func body(of section: Section) -> [UInt8]? {
        switch section {
        case .run:
            return nil
        case .final:
            var w = ByteWriter()
            w.int(finalDone ? 1 : 0); w.int(projections == nil ? 0 : 1); w.doubles(projections ?? [])
            // Refit starts from the reduced statistics: written once its rounds moved.
            let refitted = refit.map { $0.step > 0 } ?? false
            let refitBytes = refitted ? refit?.encoded() ?? [] : []
            w.int(refitted ? 1 : 0); w.int(refitBytes.count); w.append(refitBytes)
            return finalDone || refitted ? w.bytes : nil
        case .principalLeft:
            return principal.flatMap { $0.leftStep > 0 ? $0.encodedLeft() : nil }
        case .principalRight:
            return principal.flatMap { $0.rightStep > 0 ? $0.encodedRight() : nil }
        case .selectionLeft:
            return selecting.flatMap { $0.principal.leftStep > 0 ? $0.principal.encodedLeft() : nil }
        case .selectionRight:
            return selecting.flatMap { $0.principal.rightStep > 0 ? $0.principal.encodedRight() : nil }
        case .selectionStatistics:
            return selecting?.encodedStatistics()
        case .quality:
            return quality?.encoded()
        }
    }

    /// Every section a coordinator holds for `track` after its rounds so far (latest bytes of each), by section.
    public func sections(track: Int) -> [Section: [UInt8]] {
        if track < restarts {
            return [.run: sectionBytes(track: track, section: .run, body: runs[track].encoded(candidates: false))]
        }
        let candidates: [Section] = track == finalTrack
            ? [.final, .selectionLeft, .selectionRight, .selectionStatistics, .principalLeft, .principalRight] : [.quality]
        var result: [Section: [UInt8]] = [:]
        for section in candidates {
            if let body = body(of: section) { result[section] = sectionBytes(track: track, section: section, body: body) }
        }
        return result
    }

    /// One track's whole state in one blob, bit-exact: its sections and its candidate log.
    public func encoded(track: Int) -> [UInt8] {
        var w = ByteWriter()
        w.append(Self.trackMagic)
        let parts = sections(track: track).sorted { $0.key < $1.key }
        w.int(parts.count)
        for (section, bytes) in parts { w.int(section.rawValue); w.int(bytes.count); w.append(bytes) }
        w.floats(track < restarts ? runs[track].seedingCandidates : [])
        return w.bytes
    }

    /// Every track's state in one blob (`encoded(track:)` of each, in track order).
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.int(trackCount)
        for track in 0..<trackCount {
            let bytes = encoded(track: track)
            w.int(bytes.count); w.append(bytes)
        }
        return Self.magic + w.bytes
    }

    /// Restores `encoded()` for the same configuration, restarts and quality settings; throws on anything else.
    public init(decoding bytes: [UInt8], configuration: BlockKMeansConfiguration, restarts: Int,
                quality: SplitQualityTrack? = nil, principalIterations: Int = 0, refit: RefitStart? = nil,
                selection: ClusterSelectionRounds.Selection? = nil) throws {
        guard bytes.count >= Self.magic.count, Array(bytes[0..<Self.magic.count]) == Self.magic else {
            throw KernelShapeError(kernel: "split k-means state", problem: "bad magic")
        }
        var r = ByteReader(Array(bytes[Self.magic.count...]), what: "split k-means state")
        let count = try r.bounded(max(1, restarts) + 2, "track count")
        var tracks: [Int: [UInt8]] = [:]
        for track in 0..<count { tracks[track] = Array(try r.raw(count: try r.count(elementBytes: 1))) }
        try r.finish()
        try self.init(decodingTracks: tracks, configuration: configuration, restarts: restarts, quality: quality,
                      principalIterations: principalIterations, refit: refit, selection: selection)
    }

    /// Restores the tracks' states (`encoded(track:)`, keyed by track); a track without one starts from its
    /// beginning. Throws on bytes of another configuration or states that contradict each other.
    public init(decodingTracks tracks: [Int: [UInt8]], configuration: BlockKMeansConfiguration, restarts: Int,
                quality: SplitQualityTrack? = nil, principalIterations: Int = 0, refit: RefitStart? = nil,
                selection: ClusterSelectionRounds.Selection? = nil) throws {
        var sections: [Int: [Section: [UInt8]]] = [:], logs: [Int: [Float]] = [:]
        for (track, bytes) in tracks {
            guard bytes.count >= Self.trackMagic.count, Array(bytes[0..<Self.trackMagic.count]) == Self.trackMagic else {
                throw KernelShapeError(kernel: "split k-means state", problem: "track \(track): bad magic")
            }
            var r = ByteReader(Array(bytes[Self.trackMagic.count...]), what: "split k-means track \(track)")
            var parts: [Section: [UInt8]] = [:]
            for _ in 0..<(try r.bounded(Section.allCases.count, "section count")) {
                guard let section = Section(rawValue: try r.bounded(Section.allCases.count, "section")) else {
                    throw KernelShapeError(kernel: "split k-means state", problem: "track \(track): unknown section")
                }
                parts[section] = Array(try r.raw(count: try r.count(elementBytes: 1)))
            }
            logs[track] = try r.floats()
            try r.finish()
            sections[track] = parts
        }
        // A blob holds every track, the quality track's section whenever one is configured (even before its first
        // round): a blob written without it does not resume with one.
        if quality != nil, let parts = sections[max(1, restarts) + 1], parts[.quality] == nil {
            throw KernelShapeError(kernel: "split k-means state", problem: "written without the quality track")
        }
        try self.init(decodingSections: sections, logs: logs, configuration: configuration, restarts: restarts,
                      quality: quality, principalIterations: principalIterations, refit: refit, selection: selection)
    }

    /// Restores the tracks' states from their sections (the latest bytes of each `checkpoint(track:)` wrote, by
    /// track and section) and the restarts' candidate logs (the floats the latest `run` section counts); a track
    /// without sections starts from its beginning. Throws on bytes of another configuration, sections that do not
    /// follow each other, or states that contradict each other.
    public init(decodingSections sections: [Int: [Section: [UInt8]]], logs: [Int: [Float]] = [:],
                configuration: BlockKMeansConfiguration, restarts: Int, quality: SplitQualityTrack? = nil,
                principalIterations: Int = 0, refit: RefitStart? = nil,
                selection: ClusterSelectionRounds.Selection? = nil) throws {
        self.init(configuration: configuration, restarts: restarts, quality: quality,
                  principalIterations: principalIterations, refit: refit, selection: selection)
        func fail(_ problem: String) -> KernelShapeError { KernelShapeError(kernel: "split k-means state", problem: problem) }
        var bodies: [Section: [UInt8]] = [:]
        for (track, parts) in sections.sorted(by: { $0.key < $1.key }) {
            guard (0..<trackCount).contains(track) else { throw fail("track \(track) of \(trackCount)") }
            for (section, bytes) in parts.sorted(by: { $0.key < $1.key }) {
                let allowed = track < self.restarts ? section == .run
                    : track == finalTrack ? section != .run && section != .quality : section == .quality
                guard allowed, bytes.count >= Self.trackMagic.count,
                      Array(bytes[0..<Self.trackMagic.count]) == Self.trackMagic else {
                    throw fail("track \(track) \(section.name): bad magic or a section of another track")
                }
                var r = ByteReader(Array(bytes[Self.trackMagic.count...]), what: "split k-means track \(track) \(section.name)")
                guard try r.int() == self.restarts, try r.int() == track, try r.int() == section.rawValue else {
                    throw fail("track \(track) \(section.name) was written for another number of restarts, track or section")
                }
                let body = Array(try r.raw(count: r.remaining))
                if track < self.restarts {
                    runs[track] = try BlockKMeansDriver(decoding: body, configuration: runs[track].configuration,
                                                        candidates: logs[track] ?? [])
                } else if track == finalTrack {
                    bodies[section] = body
                } else if let configured = self.quality {
                    self.quality = try configured.decoding(body)
                } else {
                    throw fail("a quality track the job does not ask for")
                }
            }
        }
        var refitBytes: [UInt8]?
        if let body = bodies[.final] {
            var r = ByteReader(body, what: "split k-means final section")
            finalDone = try r.bounded(1, "final round flag") == 1
            let hasProjections = try r.bounded(1, "projections flag")
            let h = try r.doubles()
            let hasRefit = try r.bounded(1, "refit flag")
            let refitted = Array(try r.raw(count: try r.count(elementBytes: 1)))
            try r.finish()
            projections = hasProjections == 1 ? h : nil
            refitBytes = hasRefit == 1 ? refitted : nil
        }
        let selectionBodies = [bodies[.selectionLeft], bodies[.selectionRight], bodies[.selectionStatistics]]
        let principalBodies = [bodies[.principalLeft], bodies[.principalRight]]
        let hasSelection = selectionBodies.contains { $0 != nil }, hasPrincipal = principalBodies.contains { $0 != nil }
        if runs.allSatisfy(\.isDone) {
            choose()
        } else {
            guard !finalDone, projections == nil, !hasPrincipal, !hasSelection else {
                throw fail("final rounds before every restart finished")
            }
        }
        if hasSelection {
            guard let fresh = selecting, let fine = fineOutcome, let selection else {
                throw fail("selection rounds the job or the clustering does not call for")
            }
            do {
                selecting = try fresh.decoding(left: selectionBodies[0], right: selectionBodies[1],
                                               statistics: selectionBodies[2], fine: fine, selection: selection)
            } catch { throw fail("\(error)") }
            makePrincipal()
        }
        guard selecting?.isDone ?? true || (!hasPrincipal && !finalDone) else {
            throw fail("final rounds before the selection")
        }
        if hasPrincipal {
            guard let fresh = principal else { throw fail("principal directions the job or the clustering does not call for") }
            do { principal = try fresh.decoding(left: principalBodies[0], right: principalBodies[1]) } catch { throw fail("\(error)") }
        }
        guard !finalDone || principal?.isDone ?? true else { throw fail("final statistics before the principal directions") }
        guard !finalDone || (projections?.count ?? -1) == (keptOutcome?.clusterCount ?? -2) else {
            throw fail("final statistics do not match the kept centroids")
        }
        settleQuality()
        guard self.quality?.isConsistent ?? true else { throw fail("an exact quality round the clustering does not call for") }
        do { try makeRefit() } catch { throw fail("refit start: \(error)") }
        if let refitBytes {
            guard let fresh = self.refit else { throw fail("refit rounds the job or the clustering does not call for") }
            let restored: FactorRefitRounds
            do { restored = try FactorRefitRounds(decoding: refitBytes) } catch { throw fail("\(error)") }
            guard restored.rank == fresh.rank, restored.rounds == fresh.rounds, restored.outFeatures == fresh.outFeatures,
                  restored.inFeatures == fresh.inFeatures else {
                throw fail("refit rounds written for another rank or round count")
            }
            self.refit = restored
        }
    }
}
