/// lego's `oversample` for a split module, as rounds over its blocks: the split k-means ran at f·k fine clusters;
/// these rounds choose which k of them keep their own output rank, as the unsplit method's `selectClusters` does:
/// 1. the fine clusters' principal rank-ones (`PrincipalDirectionRounds` at f·k over the fine assignment),
/// 2. one statistics round against those rank-ones: h_s = Σ_i (x_B,i·μ_B,s)(x_A,i·μ_A,s), summed in block order,
/// 3. here: their Gram (`ClusterStatistics.centroidGram`) and h go through lego's greedy least-squares choice and
///    its rule for the other fine clusters (`Selection.targets`, above this layer: `LegoMerge.selectionTargets`),
///    and the merged clustering is formed from the fine one without another pass over the units: per-cluster
///    counts, aligned sums (members keep their fine signs, as unsplit) and norm sums are sums over fine clusters,
///    each block's assignment is mapped, and the centroids are the merged aligned means.
/// The merged clustering then goes through the usual final rounds (principal directions at k, statistics, refit).
///
/// The state (the rank-ones' rounds as two halves, h) round-trips exactly through `principal`'s halves,
/// `encodedStatistics()` and `decoding(left:right:statistics:fine:selection:)`; the merge is derived from it again on
/// decoding.
public struct ClusterSelectionRounds: Sendable {
    /// How fine clusters map to the kept ones: lego's rule, from the fine rank-ones' Gram [f·k, f·k] and h.
    public struct Selection: Sendable {
        /// The output rank k.
        public let rank: Int
        /// The cluster (0..<rank) each fine cluster joins.
        public let targets: @Sendable (_ gram: [Double], _ projections: [Double], _ fineCount: Int) throws -> [Int]

        public init(rank: Int,
                    targets: @escaping @Sendable (_ gram: [Double], _ projections: [Double], _ fineCount: Int) throws -> [Int]) {
            self.rank = max(1, rank)
            self.targets = targets
        }
    }

    public let fineCount: Int
    public let rank: Int
    public let outFeatures: Int
    public let inFeatures: Int
    /// The fine clusters' principal rank-ones.
    public private(set) var principal: PrincipalDirectionRounds
    /// h against the rank-ones (nil before its round).
    public private(set) var projections: [Double]?
    /// The merged clustering (nil until the selection ran).
    public private(set) var merged: BlockKMeansOutcome?

    public init(fine: BlockKMeansOutcome, rank: Int, outFeatures: Int, inFeatures: Int, iterations: Int) {
        fineCount = fine.clusterCount
        self.rank = rank
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        principal = PrincipalDirectionRounds(centroids: fine.centroids, clusterCount: fine.clusterCount,
                                             outFeatures: outFeatures, inFeatures: inFeatures, iterations: iterations)
    }

    /// Block rounds reduced so far.
    public var step: Int { principal.step + (projections == nil ? 0 : 1) }
    public var isDone: Bool { merged != nil }

    /// Block `b`'s request for the next round (nil when the rounds are done).
    public func request(round: Int, assignment: [UInt32]) -> BlockRoundRequest? {
        if !principal.isDone { return principal.request(round: round, assignment: assignment) }
        guard projections == nil, let rankOnes = principal.units else { return nil }
        return BlockRoundRequest(kind: .reweight, round: round, centers: rankOnes, centerCount: fineCount)
    }

    /// Checks one block's answer against the next round.
    public func validate(_ partial: BlockPartial, units: Int? = nil) throws {
        if !principal.isDone { return try principal.validate(partial, units: units) }
        guard projections == nil else { throw problem("the selection rounds are already done") }
        guard partial.kind == .reweight, partial.perCenter.count == fineCount, partial.perCenter.allSatisfy(\.isFinite),
              partial.unitCount >= 0, units.map({ $0 == partial.unitCount }) ?? true else {
            throw problem("selection statistics partial does not have \(fineCount) finite values for its block's units")
        }
    }

    /// Reduces the next round (partials in block order); after the statistics round, selects and merges.
    public mutating func advance(with partials: [BlockPartial], blockUnits: [Int]?, fine: BlockKMeansOutcome,
                                 selection: Selection) throws {
        if !principal.isDone {
            try principal.advance(with: partials, blockUnits: blockUnits)
            return
        }
        for (b, partial) in partials.enumerated() { try validate(partial, units: blockUnits?[b]) }
        var h = [Double](repeating: 0, count: fineCount)
        for partial in partials { for s in 0..<fineCount { h[s] += partial.perCenter[s] } }
        projections = h
        try select(fine: fine, selection: selection)
    }

    /// Once h is known: the merged clustering (also what decoding runs again).
    mutating func select(fine: BlockKMeansOutcome, selection: Selection) throws {
        guard let h = projections, let rankOnes = principal.units, merged == nil else { return }
        let gram = ClusterStatistics(k: fineCount, outFeatures: outFeatures, inFeatures: inFeatures).centroidGram(rankOnes)
        let targets = try selection.targets(gram, h, fineCount)
        guard targets.count == fineCount, targets.allSatisfy({ (0..<rank).contains($0) }) else {
            throw problem("the selection mapped \(targets.count) fine clusters outside 0..<\(rank)")
        }
        merged = Self.merge(fine, targets: targets, rank: rank)
    }

    /// The clustering of `fine` with fine cluster c moved to `targets[c]`: statistics added in fine-cluster order.
    static func merge(_ fine: BlockKMeansOutcome, targets: [Int], rank k: Int) -> BlockKMeansOutcome {
        let source = fine.statistics
        var statistics = ClusterStatistics(k: k, outFeatures: source.outFeatures, inFeatures: source.inFeatures)
        let dimension = source.dimension
        statistics.alignedSums.withUnsafeMutableBufferPointer { s in
            source.alignedSums.withUnsafeBufferPointer { f in
                guard let s = s.baseAddress, let f = f.baseAddress else { return }
                for (c, t) in targets.enumerated() {
                    BLAS.axpy(dimension, alpha: 1, x: f + c * dimension, y: s + t * dimension)
                }
            }
        }
        for (c, t) in targets.enumerated() {
            statistics.counts[t] += source.counts[c]
            statistics.normSums[t] += source.normSums[c]
            statistics.normSquaredSums[t] += source.normSquaredSums[c]
        }
        var merged = fine
        merged.clusterCount = k
        merged.statistics = statistics
        merged.centroids = statistics.centroids
        merged.clusterSizes = statistics.counts
        merged.assignment = fine.assignment.map { block in block.map { UInt32(targets[Int($0)]) } }
        return merged
    }

    private func problem(_ text: String) -> KernelShapeError {
        KernelShapeError(kernel: "cluster selection round \(step)", problem: text)
    }

    // MARK: checkpoint

    /// h once its round was reduced (nil before): the part of the state the statistics round changes. The rank-ones'
    /// rounds are checkpointed as `principal`'s halves.
    public func encodedStatistics() -> [UInt8]? {
        guard let projections else { return nil }
        var w = ByteWriter()
        w.int(fineCount); w.int(rank); w.doubles(projections)
        return w.bytes
    }

    /// This (freshly made) state advanced to the rank-ones' halves (`PrincipalDirectionRounds.decoding(left:right:)`)
    /// and h (`encodedStatistics()`), merged again if h was reduced.
    public func decoding(left: [UInt8]?, right: [UInt8]?, statistics: [UInt8]?, fine: BlockKMeansOutcome,
                         selection: Selection) throws -> ClusterSelectionRounds {
        var state = self
        state.principal = try principal.decoding(left: left, right: right)
        if let statistics {
            var r = ByteReader(statistics, what: "cluster selection statistics")
            guard try r.int() == fineCount, try r.int() == rank else { throw problem("state written for another clustering") }
            let h = try r.doubles()
            try r.finish()
            guard h.count == fineCount, state.principal.isDone else {
                throw problem("selection statistics of the wrong shape or before the rank-ones")
            }
            state.projections = h
        }
        try state.select(fine: fine, selection: selection)
        return state
    }
}
