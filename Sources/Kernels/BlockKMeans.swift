/// One block of a split module's units, with stable ids: a unit's id is Σ ranks of the module's inputs before its
/// input plus its rank index, so it depends on the job alone (not on which units were dropped, nor on the block
/// plan or the worker). Ids increase within a block and from block to block.
public struct UnitBlock: Sendable {
    public let dimension: Int
    /// B part of each unit: `outFeatures` leading entries (the A part follows).
    public let outFeatures: Int
    public let count: Int
    /// Row-major [count, dimension].
    public let vectors: [Float]
    public let normsSquared: [Double]
    /// ‖x‖ of each unit by nrm2 (scaled, the bits `ClusterStatistics.block` takes): computed once here, because
    /// every Lloyd round reports Σ‖x‖ and Σ‖x‖² per cluster (recomputed per round it was ~9 % of a worker's CPU).
    public let norms: [Double]
    public let ids: [UInt64]

    public init(units: RankOneUnits, idOffset: UInt64, termRankOffsets: [Int]) {
        dimension = units.dimension
        outFeatures = units.outFeatures
        count = units.count
        vectors = units.vectors
        normsSquared = SignInvariantKMeans.rowNormsSquared(units.vectors, count: units.count, dimension: units.dimension)
        norms = Self.rowNorms(units.vectors, count: units.count, dimension: units.dimension)
        ids = units.sources.map { idOffset + UInt64(termRankOffsets[$0.term] + $0.rank) }
    }

    /// A block from raw unit rows (row-major [count, dimension]) and their ids.
    public init(vectors: [Float], count: Int, dimension: Int, outFeatures: Int, ids: [UInt64]) {
        self.dimension = dimension
        self.outFeatures = outFeatures
        self.count = count
        self.vectors = vectors
        normsSquared = SignInvariantKMeans.rowNormsSquared(vectors, count: count, dimension: dimension)
        norms = Self.rowNorms(vectors, count: count, dimension: dimension)
        self.ids = ids
    }

    static func rowNorms(_ vectors: [Float], count: Int, dimension: Int) -> [Double] {
        BLAS.singleThreaded {
            vectors.withUnsafeBufferPointer { x in
                guard let x = x.baseAddress else { return [] }
                return (0..<count).map { Double(BLAS.nrm2(dimension, x + $0 * dimension)) }
            }
        }
    }

    /// Bytes held (for a worker's block cache).
    public var byteSize: Int { 4 * vectors.count + 24 * count }
}

/// What a round asks of every block.
public enum BlockRoundKind: Int, Sendable, Codable, Equatable {
    /// The block's unit with the smallest counter key `hash(seed, 0, id)`: the k-means|| first center.
    case firstCenter = 0
    /// k-means|| oversampling: D² of every unit to the newest candidates, and the block's cost Σ D² (the draws are
    /// the next round, `draw`, once the module's total cost φ is known).
    case oversample = 1
    /// Units nearest to each candidate (the weights of the candidates' reclustering).
    case candidateWeights = 2
    /// A Lloyd assignment to the centroids: signed sums, counts, objective.
    case lloyd = 3
    /// Per-cluster statistics the lego reweighting needs from every unit, against the final centroids.
    case reweight = 4
    /// Quality track (`SplitQualityTrack`): the block's image T_b·[G | Ω] of the counter-based Gaussian probes G
    /// (`probes` columns) and range-sketch start Ω (`centerCount` columns), both built by the block from the seed.
    case probeImage = 5
    /// Quality track, exact figures: the block's part of T, T_b = Σ_u b_u a_uᵀ, row-major [out, in].
    case target = 6
    /// Quality track: T_b·M for the sent M, row-major [in, centerCount] (a range-sketch power step).
    case targetTimes = 7
    /// Quality track: T_bᵀ·M for the sent M, row-major [out, centerCount] (the sketch's Rayleigh–Ritz image).
    case targetTransposedTimes = 8
    /// `direction: principal`, only when a cluster's starting direction (the A half of its mean) is zero: for each
    /// such cluster (a zero row of the sent directions, [centerCount, in]) the block's first member with a non-zero
    /// A half, reported by value (`ClusterPrincipalDirections.units`' fallback start).
    case principalStart = 9
    /// `direction: principal`, LEFT half-step: Σ_{i∈c} x_B,i (x_A,i·v_c) per cluster for the sent v [centerCount,
    /// in], over the block's final assignment (`BlockRoundRequest.assignment`): `sums` [centerCount, out].
    case principalLeft = 10
    /// `direction: principal`, RIGHT half-step: Σ_{i∈c} x_A,i (x_B,i·u_c) for the sent u [centerCount, out]:
    /// `sums` [centerCount, in].
    case principalRight = 11
    /// `refit` (`FactorRefitRounds`), LEFT half-step: the block's X_Bᵀ (X_A A'ᵀ) for the sent A' [centerCount, in]:
    /// `sums` row-major [out, centerCount].
    case refitLeft = 12
    /// `refit`, RIGHT half-step: the block's (X_B B')ᵀ X_A for the sent B' (row-major [out, centerCount]): `sums`
    /// row-major [centerCount, in].
    case refitRight = 13
    /// k-means|| draws after an oversampling round: the block's units with u·φ < ℓ·D² (φ the module's total cost,
    /// `BlockRoundRequest.cost`), reported by value. A round of its own so that a block sends only the units the
    /// module keeps: drawing against its own cost, a block of 1/b of the module sent ~b times too many.
    case draw = 14

    /// The product rounds of the quality track, whose `centers` are a matrix (not centers of `dimension` values).
    public var isProduct: Bool {
        switch self {
        case .probeImage, .target, .targetTimes, .targetTransposedTimes: true
        default: false
        }
    }

    /// The principal-direction rounds (`ClusterPrincipalDirections` per block), which carry the block's assignment.
    public var isPrincipal: Bool {
        switch self {
        case .principalStart, .principalLeft, .principalRight: true
        default: false
        }
    }

    /// The refit rounds (`FactorRefitRounds`).
    public var isRefit: Bool { self == .refitLeft || self == .refitRight }

    /// Values `centers` must hold for `centerCount` columns (centers or sketch columns).
    public func centerValues(count: Int, outFeatures: Int, inFeatures: Int) -> Int {
        switch self {
        case .probeImage, .target: 0
        case .targetTimes, .principalStart, .principalLeft, .refitLeft: inFeatures * count
        case .targetTransposedTimes, .principalRight, .refitRight: outFeatures * count
        default: (outFeatures + inFeatures) * count
        }
    }
}

/// One round's request to a block (the same for every block of the round).
public struct BlockRoundRequest: Sendable, Equatable {
    public var kind: BlockRoundKind
    public var round: Int
    /// Row-major [centerCount, dimension]: the candidates (oversample, weights) or centroids (lloyd, reweight).
    public var centers: [Float]
    public var centerCount: Int
    /// ℓ: expected draws per oversampling round.
    public var oversampling: Double
    /// Lloyd: farthest units each block reports, for empty clusters.
    public var farthest: Int
    /// oversample / candidateWeights: index of the first of `centers` among all candidates drawn so far. Those
    /// rounds send only the candidates drawn by the previous round; the rest are summarised per unit in `nearest`.
    public var centerOffset: Int
    /// oversample / candidateWeights: this block's nearest candidate so far per unit (nil before any candidate).
    /// Per block, unlike the other fields: what the block returned in its previous seeding round.
    public var nearest: NearestCandidates?
    /// probeImage: Gaussian probe columns G (`QualityEstimator.probes(seed:cols:count:)`, built by the block).
    public var probes: Int
    /// draw: φ, the module's total cost after the oversampling round (Σ of its blocks' costs).
    public var cost: Double
    /// Principal-direction rounds: the cluster of each of the block's units in the kept clustering's final
    /// assignment (per block, like `nearest`; the coordinator keeps it from the last Lloyd round).
    public var assignment: [UInt32]?

    public init(kind: BlockRoundKind, round: Int, centers: [Float] = [], centerCount: Int = 0, oversampling: Double = 0,
                farthest: Int = 0, centerOffset: Int = 0, nearest: NearestCandidates? = nil, probes: Int = 0,
                assignment: [UInt32]? = nil, cost: Double = 0) {
        self.kind = kind; self.round = round; self.centers = centers; self.centerCount = centerCount
        self.oversampling = oversampling; self.farthest = farthest; self.centerOffset = centerOffset
        self.nearest = nearest; self.probes = probes; self.assignment = assignment; self.cost = cost
    }
}

/// Per unit of a block, the nearest of the k-means|| candidates seen so far: its sign-invariant D² and its index.
/// Seeding rounds carry it from round to round (block → coordinator → block, 12 bytes a unit), so a round computes
/// distances to the newly drawn candidates only: D² = min over rounds of the round's own GEMM, ties to the lowest
/// index. That definition does not depend on who computes a round, so the bytes stay the same everywhere.
public struct NearestCandidates: Sendable, Equatable {
    public var distances: [Double]
    public var indices: [UInt32]

    public init(distances: [Double], indices: [UInt32]) {
        self.distances = distances
        self.indices = indices
    }

    /// Before any candidate: every unit infinitely far.
    public init(count: Int) {
        distances = [Double](repeating: .infinity, count: count)
        indices = [UInt32](repeating: 0, count: count)
    }

    public var count: Int { distances.count }

    /// f64 D² per unit then u32 index per unit, little-endian (12 bytes a unit).
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        for d in distances { w.double(d) }
        for i in indices { w.u32(i) }
        return w.bytes
    }

    /// Parses `encoded()`; throws unless the bytes are whole units with finite, non-negative distances below
    /// `candidates` indices.
    public static func decode(_ bytes: [UInt8], candidates: Int) throws -> NearestCandidates {
        guard bytes.count % 12 == 0 else {
            throw KernelShapeError(kernel: "nearest candidates", problem: "\(bytes.count) bytes are not whole 12-byte units")
        }
        let n = bytes.count / 12
        var r = ByteReader(bytes, what: "nearest candidates")
        let distances = try (0..<n).map { _ in try r.double() }
        let indices = try (0..<n).map { _ in try r.u32() }
        let state = NearestCandidates(distances: distances, indices: indices)
        try state.check(candidates: candidates)
        return state
    }

    /// Throws unless every distance is finite and ≥ 0 and every index is below `candidates`.
    public func check(candidates: Int) throws {
        guard indices.count == distances.count, distances.allSatisfy({ $0.isFinite && $0 >= 0 }),
              indices.allSatisfy({ Int($0) < candidates }) else {
            throw KernelShapeError(kernel: "nearest candidates", problem: "distances or indices out of range for \(candidates) candidates")
        }
    }
}

/// A unit a block reports by value (a drawn candidate, a first center, a far unit).
public struct ReportedUnit: Sendable, Equatable {
    public var id: UInt64
    /// Round-specific numbers: first center: (key bits, 0); oversample: (u, D²); lloyd: (distance, ‖x‖).
    public var first: Double
    public var second: Double
    /// Lloyd only: the unit's cluster and sign.
    public var cluster: Int
    public var sign: Float
    /// Lloyd and principalStart: the unit's row in its block (ids skip dropped units; the coordinator needs the
    /// row to move a refilled unit in the block's assignment).
    public var index: Int
    public var vector: [Float]

    public init(id: UInt64, first: Double, second: Double, cluster: Int = 0, sign: Float = 1, index: Int = 0,
                vector: [Float]) {
        self.id = id; self.first = first; self.second = second; self.cluster = cluster; self.sign = sign
        self.index = index; self.vector = vector
    }
}

/// A block's answer to one round. Which fields are filled depends on the round's kind.
public struct BlockPartial: Sendable, Equatable {
    public var kind: BlockRoundKind
    /// Units in the block.
    public var unitCount: Int
    /// firstCenter: φ is unused; oversample: Σ D² of the block; lloyd: the block's objective.
    public var cost: Double
    /// Units reported by value (first center: at most one; oversample: the draws; lloyd: the farthest units).
    public var units: [ReportedUnit]
    /// candidateWeights / lloyd: units per center.
    public var counts: [Int]
    /// lloyd: row-major [k, dimension] signed sums; quality-track products: the block's product, row-major.
    public var sums: [Float]
    /// lloyd: Σ ‖x‖ of each cluster's members; reweight: h_s = Σ_i (x_B,i·μ_B,s)(x_A,i·μ_A,s).
    public var perCenter: [Double]
    /// lloyd: Σ ‖x‖² of each cluster's members.
    public var perCenterSquares: [Double]
    /// oversample: every unit's nearest candidate after the round (the next seeding round's `nearest`).
    public var nearest: NearestCandidates?
    /// lloyd: every unit's cluster (kept by the coordinator from the last Lloyd round for the principal-direction
    /// rounds; 4 bytes a unit against the [k, dimension] sums).
    public var assignment: [UInt32]?

    public init(kind: BlockRoundKind, unitCount: Int, cost: Double = 0, units: [ReportedUnit] = [], counts: [Int] = [],
                sums: [Float] = [], perCenter: [Double] = [], perCenterSquares: [Double] = [],
                nearest: NearestCandidates? = nil, assignment: [UInt32]? = nil) {
        self.kind = kind; self.unitCount = unitCount; self.cost = cost; self.units = units; self.counts = counts
        self.sums = sums; self.perCenter = perCenter; self.perCenterSquares = perCenterSquares; self.nearest = nearest
        self.assignment = assignment
    }
}

/// The block side of the split k-means (k-means|| seeding, then Lloyd): pure functions of (block, request, seed),
/// so any worker, or the in-process reference, computes the same bytes for a block.
public enum BlockKMeans {
    /// Counter-based key of unit `id` in round `round`: a pure function of (seed, round, id).
    @inline(__always)
    public static func key(seed: UInt64, round: Int, id: UInt64) -> UInt64 {
        CounterRandom.mix(CounterRandom.streamKey(seed: seed, stream: UInt64(round)) ^ CounterRandom.mix(id))
    }

    /// Uniform in [0, 1) from the key (53 bits).
    @inline(__always)
    public static func uniform(seed: UInt64, round: Int, id: UInt64) -> Double {
        Double(key(seed: seed, round: round, id: id) >> 11) * 0x1.0p-53
    }

    /// Rows per GEMM against the centers: bounds the distance scratch of a large block.
    static let chunkRows = 4096

    /// Computes `request` on `block`. Throws if the request's centers do not match the block's dimension.
    public static func compute(_ request: BlockRoundRequest, block: UnitBlock, seed: UInt64) throws -> BlockPartial {
        let values = request.kind.centerValues(count: request.centerCount, outFeatures: block.outFeatures,
                                               inFeatures: block.dimension - block.outFeatures)
        guard request.centerCount >= 0, request.centers.count == values else {
            throw KernelShapeError(kernel: "BlockKMeans", problem: "\(request.centers.count) center values for "
                                   + "\(request.centerCount) centers of a \(request.kind) round (\(values) expected)")
        }
        return try BLAS.singleThreaded {
            switch request.kind {
            case .firstCenter: return firstCenter(block, seed: seed)
            case .oversample: return try oversample(block, request: request)
            case .draw: return try draw(block, request: request, seed: seed)
            case .candidateWeights: return try candidateWeights(block, request: request)
            case .lloyd: return try lloyd(block, request: request)
            case .reweight: return try reweight(block, request: request)
            case .probeImage, .target, .targetTimes, .targetTransposedTimes:
                return try product(block, request: request, seed: seed)
            case .principalStart, .principalLeft, .principalRight:
                return try principal(block, request: request)
            case .refitLeft, .refitRight:
                return try refit(block, request: request)
            }
        }
    }

    static func firstCenter(_ block: UnitBlock, seed: UInt64) -> BlockPartial {
        var best: Int?
        var bestKey = UInt64.max
        for i in 0..<block.count {
            let k = key(seed: seed, round: 0, id: block.ids[i])
            if best == nil || k < bestKey { best = i; bestKey = k }
        }
        var partial = BlockPartial(kind: .firstCenter, unitCount: block.count)
        if let best {
            partial.units = [ReportedUnit(id: block.ids[best], first: Double(bitPattern: bestKey), second: 0,
                                          vector: row(block, best))]
        }
        return partial
    }

    static func requireCenters(_ request: BlockRoundRequest) throws {
        guard request.centerCount > 0 else {
            throw KernelShapeError(kernel: "BlockKMeans", problem: "round \(request.round) (\(request.kind)) has no centers")
        }
    }

    /// The block's nearest candidates so far (`request.nearest`, or none before the first candidate), checked.
    static func carriedNearest(_ block: UnitBlock, request: BlockRoundRequest) throws -> NearestCandidates {
        guard request.centerOffset >= 0 else {
            throw KernelShapeError(kernel: "BlockKMeans", problem: "candidate offset \(request.centerOffset) is negative")
        }
        guard let carried = request.nearest else {
            guard request.centerOffset == 0, request.centerCount > 0 else {
                throw KernelShapeError(kernel: "BlockKMeans", problem: "round \(request.round) (\(request.kind)) has no "
                                       + "candidates and no nearest-candidate state")
            }
            return NearestCandidates(count: block.count)
        }
        guard carried.count == block.count else {
            throw KernelShapeError(kernel: "BlockKMeans", problem: "nearest-candidate state for \(carried.count) units, "
                                   + "the block has \(block.count)")
        }
        try carried.check(candidates: request.centerOffset)
        return carried
    }

    /// Folds the round's new candidates (indices from `request.centerOffset`) into `state`: one GEMM against them,
    /// a unit moves only to a strictly nearer candidate (so ties keep the lowest index).
    static func updateNearest(_ state: inout NearestCandidates, block: UnitBlock, request: BlockRoundRequest) {
        guard request.centerCount > 0 else { return }
        let offset = UInt32(request.centerOffset)
        forEachNearest(block, centers: request.centers, centerCount: request.centerCount) { i, c, d, _ in
            if d < state.distances[i] {
                state.distances[i] = d
                state.indices[i] = offset + UInt32(c)
            }
        }
    }

    static func oversample(_ block: UnitBlock, request: BlockRoundRequest) throws -> BlockPartial {
        var state = try carriedNearest(block, request: request)
        updateNearest(&state, block: block, request: request)
        var cost = 0.0
        for d in state.distances { cost += d }
        return BlockPartial(kind: .oversample, unitCount: block.count, cost: cost, nearest: state)
    }

    /// The units of the block that seeding round `request.round` draws: u·φ < ℓ·D², u the unit's counter uniform of
    /// that round, D² from the block's nearest-candidate state (`request.nearest`, as its oversampling round
    /// returned it), φ the module's cost (`request.cost`). In unit order, so the module's candidates are in block
    /// then unit order whoever computes the blocks.
    static func draw(_ block: UnitBlock, request: BlockRoundRequest, seed: UInt64) throws -> BlockPartial {
        guard request.oversampling > 0, request.oversampling.isFinite, request.cost > 0, request.cost.isFinite else {
            throw KernelShapeError(kernel: "BlockKMeans", problem: "draw round with oversampling \(request.oversampling) "
                                   + "and cost \(request.cost) (both must be positive)")
        }
        guard let state = request.nearest, state.count == block.count else {
            throw KernelShapeError(kernel: "BlockKMeans", problem: "draw round without the nearest-candidate state of the "
                                   + "block's \(block.count) units")
        }
        try state.check(candidates: request.centerOffset)
        var partial = BlockPartial(kind: .draw, unitCount: block.count)
        for i in 0..<block.count where state.distances[i] > 0 {
            let u = uniform(seed: seed, round: request.round, id: block.ids[i])
            if u * request.cost < request.oversampling * state.distances[i] {
                partial.units.append(ReportedUnit(id: block.ids[i], first: u, second: state.distances[i],
                                                  vector: row(block, i)))
            }
        }
        return partial
    }

    static func candidateWeights(_ block: UnitBlock, request: BlockRoundRequest) throws -> BlockPartial {
        var state = try carriedNearest(block, request: request)
        updateNearest(&state, block: block, request: request)
        var counts = [Int](repeating: 0, count: request.centerOffset + request.centerCount)
        var cost = 0.0
        for i in 0..<block.count {
            counts[Int(state.indices[i])] += 1
            cost += state.distances[i]
        }
        return BlockPartial(kind: .candidateWeights, unitCount: block.count, cost: cost, counts: counts)
    }

    static func lloyd(_ block: UnitBlock, request: BlockRoundRequest) throws -> BlockPartial {
        try requireCenters(request)
        let k = request.centerCount, dim = block.dimension
        let centroidNorms = SignInvariantKMeans.rowNormsSquared(request.centers, count: k, dimension: dim)
        let step: LloydBlockPartial = block.vectors.withUnsafeBufferPointer { x in
            block.normsSquared.withUnsafeBufferPointer { norms in
                guard let x = x.baseAddress, let norms = norms.baseAddress else {
                    return LloydBlockPartial(sums: [Float](repeating: 0, count: k * dim), counts: [Int](repeating: 0, count: k),
                                             objective: 0, assignment: [], signs: [], distances: [])
                }
                return SignInvariantKMeans.lloydBlock(units: x, count: block.count, dimension: dim, unitNormsSquared: norms,
                                                      centroids: request.centers, centroidNormsSquared: centroidNorms, k: k)
            }
        }
        // Σ‖x‖ and Σ‖x‖² per cluster, each norm from nrm2 as `ClusterStatistics.block` takes it.
        var normSums = [Double](repeating: 0, count: k), normSquares = [Double](repeating: 0, count: k)
        let norms = block.norms
        for i in 0..<block.count {
            normSums[step.assignment[i]] += norms[i]
            normSquares[step.assignment[i]] += norms[i] * norms[i]
        }
        // The farthest units (distance descending, id ascending): candidates to refill empty clusters.
        let far = Array(block.count == 0 ? [] : (0..<block.count).sorted {
            step.distances[$0] != step.distances[$1] ? step.distances[$0] > step.distances[$1] : $0 < $1
        }.prefix(max(0, request.farthest)))
        let reported = far.map { i in
            ReportedUnit(id: block.ids[i], first: step.distances[i], second: norms[i],
                         cluster: step.assignment[i], sign: step.signs[i], index: i, vector: row(block, i))
        }
        return BlockPartial(kind: .lloyd, unitCount: block.count, cost: step.objective, units: reported,
                            counts: step.counts, sums: step.sums, perCenter: normSums, perCenterSquares: normSquares,
                            assignment: step.assignment.map { UInt32(truncatingIfNeeded: $0) })
    }

    /// h_s = Σ_i (x_B,i·μ_B,s)(x_A,i·μ_A,s): the right-hand side of lego's optimal weights, a sum over units.
    static func reweight(_ block: UnitBlock, request: BlockRoundRequest) throws -> BlockPartial {
        try requireCenters(request)
        let k = request.centerCount, dim = block.dimension, out = block.outFeatures
        var h = [Double](repeating: 0, count: k)
        var projB = [Float](repeating: 0, count: min(chunkRows, block.count) * k)
        var projA = projB
        FixedBlocks.forEach(count: block.count, blockSize: chunkRows) { start, rows in
            block.vectors.withUnsafeBufferPointer { x in
                request.centers.withUnsafeBufferPointer { m in
                    projB.withUnsafeMutableBufferPointer { pb in
                        projA.withUnsafeMutableBufferPointer { pa in
                            guard let x = x.baseAddress, let m = m.baseAddress, let pb = pb.baseAddress,
                                  let pa = pa.baseAddress else { return }
                            let rowsStart = x + start * dim
                            BLAS.gemm(.none, .transpose, m: rows, n: k, k: out, a: rowsStart, lda: dim, b: m, ldb: dim, c: pb)
                            BLAS.gemm(.none, .transpose, m: rows, n: k, k: dim - out, a: rowsStart + out, lda: dim,
                                      b: m + out, ldb: dim, c: pa)
                        }
                    }
                }
            }
            for i in 0..<rows { for s in 0..<k { h[s] += Double(projB[i * k + s]) * Double(projA[i * k + s]) } }
        }
        return BlockPartial(kind: .reweight, unitCount: block.count, perCenter: h)
    }

    /// For every unit (in order): its nearest center (ties: lowest index), the sign-invariant distance and the dot.
    /// The products come from `RowDots` (reads the rows once, no packing; its bits do not depend on the CPU path),
    /// as Lloyd's do.
    static func forEachNearest(_ block: UnitBlock, centers: [Float], centerCount m: Int,
                               _ body: (_ unit: Int, _ center: Int, _ distance: Double, _ dot: Float) -> Void) {
        let dim = block.dimension
        let centerNorms = SignInvariantKMeans.rowNormsSquared(centers, count: m, dimension: dim)
        var dots = [Float](repeating: 0, count: min(chunkRows, block.count) * m)
        FixedBlocks.forEach(count: block.count, blockSize: chunkRows) { start, rows in
            block.vectors.withUnsafeBufferPointer { x in
                centers.withUnsafeBufferPointer { c in
                    dots.withUnsafeMutableBufferPointer { p in
                        guard let x = x.baseAddress, let c = c.baseAddress, let p = p.baseAddress else { return }
                        RowDots.compute(x + start * dim, rows: rows, dimension: dim, centroids: c, count: m, into: p)
                    }
                }
            }
            for r in 0..<rows {
                let i = start + r
                var best = 0
                var bestDistance = Double.infinity
                for j in 0..<m {
                    let d = SignInvariantKMeans.distance(unitNormSquared: block.normsSquared[i],
                                                         centroidNormSquared: centerNorms[j], dot: dots[r * m + j])
                    if d < bestDistance { bestDistance = d; best = j }
                }
                body(i, best, bestDistance, dots[r * m + best])
            }
        }
    }

    static func row(_ block: UnitBlock, _ i: Int) -> [Float] {
        Array(block.vectors[(i * block.dimension)..<((i + 1) * block.dimension)])
    }
}
