/// Settings of one split module's k-means. Part of the result's definition: the block count fixes the
/// reduction order, the seed the counter keys.
public struct BlockKMeansConfiguration: Sendable, Equatable {
    public var k: Int
    public var dimension: Int
    public var outFeatures: Int
    public var seed: UInt64
    public var iterations: Int
    public var tolerance: Double
    public var blockCount: Int
    /// k-means|| oversampling rounds (Bahmani et al. use 5) and draws per round ℓ = factor · k.
    public var seedingRounds: Int
    public var oversamplingFactor: Double
    /// Farthest units each block reports per Lloyd round (refills of empty clusters).
    public var farthest: Int
    /// Run the final statistics round (lego's optimal reweighting needs it).
    public var reweightRound: Bool

    public init(k: Int, dimension: Int, outFeatures: Int, seed: UInt64, iterations: Int, tolerance: Double,
                blockCount: Int, reweightRound: Bool, seedingRounds: Int = 5, oversamplingFactor: Double = 2) {
        self.k = max(1, k)
        self.dimension = dimension
        self.outFeatures = outFeatures
        self.seed = seed
        self.iterations = max(0, iterations)
        self.tolerance = max(0, tolerance)
        self.blockCount = blockCount
        self.seedingRounds = max(1, seedingRounds)
        self.oversamplingFactor = oversamplingFactor
        self.farthest = min(self.k, 16)
        self.reweightRound = reweightRound
    }

    var oversampling: Double { oversamplingFactor * Double(k) }

    fileprivate func write(_ w: inout ByteWriter) {
        w.int(k); w.int(dimension); w.int(outFeatures); w.u64(seed); w.int(iterations); w.double(tolerance)
        w.int(blockCount); w.int(seedingRounds); w.double(oversamplingFactor); w.int(farthest); w.int(reweightRound ? 1 : 0)
    }
}

/// Where a split k-means stands.
public enum BlockKMeansPhase: Sendable, Equatable {
    case firstCenter
    /// k-means|| oversampling round `n` (1-based): the blocks' distances to the newest candidates and costs.
    case oversample(Int)
    /// The draws of seeding round `n`, against the module's cost φ the oversampling round just summed.
    case draw(Int)
    case candidateWeights
    case lloyd
    case reweight
    case done
}

/// What a finished split k-means hands to the lego reweighting and output assembly.
public struct BlockKMeansOutcome: Sendable {
    public var clusterCount: Int
    /// Row-major [clusterCount, dimension]: aligned means of the final assignment.
    public var centroids: [Float]
    public var clusterSizes: [Int]
    /// The final assignment's per-cluster statistics reduced over the blocks (projections h from the reweight
    /// round when it ran): what lego's reweighting and cluster report need.
    public var statistics: ClusterStatistics
    public var normSums: [Double] { statistics.normSums }
    public var projections: [Double]? { statistics.projections }
    public var iterations: Int
    public var objectiveHistory: [Double]
    public var unitCount: Int
    /// The restart kept (`SplitKMeans`; 0 for a single run).
    public var restart: Int = 0
    /// The finished quality rounds (`SplitKMeans`; nil when the job asked for no quality figures).
    public var quality: SplitQualityTrack?
    /// Per block, the final assignment of its units (what the clustering's statistics are of).
    public var assignment: [[UInt32]] = []
    /// `direction: principal` (`SplitKMeans`): each cluster's best rank-one unit [√σ u ; √σ v], row-major
    /// [clusterCount, dimension], used in place of `centroids` by the reweighting and the assembly; nil: the means.
    public var directions: [Float]?
    /// Power iterations the principal directions ran, the most any cluster ran before it stopped (0: the means
    /// were used).
    public var powerIterations = 0
    /// `refit` (`SplitKMeans`): the factors after the refit rounds (B' [out, k], A' [k, in]), used in place of the
    /// assembly of the weighted directions; nil: no refit ran.
    public var refitted: (b: [Float], a: [Float])?
    /// Refit rounds run (0: none).
    public var refitRounds = 0
    public var finalObjective: Double { objectiveHistory.last ?? 0 }
}

/// The coordinator side of the split k-means: a pure state machine over rounds. `request()` says what every block
/// computes next; `advance(with:)` reduces the blocks' partials in block order (fixed-order floating point) and
/// moves on. The state round-trips exactly through `encoded()` / `init(decoding:)`, so a coordinator checkpoints it
/// after every round and a restarted one resumes at that round with identical bytes. The in-process reference runs
/// the same machine with the same block computations, so a split module's bytes do not depend on who computed it.
///
/// Rounds: the first center (smallest counter key), `seedingRounds` k-means|| seeding rounds, each an oversampling
/// round (the blocks' D² to the newest candidates and their costs, summed to φ) then a draw round (a unit is drawn
/// when u·φ < ℓ·D², u from its counter key; two rounds so that only kept draws travel), the candidates' weights, the weighted greedy k-means++ and Lloyd on
/// the candidates here (small), then Lloyd rounds over the blocks exactly like `SignInvariantKMeans`' loop
/// (tolerance, empty-cluster rule on the reported farthest units), then optionally the reweight statistics.
public struct BlockKMeansDriver: Sendable {
    public let configuration: BlockKMeansConfiguration
    public private(set) var phase: BlockKMeansPhase = .firstCenter
    /// Rounds reduced so far (the next request's round number).
    public private(set) var round = 0
    public private(set) var unitCount = 0
    private(set) var candidates: [Float] = []
    private(set) var candidateCount = 0
    /// Candidates drawn before the latest seeding round's (the next seeding round sends only the newer ones).
    private(set) var groupStart = 0
    /// Per block, its units' nearest candidate so far (seeding rounds only; empty otherwise).
    private(set) var nearest: [NearestCandidates?] = []
    private(set) var cost = 0.0
    private(set) var centroids: [Float] = []
    private(set) var clusterCount = 0
    private(set) var history: [Double] = []
    private(set) var iterations = 0
    private(set) var lloydRounds = 0
    private(set) var clusterSizes: [Int] = []
    private(set) var normSums: [Double] = []
    private(set) var normSquaredSums: [Double] = []
    private(set) var alignedSums: [Float] = []
    private(set) var projections: [Double]?
    /// Per block, its units' clusters in the final assignment (the last Lloyd round's, with that round's refills of
    /// empty clusters applied): what the principal-direction rounds send back to each block. Empty until done.
    public private(set) var finalAssignment: [[UInt32]] = []

    public init(configuration: BlockKMeansConfiguration) {
        self.configuration = configuration
    }

    public var isDone: Bool { phase == .done }

    /// What block `block` computes in the next round: `request()` plus the block's own nearest-candidate state in
    /// seeding rounds. nil when done.
    public func request(block: Int) -> BlockRoundRequest? {
        guard var request = request() else { return nil }
        if request.kind == .oversample || request.kind == .draw || request.kind == .candidateWeights,
           nearest.indices.contains(block) {
            request.nearest = nearest[block]
        }
        return request
    }

    /// What every block computes in the next round, without per-block state; nil when done. Without
    /// `includingCenters` the centers are left out (what checking a partial needs: no copy of the candidates).
    public func request(includingCenters: Bool = true) -> BlockRoundRequest? {
        var newCandidates: [Float] { includingCenters ? self.newCandidates : [] }
        switch phase {
        case .firstCenter:
            return BlockRoundRequest(kind: .firstCenter, round: round)
        case .oversample:
            return BlockRoundRequest(kind: .oversample, round: round, centers: newCandidates,
                                     centerCount: candidateCount - groupStart, centerOffset: groupStart)
        case .draw(let n):
            // Keyed by the seeding round n (not the reduction count), so the draws of round n do not depend on how
            // many rounds came before it.
            return BlockRoundRequest(kind: .draw, round: n, oversampling: configuration.oversampling,
                                     centerOffset: candidateCount, cost: cost)
        case .candidateWeights:
            return BlockRoundRequest(kind: .candidateWeights, round: round, centers: newCandidates,
                                     centerCount: candidateCount - groupStart, centerOffset: groupStart)
        case .lloyd:
            return BlockRoundRequest(kind: .lloyd, round: round, centers: centroids, centerCount: clusterCount,
                                     farthest: configuration.farthest)
        case .reweight:
            return BlockRoundRequest(kind: .reweight, round: round, centers: centroids, centerCount: clusterCount)
        case .done:
            return nil
        }
    }

    /// The candidates drawn by the latest seeding round (all of them after the first center): what every block's
    /// next seeding request carries, copied out once per round (one storage for all blocks, so comparing the
    /// blocks' centers is free and they are sent once).
    private var newCandidates: [Float] = []

    /// The finished clustering; nil until done.
    public var outcome: BlockKMeansOutcome? {
        guard phase == .done else { return nil }
        var statistics = ClusterStatistics(k: clusterCount, outFeatures: configuration.outFeatures,
                                           inFeatures: configuration.dimension - configuration.outFeatures)
        if clusterCount > 0 {
            statistics.counts = clusterSizes
            statistics.alignedSums = alignedSums
            statistics.normSums = normSums
            statistics.normSquaredSums = normSquaredSums
            statistics.projections = projections
        }
        return BlockKMeansOutcome(clusterCount: clusterCount, centroids: centroids, clusterSizes: clusterSizes,
                                  statistics: statistics, iterations: iterations,
                                  objectiveHistory: history, unitCount: unitCount, assignment: finalAssignment)
    }

    /// Checks one block's answer against the current request (the coordinator calls it on receipt, so a bad
    /// partial is retried on its block instead of reaching the reduction).
    public func validate(_ partial: BlockPartial) throws {
        guard let request = request(includingCenters: false) else { throw problem("module k-means is already done") }
        let dim = configuration.dimension, m = request.centerCount, candidates = request.centerOffset + m
        guard partial.kind == request.kind else { throw problem("partial of kind \(partial.kind), round needs \(request.kind)") }
        guard partial.unitCount >= 0, partial.cost.isFinite, partial.cost >= 0 else {
            throw problem("unit count \(partial.unitCount) or cost \(partial.cost) is invalid")
        }
        for unit in partial.units where unit.vector.count != dim || !unit.first.isFinite && partial.kind != .firstCenter {
            throw problem("reported unit \(unit.id) has \(unit.vector.count) values (dimension \(dim)) or a non-finite value")
        }
        switch request.kind {
        case .firstCenter:
            guard partial.units.count == (partial.unitCount > 0 ? 1 : 0) else { throw problem("first center must report one unit per non-empty block") }
        case .oversample:
            guard partial.units.isEmpty else { throw problem("an oversampling partial reports no units (draws are the next round)") }
            guard let nearest = partial.nearest, nearest.count == partial.unitCount else {
                throw problem("oversampling partial without the nearest candidate of each of its \(partial.unitCount) units")
            }
            do { try nearest.check(candidates: candidates) } catch { throw problem("\(error)") }
        case .draw:
            // Every reported unit must be one the rule keeps: the reduction appends them all.
            guard partial.units.count <= partial.unitCount, partial.nearest == nil, partial.cost == 0,
                  partial.units.allSatisfy({ $0.first >= 0 && $0.first < 1 && $0.second > 0
                      && $0.first * request.cost < request.oversampling * $0.second }) else {
                throw problem("draw partial reports more units than it has or a unit the draw rule does not keep")
            }
        case .candidateWeights:
            guard partial.counts.count == candidates, partial.counts.allSatisfy({ $0 >= 0 }),
                  partial.counts.reduce(0, +) == partial.unitCount else {
                throw problem("candidate counts do not match \(candidates) candidates and \(partial.unitCount) units")
            }
        case .lloyd:
            guard partial.counts.count == m, partial.counts.allSatisfy({ $0 >= 0 }), partial.counts.reduce(0, +) == partial.unitCount,
                  partial.sums.count == m * dim, partial.perCenter.count == m, partial.perCenterSquares.count == m,
                  partial.units.count <= min(request.farthest, partial.unitCount),
                  let assignment = partial.assignment, assignment.count == partial.unitCount,
                  assignment.allSatisfy({ Int($0) < m }),
                  partial.units.allSatisfy({ (0..<m).contains($0.cluster) && abs($0.sign) == 1
                      && (0..<partial.unitCount).contains($0.index) && Int(assignment[$0.index]) == $0.cluster }) else {
                throw problem("Lloyd partial does not match \(m) centroids of dimension \(dim) (or its assignment does not)")
            }
        case .reweight:
            guard partial.perCenter.count == m, partial.perCenter.allSatisfy(\.isFinite) else {
                throw problem("reweight partial does not have \(m) finite values")
            }
        case .probeImage, .target, .targetTimes, .targetTransposedTimes, .principalStart, .principalLeft, .principalRight,
             .refitLeft, .refitRight:
            throw problem("a k-means run has no \(request.kind) round")
        }
    }

    private func problem(_ text: String) -> KernelShapeError {
        KernelShapeError(kernel: "BlockKMeans round \(round)", problem: text)
    }

    /// Reduces one round's partials (one per block, in block order) and moves to the next round.
    public mutating func advance(with partials: [BlockPartial]) throws {
        // One BLAS thread, like every merge: the reclustering's GEMMs change bits with the thread count.
        try BLAS.singleThreaded { try advanceSingleThreaded(with: partials) }
    }

    private mutating func advanceSingleThreaded(with partials: [BlockPartial]) throws {
        guard partials.count == configuration.blockCount else {
            throw problem("\(partials.count) partials for \(configuration.blockCount) blocks")
        }
        for partial in partials { try validate(partial) }
        switch phase {
        case .firstCenter: reduceFirstCenter(partials)
        case .oversample(let n): reduceOversample(partials, seedingRound: n)
        case .draw(let n): reduceDraw(partials, seedingRound: n)
        case .candidateWeights: reduceCandidateWeights(partials)
        case .lloyd: reduceLloyd(partials)
        case .reweight:
            var h = [Double](repeating: 0, count: clusterCount)
            for partial in partials { for s in 0..<clusterCount { h[s] += partial.perCenter[s] } }
            projections = h
            phase = .done
        case .done: throw problem("module k-means is already done")
        }
        round += 1
        newCandidates = candidates.isEmpty ? [] : Array(candidates[(groupStart * configuration.dimension)...])
    }

    private mutating func reduceFirstCenter(_ partials: [BlockPartial]) {
        unitCount = partials.reduce(0) { $0 + $1.unitCount }
        var best: ReportedUnit?
        for partial in partials {
            for unit in partial.units where unit.first.bitPattern < (best?.first.bitPattern ?? .max) || best == nil {
                best = unit
            }
        }
        guard let best else {
            // No unit at all: nothing to cluster.
            history = [0]
            phase = .done
            return
        }
        candidates = best.vector
        candidateCount = 1
        groupStart = 0
        phase = .oversample(1)
    }

    private mutating func reduceOversample(_ partials: [BlockPartial], seedingRound n: Int) {
        var phi = 0.0
        for partial in partials { phi += partial.cost }
        cost = phi
        nearest = partials.map(\.nearest)
        groupStart = candidateCount
        phase = phi > 0 ? .draw(n) : .candidateWeights
    }

    /// Appends round n's draws as candidates, in block order then unit order (each block reports only the units the
    /// rule u·φ < ℓ·D² keeps, checked by `validate`).
    private mutating func reduceDraw(_ partials: [BlockPartial], seedingRound n: Int) {
        let drawn = partials.reduce(0) { $0 + $1.units.count }
        candidates.reserveCapacity(candidates.count + drawn * configuration.dimension)
        for partial in partials {
            for unit in partial.units {
                candidates += unit.vector
                candidateCount += 1
            }
        }
        phase = n < configuration.seedingRounds ? .oversample(n + 1) : .candidateWeights
    }

    private mutating func reduceCandidateWeights(_ partials: [BlockPartial]) {
        var weights = [Int](repeating: 0, count: candidateCount)
        for partial in partials { for c in 0..<candidateCount { weights[c] += partial.counts[c] } }
        let local = CandidateClustering.cluster(points: candidates, weights: weights.map(Double.init), count: candidateCount,
                                                dimension: configuration.dimension, k: configuration.k,
                                                seed: configuration.seed)
        centroids = local.centroids
        clusterCount = local.count
        // The candidates are not needed any more; keep the checkpoint small.
        candidates = []
        candidateCount = 0
        groupStart = 0
        nearest = []
        phase = .lloyd
    }

    private mutating func reduceLloyd(_ partials: [BlockPartial]) {
        let k = clusterCount, dim = configuration.dimension
        var sums = partials[0].sums
        var counts = [Int](repeating: 0, count: k)
        var norms = [Double](repeating: 0, count: k), squares = [Double](repeating: 0, count: k)
        var objective = 0.0
        var far: [(block: Int, unit: ReportedUnit)] = []
        for (b, partial) in partials.enumerated() {
            if b > 0 {
                sums.withUnsafeMutableBufferPointer { s in
                    partial.sums.withUnsafeBufferPointer { n in
                        guard let s = s.baseAddress, let n = n.baseAddress else { return }
                        BLAS.axpy(k * dim, alpha: 1, x: n, y: s)
                    }
                }
            }
            for c in 0..<k {
                counts[c] += partial.counts[c]
                norms[c] += partial.perCenter[c]
                squares[c] += partial.perCenterSquares[c]
            }
            objective += partial.cost
            far += partial.units.map { (b, $0) }
        }
        let previous = history.last
        if lloydRounds == 0 {
            history = [objective]
        } else {
            iterations += 1
            history.append(objective)
        }
        lloydRounds += 1
        var converged = false
        if lloydRounds > 1, let previous, configuration.tolerance > 0 {
            converged = previous <= 0 || (previous - objective) < configuration.tolerance * previous
        }
        // Empty clusters take the farthest reported units (distance descending, id ascending) from clusters with at
        // least two members, as `SignInvariantKMeans.updateCentroids` does with all units.
        let empty = (0..<k).filter { counts[$0] == 0 }
        var moves: [(block: Int, index: Int, cluster: Int)] = []
        if !empty.isEmpty {
            let order = far.sorted { $0.unit.first != $1.unit.first ? $0.unit.first > $1.unit.first : $0.unit.id < $1.unit.id }
            var next = 0
            sums.withUnsafeMutableBufferPointer { s in
                guard let s = s.baseAddress else { return }
                for c in empty {
                    while next < order.count && counts[order[next].unit.cluster] < 2 { next += 1 }
                    guard next < order.count else { break }
                    let (block, unit) = order[next]
                    next += 1
                    moves.append((block, unit.index, c))
                    unit.vector.withUnsafeBufferPointer { x in
                        guard let x = x.baseAddress else { return }
                        BLAS.axpy(dim, alpha: -unit.sign, x: x, y: s + unit.cluster * dim)
                        BLAS.copy(dim, x: x, y: s + c * dim)
                    }
                    counts[unit.cluster] -= 1
                    norms[unit.cluster] -= unit.second
                    squares[unit.cluster] -= unit.second * unit.second
                    counts[c] = 1
                    norms[c] = unit.second
                    squares[c] = unit.second * unit.second
                }
            }
        }
        let finalSums = sums
        sums.withUnsafeMutableBufferPointer { m in
            guard let m = m.baseAddress else { return }
            for c in 0..<k where counts[c] > 0 { BLAS.scal(dim, alpha: 1 / Float(counts[c]), x: m + c * dim) }
        }
        centroids = sums
        if iterations < configuration.iterations && !converged { return }
        clusterSizes = counts
        normSums = norms
        normSquaredSums = squares
        alignedSums = finalSums
        finalAssignment = partials.map { $0.assignment ?? [] }
        for move in moves { finalAssignment[move.block][move.index] = UInt32(move.cluster) }
        phase = configuration.reweightRound ? .reweight : .done
    }

    // MARK: checkpoint

    static let magic: [UInt8] = Array("BYKMS004".utf8)

    /// The seeding candidates drawn so far, row-major [count, dimension] (empty outside seeding). They only grow
    /// until the candidate weights round clears them, so a checkpoint can keep them in an append-only log
    /// (`encoded(candidates: false)`): the previous checkpoint already held the first `candidatesKept` floats.
    public var seedingCandidates: [Float] { candidates }
    public var candidatesKept: Int { candidates.isEmpty ? 0 : groupStart * configuration.dimension }

    /// The whole state, bit-exact; without the seeding candidates when `candidates` is false (they are then
    /// handed to `init(decoding:configuration:candidates:)` from elsewhere).
    public func encoded(candidates withCandidates: Bool = true) -> [UInt8] {
        var w = ByteWriter()
        configuration.write(&w)
        let phaseCode: Int, phaseArgument: Int
        switch phase {
        case .firstCenter: (phaseCode, phaseArgument) = (0, 0)
        case .oversample(let n): (phaseCode, phaseArgument) = (1, n)
        case .candidateWeights: (phaseCode, phaseArgument) = (2, 0)
        case .lloyd: (phaseCode, phaseArgument) = (3, 0)
        case .reweight: (phaseCode, phaseArgument) = (4, 0)
        case .done: (phaseCode, phaseArgument) = (5, 0)
        case .draw(let n): (phaseCode, phaseArgument) = (6, n)
        }
        w.int(phaseCode); w.int(phaseArgument); w.int(round); w.int(unitCount)
        w.floats(withCandidates ? candidates : []); w.int(candidateCount); w.double(cost)
        w.floats(centroids); w.int(clusterCount); w.doubles(history); w.int(iterations); w.int(lloydRounds)
        w.ints(clusterSizes); w.doubles(normSums); w.doubles(normSquaredSums); w.floats(alignedSums)
        w.int(projections == nil ? 0 : 1); w.doubles(projections ?? [])
        w.int(groupStart); w.int(nearest.count)
        for state in nearest {
            let bytes = state?.encoded()
            w.int(bytes == nil ? 0 : 1); w.int(bytes?.count ?? 0); w.append(bytes ?? [])
        }
        w.int(finalAssignment.count)
        for block in finalAssignment { w.u32s(block) }
        return Self.magic + w.bytes
    }

    /// Restores a state written by `encoded()` for the same configuration (by `encoded(candidates: false)` with
    /// the candidates given as `external`); throws on anything else.
    public init(decoding bytes: [UInt8], configuration: BlockKMeansConfiguration, candidates external: [Float]? = nil) throws {
        self.configuration = configuration
        guard bytes.count >= Self.magic.count, Array(bytes[0..<Self.magic.count]) == Self.magic else {
            throw KernelShapeError(kernel: "BlockKMeans state", problem: "bad magic")
        }
        var expected = ByteWriter()
        configuration.write(&expected)
        let body = Array(bytes[Self.magic.count...])
        guard body.count >= expected.bytes.count, Array(body[0..<expected.bytes.count]) == expected.bytes else {
            throw KernelShapeError(kernel: "BlockKMeans state", problem: "written for another block plan or options")
        }
        var r = ByteReader(Array(body[expected.bytes.count...]), what: "BlockKMeans state")
        let phaseCode = try r.bounded(6, "phase"), phaseArgument = try r.bounded(configuration.seedingRounds, "seeding round")
        switch phaseCode {
        case 0: phase = .firstCenter
        case 1: phase = .oversample(max(1, phaseArgument))
        case 2: phase = .candidateWeights
        case 3: phase = .lloyd
        case 4: phase = .reweight
        case 6: phase = .draw(max(1, phaseArgument))
        default: phase = .done
        }
        round = try r.bounded(Int(Int32.max), "round")
        unitCount = try r.bounded(Int(Int32.max), "unit count")
        candidates = try r.floats(); candidateCount = try r.bounded(Int(Int32.max), "candidates"); cost = try r.double()
        if let external {
            guard candidates.isEmpty else {
                throw KernelShapeError(kernel: "BlockKMeans state", problem: "candidates both in the state and apart")
            }
            candidates = external
        }
        centroids = try r.floats(); clusterCount = try r.bounded(configuration.k, "clusters")
        history = try r.doubles(); iterations = try r.bounded(configuration.iterations, "iterations")
        lloydRounds = try r.bounded(Int(Int32.max), "Lloyd rounds")
        clusterSizes = try r.ints(); normSums = try r.doubles(); normSquaredSums = try r.doubles()
        alignedSums = try r.floats()
        let hasProjections = try r.bounded(1, "projections flag")
        let h = try r.doubles()
        projections = hasProjections == 1 ? h : nil
        groupStart = try r.bounded(candidateCount, "candidate group start")
        let blocks = try r.bounded(configuration.blockCount, "nearest-candidate states")
        nearest = try (0..<blocks).map { _ in
            let present = try r.bounded(1, "nearest flag")
            let bytes = Array(try r.raw(count: try r.count(elementBytes: 1)))
            return present == 1 ? try NearestCandidates.decode(bytes, candidates: candidateCount) : nil
        }
        let assignedBlocks = try r.bounded(configuration.blockCount, "assignment blocks")
        finalAssignment = try (0..<assignedBlocks).map { _ in try r.u32s() }
        try r.finish()
        let dim = configuration.dimension
        guard candidates.count == candidateCount * dim, centroids.count == clusterCount * dim else {
            throw KernelShapeError(kernel: "BlockKMeans state", problem: "centers do not match their counts")
        }
        newCandidates = candidates.isEmpty ? [] : Array(candidates[(groupStart * dim)...])
        let assigned = finalAssignment.reduce(0) { $0 + $1.count }
        guard finalAssignment.isEmpty || assignedBlocks == configuration.blockCount && assigned == unitCount
                && finalAssignment.allSatisfy({ $0.allSatisfy { Int($0) < clusterCount } }) else {
            throw KernelShapeError(kernel: "BlockKMeans state", problem: "final assignment does not match the units or clusters")
        }
    }
}

/// The k-means|| reclustering step: the weighted candidates (a few hundred points) are clustered into k here, by
/// weighted greedy k-means++ then weighted sign-invariant Lloyd (at most 20 steps, until assignments stop changing).
enum CandidateClustering {
    static func cluster(points: [Float], weights: [Double], count m: Int, dimension dim: Int, k: Int,
                        seed: UInt64) -> (centroids: [Float], count: Int) {
        guard m > k else { return (points, m) }
        let norms = SignInvariantKMeans.rowNormsSquared(points, count: m, dimension: dim)
        // All pairwise dot products once: seeding reads them instead of the points.
        let gram = BLAS.matmul(points, points, m: m, n: m, k: dim, transB: .transpose)
        func d(_ i: Int, _ j: Int) -> Double {
            i == j ? 0 : SignInvariantKMeans.distance(unitNormSquared: norms[i], centroidNormSquared: norms[j], dot: gram[i * m + j])
        }
        var random = DeterministicRandom(seed: CounterRandom.streamKey(seed: seed, stream: 0x6b6d_6c6c))
        let draws = KMeansOptions().candidates(k: k)
        var chosen: [Int] = []
        var nearest = [Double](repeating: .infinity, count: m)
        func draw(_ mass: [Double]) -> Int? {
            var cumulative = [Double](repeating: 0, count: m)
            var total = 0.0
            for i in 0..<m { total += mass[i]; cumulative[i] = total }
            guard total > 0 else { return nil }
            return SignInvariantKMeans.drawProportional(cumulative, target: random.nextUnitDouble() * total)
        }
        let first = draw(weights) ?? 0
        chosen.append(first)
        for i in 0..<m { nearest[i] = d(i, first) }
        while chosen.count < k {
            let mass = (0..<m).map { weights[$0] * nearest[$0] }
            let picks: [Int]
            if mass.contains(where: { $0 > 0 }) {
                picks = (0..<draws).compactMap { _ in draw(mass) }
            } else {
                picks = [(0..<m).first { !chosen.contains($0) } ?? 0]
            }
            var best = picks[0], bestPotential = Double.infinity
            for pick in picks {
                var potential = 0.0
                for i in 0..<m { potential += weights[i] * min(nearest[i], d(i, pick)) }
                if potential < bestPotential { bestPotential = potential; best = pick }
            }
            chosen.append(best)
            for i in 0..<m { nearest[i] = min(nearest[i], d(i, best)) }
        }
        var centroids = [Float](repeating: 0, count: k * dim)
        for (c, i) in chosen.enumerated() { for j in 0..<dim { centroids[c * dim + j] = points[i * dim + j] } }
        var assignment = [Int](repeating: -1, count: m)
        for _ in 0..<20 {
            let centroidNorms = SignInvariantKMeans.rowNormsSquared(centroids, count: k, dimension: dim)
            let dots = BLAS.matmul(points, centroids, m: m, n: k, k: dim, transB: .transpose)
            var changed = false
            var sums = [Double](repeating: 0, count: k * dim)
            var mass = [Double](repeating: 0, count: k)
            for i in 0..<m {
                var best = 0, bestDistance = Double.infinity
                for c in 0..<k {
                    let dist = SignInvariantKMeans.distance(unitNormSquared: norms[i], centroidNormSquared: centroidNorms[c],
                                                            dot: dots[i * k + c])
                    if dist < bestDistance { bestDistance = dist; best = c }
                }
                if assignment[i] != best { changed = true; assignment[i] = best }
                let sign: Double = dots[i * k + best] < 0 ? -1 : 1
                mass[best] += weights[i]
                for j in 0..<dim { sums[best * dim + j] += sign * weights[i] * Double(points[i * dim + j]) }
            }
            guard changed else { break }
            for c in 0..<k where mass[c] > 0 {
                for j in 0..<dim { centroids[c * dim + j] = Float(sums[c * dim + j] / mass[c]) }
            }
        }
        return (centroids, k)
    }
}
