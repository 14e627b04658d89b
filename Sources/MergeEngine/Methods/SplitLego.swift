import Kernels

/// `lego` for a module split into blocks (`TaskBudget`): the k-means runs as rounds over fixed blocks of units
/// (`BlockKMeansDriver` reduces, `BlockKMeans` computes a block), and the final centroids go through the lego
/// reweighting and assembly from per-cluster statistics reduced over the blocks. The distributed runtime runs the
/// rounds on workers; `mergeInProcess` runs the same rounds here, block after block, and is its reference:
/// same block plan, same bytes.
///
/// Differences from the unsplit method (docs/distributed-kmeans.md): seeding is k-means|| (each of `restarts` runs
/// seeded like the unsplit method's restart, the lowest objective kept), `oversample` as rounds choosing k of the
/// fine clusters (`ClusterSelectionRounds`, the unsplit rule `LegoMerge.selectionTargets`), no `small_pool: select`,
/// `refit` as rounds of block products (`FactorRefitRounds`: the unsplit kernel's products summed over blocks),
/// the output rank is min(k, candidates drawn), and the quality figures come from the quality track's block products (`SplitQualityTrack`), exact or
/// estimated by the unsplit modules' rule (`qualityTrack(module:spec:blockCount:)`).
public enum SplitLego {
    /// The k-means settings of a split module.
    public static func configuration(module: ModulePlan, spec: MergeSpec, blockCount: Int) -> BlockKMeansConfiguration {
        BlockKMeansConfiguration(k: clusteringCount(module: module, spec: spec),
                                 dimension: module.outFeatures + module.inFeatures,
                                 outFeatures: module.outFeatures, seed: module.seed,
                                 iterations: spec.lego.iterations, tolerance: spec.lego.tolerance,
                                 blockCount: blockCount, reweightRound: spec.lego.reweight == .optimal)
    }

    /// The clusters the split k-means runs at: `oversample`·k when the unsplit method would oversample a module of
    /// this many units (`LegoOptions.clusteringCount`, with the units counted as Σ ranks of the plan: fixed by the
    /// job before any block is read; the unsplit method counts the non-zero units), else k. `small_pool: select`
    /// is not applied to split modules (below the gate they cluster at k, as `small_pool: kmeans`).
    public static func clusteringCount(module: ModulePlan, spec: MergeSpec) -> Int {
        let units = module.sources.reduce(0) { $0 + max($1.module.rank, 0) }
        return spec.lego.clusteringCount(units: units, rank: max(1, spec.rank))
    }

    /// lego's `oversample` on a split module (nil when the k-means runs at k): the selection rounds pick k of the
    /// fine clusters by `LegoMerge.selectionTargets`, the unsplit method's rule.
    public static func selection(module: ModulePlan, spec: MergeSpec) -> ClusterSelectionRounds.Selection? {
        let k = max(1, spec.rank)
        guard clusteringCount(module: module, spec: spec) > k else { return nil }
        return ClusterSelectionRounds.Selection(rank: k) { gram, projections, fineCount in
            try LegoMerge.selectionTargets(gram: gram, projections: projections, fineCount: fineCount, k: k,
                                           catchAll: true).targets
        }
    }

    /// The plan of one block: the module restricted to the block's sources.
    public static func blockPlan(_ module: ModulePlan, block: ModuleBlock) -> ModulePlan {
        ModulePlan(name: module.name, outFeatures: module.outFeatures, inFeatures: module.inFeatures,
                   sources: Array(module.sources[block.sources]), seed: module.seed)
    }

    /// A block's units with their job-fixed ids, from the block's input (its terms in source order).
    public static func unitBlock(_ input: ModuleInput, spec: MergeSpec, unitIDOffset: Int) throws -> UnitBlock {
        let terms = try input.factorTerms()
        let units = try RankOneUnits.extract(terms: terms, outFeatures: input.outFeatures, inFeatures: input.inFeatures,
                                             gauge: spec.lego.gauge == .raw ? .raw : .balanced,
                                             // `auto` needs two clusterings; split modules use svd.
                                             basis: spec.lego.basis == .raw ? .raw : .svd)
        var offsets: [Int] = []
        var running = 0
        for term in terms { offsets.append(running); running += term.rank }
        return UnitBlock(units: units, idOffset: UInt64(max(0, unitIDOffset)), termRankOffsets: offsets)
    }

    /// The whole split k-means of a module: every restart, then the principal-direction rounds (`direction:
    /// principal`) and the final statistics round; the quality rounds alongside.
    public static func kmeans(module: ModulePlan, spec: MergeSpec, blockCount: Int) -> SplitKMeans {
        SplitKMeans(configuration: configuration(module: module, spec: spec, blockCount: blockCount),
                    restarts: max(1, spec.lego.restarts),
                    quality: qualityTrack(module: module, spec: spec, blockCount: blockCount),
                    principalIterations: principalIterations(spec), refit: refitStart(module: module, spec: spec),
                    selection: selection(module: module, spec: spec))
    }

    /// lego's `refit` on a split module (nil when the job runs none): the rounds start from the factors the
    /// reweighting and assembly give the finished clustering (`assembled`), as in the unsplit method.
    public static func refitStart(module: ModulePlan, spec: MergeSpec) -> SplitKMeans.RefitStart? {
        guard spec.lego.effectiveRefit > 0 else { return nil }
        return SplitKMeans.RefitStart(rounds: spec.lego.effectiveRefit) { outcome in
            try BLAS.singleThreaded { try assembled(module: module, spec: spec, outcome: outcome) }
        }
    }

    /// lego's cluster → rank step on a finished clustering: each cluster's direction (its mean, or its principal
    /// rank-one) with its weight from the reduced statistics, assembled into B' [out, k], A' [k, in].
    static func assembled(module: ModulePlan, spec: MergeSpec, outcome: BlockKMeansOutcome) throws -> (b: [Float], a: [Float]) {
        let k = outcome.clusterCount
        let directions = outcome.directions ?? outcome.centroids
        let weights: [Double]
        if k == outcome.unitCount {
            // Every unit is its own cluster: weight 1 reproduces T under every reweighting (as unsplit lego).
            weights = [Double](repeating: 1, count: k)
        } else {
            do {
                weights = try ClusterReweighting(spec.lego.reweight).weights(outcome.statistics, centroids: directions)
            } catch {
                throw MergeError("module \(module.name): \(error)")
            }
        }
        return LegoMerge.assemble(centroids: directions, count: k, weights: weights, outFeatures: module.outFeatures,
                                  inFeatures: module.inFeatures)
    }

    /// Power iterations of the principal directions a split module runs (0: `direction: mean`), the unsplit
    /// method's count (at least one).
    public static func principalIterations(_ spec: MergeSpec) -> Int {
        spec.lego.effectiveDirection == .principal ? max(1, spec.lego.powerIterations) : 0
    }

    /// Lloyd steps the quality sketch's budget assumes (the clustering's own count is known only at its end).
    public static let typicalIterations = 5

    /// The quality rounds of a split module (`SplitQualityTrack`): none for `report: minimal`; only the exact
    /// round for `report: exact`; otherwise the estimation rounds from the start, with as many sketch evaluations
    /// (2–6) as fit what the probes leave of a quarter of lego's modelled flops, and the exact round after the
    /// clustering when the unsplit rule (with the iterations run) says exact fits. The rounds start before the
    /// iterations are known, so the sketch's budget takes min(cap, `typicalIterations`) Lloyd steps: the cap (100 by
    /// default) would let the sketch cost more than the clustering (measured: 6 evaluations, more task time than
    /// all Lloyd rounds, on a 960-adapter MLP module that ran 4 iterations).
    public static func qualityTrack(module: ModulePlan, spec: MergeSpec, blockCount: Int) -> SplitQualityTrack? {
        guard spec.report != .minimal else { return nil }
        let out = module.outFeatures, inFeatures = module.inFeatures, k = max(spec.rank, 1)
        let stacked = module.sources.reduce(0) { $0 + max($1.module.rank, 0) }
        let restarts = max(1, spec.lego.restarts)
        let model = ProductCostModel(rows: out, cols: inFeatures, inner: max(stacked, 1), rank: k, wantNorm: false)
        let width = model.krylovWidth, probes = QualityEstimator.probeCount
        let budget = SplitQualityTrack.budgetShare * SplitQualityTrack.legoMergeFlops(
            restarts: restarts, iterations: min(spec.lego.iterations, typicalIterations), stacked: stacked, rows: out,
            cols: inFeatures, rank: k)
        func cost(_ evaluations: Int) -> Double {
            model.application(width: probes + width) + Double(2 * evaluations - 1) * model.application(width: width)
        }
        var evaluations = 2
        while evaluations < 6, cost(evaluations + 1) <= budget { evaluations += 1 }
        return SplitQualityTrack(outFeatures: out, inFeatures: inFeatures, blockCount: blockCount, stacked: stacked,
                                 restarts: restarts, forcedExact: spec.report == .exact, probes: probes, width: width,
                                 rank: k, maxEvaluations: evaluations)
    }

    /// Runs every round in this process over blocks loaded once (the reference the distributed runtime matches).
    public static func mergeInProcess(_ module: ModulePlan, spec: MergeSpec) throws -> ModuleResult {
        guard let blocks = module.blocks, !blocks.isEmpty else {
            throw MergeError("module \(module.name): not split into blocks")
        }
        let loaded = try blocks.map { block in
            try unitBlock(try blockPlan(module, block: block).loadInput(), spec: spec, unitIDOffset: block.unitIDOffset)
        }
        var kmeans = kmeans(module: module, spec: spec, blockCount: blocks.count)
        try run(&kmeans, blocks: loaded)
        guard let outcome = kmeans.outcome else { throw MergeError("module \(module.name): split k-means did not finish") }
        return try result(module: module, spec: spec, outcome: outcome)
    }

    /// Runs the remaining rounds of `kmeans` here, block after block, one track after another (each track's rounds
    /// depend only on its own partials, so this order gives the coordinator's bytes).
    public static func run(_ kmeans: inout SplitKMeans, blocks: [UnitBlock]) throws {
        while let track = kmeans.activeTracks.first {
            let partials = try blocks.indices.map { b in
                guard let request = kmeans.request(track: track, block: b) else {
                    throw MergeError("split k-means track \(track) has no request for block \(b)")
                }
                return try BlockKMeans.compute(request, block: blocks[b], seed: kmeans.seed(track: track))
            }
            try kmeans.advance(track: track, with: partials)
        }
    }

    /// The module's merged factors from the finished clustering: lego's reweighting from the reduced per-cluster
    /// statistics, then the same assembly as the unsplit method.
    public static func result(module: ModulePlan, spec: MergeSpec, outcome: BlockKMeansOutcome) throws -> ModuleResult {
        try BLAS.singleThreaded { try resultSingleThreaded(module: module, spec: spec, outcome: outcome) }
    }

    private static func resultSingleThreaded(module: ModulePlan, spec: MergeSpec, outcome: BlockKMeansOutcome) throws -> ModuleResult {
        let k = outcome.clusterCount, out = module.outFeatures, inFeatures = module.inFeatures
        let statistics = outcome.statistics
        var stats = ModuleStats(relativeError: .nan, clusterSizes: outcome.clusterSizes, iterations: outcome.iterations,
                                finalDistance: outcome.finalObjective, clusterCoherence: statistics.coherence,
                                catchAllShare: statistics.catchAllShare())
        guard k > 0 else {
            stats.clusterSizes = []
            stats.relativeError = 0  // no units: T = 0, approximated exactly by zero (as unsplit modules)
            return ModuleResult(name: module.name, rank: 1, outFeatures: out, inFeatures: inFeatures,
                                b: [Float](repeating: 0, count: out), a: [Float](repeating: 0, count: inFeatures), stats: stats)
        }
        // What each cluster contributes before its weight: its mean, or (`direction: principal`) its members' best
        // rank-one from the power-iteration rounds, as in the unsplit method; `refit` continues from there.
        let (b, a) = try outcome.refitted ?? assembled(module: module, spec: spec, outcome: outcome)
        // What ran: oversampling when the k-means ran at more clusters than k; principal directions when the rounds ran.
        stats.direction = outcome.directions == nil ? LegoOptions.Direction.mean.rawValue : LegoOptions.Direction.principal.rawValue
        stats.powerIterations = outcome.directions == nil ? nil : outcome.powerIterations
        let clusters = clusteringCount(module: module, spec: spec)
        stats.oversample = clusters > spec.rank ? clusters / max(1, spec.rank) : 1
        stats.refit = outcome.refitRounds
        if spec.report == .minimal {
            stats.relativeError = 0
            stats.qualityOmitted = true
        } else if k == outcome.unitCount {
            // One cluster per unit reproduces T (as unsplit lego: nothing to compute).
            stats.relativeError = 0
            stats.svdFloor = 0
        } else if let track = outcome.quality {
            let quality: ProductQuality
            do {
                quality = try track.quality(approximationLeft: b, approximationRight: a, rank: k, seed: module.seed)
            } catch {
                throw MergeError("module \(module.name): quality figures: \(error)")
            }
            stats.relativeError = quality.relativeError
            stats.svdFloor = quality.floor
            if !track.exact {
                stats.qualityEstimated = true
                stats.relativeErrorStandardError = quality.relativeErrorStandardError
                stats.svdFloorStandardError = quality.floorStandardError
            }
        }
        return ModuleResult(name: module.name, rank: k, outFeatures: out, inFeatures: inFeatures, b: b, a: a, stats: stats)
    }
}
