/// lego's `direction: principal` for a split module, as rounds over its blocks: the coordinator's side of
/// `ClusterPrincipalDirections.principal` with its per-cluster stop. After the kept clustering, each power iteration
/// is two rounds (LEFT: every block returns Σ_{i∈c} x_B,i (x_A,i·v_c) over its units; RIGHT: Σ_{i∈c} x_A,i (x_B,i·u_c)),
/// reduced here by `ClusterPrincipalDirections.add` in block order from zero and normalised by `normalizeRows`,
/// exactly the unsplit reduction. After each RIGHT round a cluster whose v̂ moved by ≤ `tolerance` stops, as in
/// process; the next rounds carry only the running clusters (their directions packed in cluster order, the members
/// of stopped clusters sent as `skippedCluster`, so blocks skip them and return sums for the running clusters only),
/// and the rounds end when every cluster stopped or after `iterations`. A running cluster's sums are those of its own
/// members in unit order, so with the same blocks, assignment and centroids the result has the unsplit bits
/// (tested). A cluster whose mean has a zero A half first gets one more round (`principalStart`) that finds its first
/// member with a non-zero A half, the unsplit method's fallback start.
///
/// The state is two halves, each changed by one kind of round: `encodedLeft()` (û, after LEFT rounds) and
/// `encodedRight()` (v̂, σ and the per-cluster stop, after RIGHT and start rounds); `decoding(left:right:)` restores
/// them bit-exactly, so a coordinator checkpoints only the half a round changed and resumes with identical bytes.
public struct PrincipalDirectionRounds: Sendable, Equatable {
    /// The cluster index a power round's assignment gives the members of stopped clusters: the block skips them
    /// (`UnitSums.dotAdd` skips clusters outside 0..<k).
    public static let skippedCluster = UInt32.max

    public let clusterCount: Int
    public let outFeatures: Int
    public let inFeatures: Int
    /// Power iterations at most (≥ 1: σ and v̂ need the last RIGHT product).
    public let iterations: Int
    /// A cluster stops once its v̂ moved by at most this (`ClusterPrincipalDirections.principal`; 0: never).
    public let tolerance: Double
    /// A starting direction is zero, so the start round runs first.
    public let needsStart: Bool
    /// Rounds reduced so far.
    public private(set) var step = 0
    /// Row-major [k, out]: û after the latest LEFT round that ran the cluster.
    private(set) var left: [Float]
    /// Row-major [k, in]: the current v̂ (the starting directions before the first RIGHT round).
    private(set) var right: [Float]
    private(set) var singularValues: [Double]
    /// Per cluster: still iterating, and the power iterations it ran.
    private(set) var running: [Bool]
    private(set) var runs: [Int]
    /// The step after the latest round that changed each half (0: none yet): what a checkpoint of the halves holds.
    private(set) var leftStep = 0
    private(set) var rightStep = 0
    /// The next round's directions (the running clusters', packed in cluster order) and each cluster's place among
    /// them (`skippedCluster` when stopped; empty when every cluster runs): derived once per round, not per block.
    private var roundCenters: [Float] = []
    private var roundPlaces: [UInt32] = []
    /// The rank-one units once done (derived once, when the last round is reduced or the state restored).
    public private(set) var units: [Float]?

    /// The rounds for a clustering with final centroids `centroids` (row-major [k, out + in]).
    public init(centroids: [Float], clusterCount k: Int, outFeatures: Int, inFeatures: Int, iterations: Int,
                tolerance: Double = ClusterPrincipalDirections.defaultTolerance) {
        clusterCount = k
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.iterations = max(1, iterations)
        self.tolerance = tolerance.isFinite ? max(0, tolerance) : 0
        right = ClusterPrincipalDirections.startingDirections(centroids: centroids, k: k, outFeatures: outFeatures,
                                                             inFeatures: inFeatures)
        needsStart = Self.zeroRows(right, rows: k, width: inFeatures).isEmpty == false
        left = [Float](repeating: 0, count: k * outFeatures)
        singularValues = [Double](repeating: 0, count: k)
        running = [Bool](repeating: true, count: k)
        runs = [Int](repeating: 0, count: k)
        prepareRound()
    }

    /// Derives what the next round sends (its directions, the members' places) or, once done, the units.
    private mutating func prepareRound() {
        roundCenters = []
        roundPlaces = []
        units = nil
        guard let kind = nextKind else {
            units = ClusterPrincipalDirections.assemble(left: left, right: right, singularValues: singularValues,
                                                        outFeatures: outFeatures, inFeatures: inFeatures)
            return
        }
        guard kind != .principalStart else { roundCenters = right; return }
        let (source, width) = kind == .principalRight ? (left, outFeatures) : (right, inFeatures)
        let live = runningClusters
        guard live.count < clusterCount else { roundCenters = source; return }
        roundPlaces = [UInt32](repeating: Self.skippedCluster, count: clusterCount)
        roundCenters.reserveCapacity(live.count * width)
        for (r, c) in live.enumerated() {
            roundPlaces[c] = UInt32(r)
            roundCenters.append(contentsOf: source[(c * width)..<((c + 1) * width)])
        }
    }

    /// Rows whose nrm2 is 0 (the test the unsplit fallback applies).
    static func zeroRows(_ matrix: [Float], rows: Int, width: Int) -> [Int] {
        matrix.withUnsafeBufferPointer { m in
            guard let m = m.baseAddress else { return [] }
            return (0..<rows).filter { BLAS.nrm2(width, m + $0 * width) == 0 }
        }
    }

    /// Rounds at most: the start round when needed, then LEFT and RIGHT per iteration.
    public var roundCount: Int { (needsStart ? 1 : 0) + 2 * iterations }
    public var isDone: Bool { nextKind == nil }

    /// LEFT and RIGHT rounds reduced.
    private var productRounds: Int { step - (needsStart ? 1 : 0) }

    /// Power iterations run (the most any cluster ran; every cluster runs the first).
    public var iterationsRun: Int { max(0, productRounds) / 2 }

    /// Clusters still iterating, in cluster order: the rows a LEFT or RIGHT round carries.
    public var runningClusters: [Int] { (0..<clusterCount).filter { running[$0] } }

    /// The kind of the next round (nil when done: after the cap, or once every cluster stopped).
    public var nextKind: BlockRoundKind? {
        if needsStart && step == 0 { return .principalStart }
        let product = productRounds
        guard product < 2 * iterations else { return nil }
        if product % 2 == 1 { return .principalRight }
        return product > 0 && !running.contains(true) ? nil : .principalLeft
    }

    /// Block `assignment`'s request for the next round, numbered `round` (nil when done). A LEFT or RIGHT round
    /// carries the running clusters' directions in cluster order, and maps each member to its cluster's place among
    /// them (`skippedCluster` for a stopped cluster's).
    public func request(round: Int, assignment: [UInt32]) -> BlockRoundRequest? {
        guard let kind = nextKind else { return nil }
        guard !roundPlaces.isEmpty else {
            return BlockRoundRequest(kind: kind, round: round, centers: roundCenters, centerCount: clusterCount,
                                     assignment: assignment)
        }
        let mapped = assignment.map { Int($0) < clusterCount ? roundPlaces[Int($0)] : Self.skippedCluster }
        return BlockRoundRequest(kind: kind, round: round, centers: roundCenters,
                                 centerCount: running.lazy.filter { $0 }.count, assignment: mapped)
    }

    /// Checks one block's answer against the next round (`units`: the block's unit count).
    public func validate(_ partial: BlockPartial, units: Int? = nil) throws {
        guard let kind = nextKind else { throw problem("the principal directions are already done") }
        guard partial.kind == kind else { throw problem("partial of kind \(partial.kind), round needs \(kind)") }
        guard partial.unitCount >= 0, units.map({ $0 == partial.unitCount }) ?? true else {
            throw problem("partial for \(partial.unitCount) units, the block has \(units ?? -1)")
        }
        switch kind {
        case .principalStart:
            let zero = Set(Self.zeroRows(right, rows: clusterCount, width: inFeatures))
            var previous = -1
            for unit in partial.units {
                guard zero.contains(unit.cluster), unit.cluster > previous, unit.vector.count == outFeatures + inFeatures,
                      (0..<partial.unitCount).contains(unit.index), unit.vector.allSatisfy(\.isFinite),
                      unit.vector[outFeatures...].contains(where: { $0 != 0 }) else {
                    throw problem("start partial reports unit \(unit.id) for cluster \(unit.cluster), which it cannot")
                }
                previous = unit.cluster
            }
        default:
            let width = kind == .principalLeft ? outFeatures : inFeatures
            let rows = running.lazy.filter { $0 }.count
            guard partial.sums.count == rows * width, partial.sums.allSatisfy(\.isFinite) else {
                throw problem("\(kind) partial does not have \(rows)×\(width) finite values")
            }
        }
    }

    /// Reduces the next round's partials (one per block, in block order).
    public mutating func advance(with partials: [BlockPartial], blockUnits: [Int]? = nil) throws {
        for (b, partial) in partials.enumerated() { try validate(partial, units: blockUnits?[b]) }
        switch nextKind {
        case .principalStart:
            // The first member in unit order: the first block reporting the cluster (blocks are in unit order).
            let dim = outFeatures + inFeatures
            for c in Self.zeroRows(right, rows: clusterCount, width: inFeatures) {
                guard let unit = partials.lazy.flatMap(\.units).first(where: { $0.cluster == c }) else { continue }
                unit.vector.withUnsafeBufferPointer { x in
                    right.withUnsafeMutableBufferPointer { v in
                        guard let x = x.baseAddress, let v = v.baseAddress, unit.vector.count == dim else { return }
                        BLAS.copy(inFeatures, x: x + outFeatures, y: v + c * inFeatures)
                        let norm = BLAS.nrm2(inFeatures, v + c * inFeatures)
                        BLAS.scal(inFeatures, alpha: 1 / norm, x: v + c * inFeatures)
                    }
                }
            }
            rightStep = step + 1
        case .principalLeft:
            let live = runningClusters
            var total = [Float](repeating: 0, count: live.count * outFeatures)
            for partial in partials { ClusterPrincipalDirections.add(partial.sums, to: &total) }
            ClusterPrincipalDirections.normalizeRows(&total, rows: live.count, width: outFeatures)
            if live.count == clusterCount {
                left = total
            } else {
                for (r, c) in live.enumerated() {
                    left.replaceSubrange((c * outFeatures)..<((c + 1) * outFeatures),
                                         with: total[(r * outFeatures)..<((r + 1) * outFeatures)])
                }
            }
            leftStep = step + 1
        case .principalRight:
            let live = runningClusters
            var total = [Float](repeating: 0, count: live.count * inFeatures)
            for partial in partials { ClusterPrincipalDirections.add(partial.sums, to: &total) }
            let norms = ClusterPrincipalDirections.normalizeRows(&total, rows: live.count, width: inFeatures)
            // The in-process stop (`ClusterPrincipalDirections.principal`): how far v̂ moved, in Double, in order.
            for (r, c) in live.enumerated() {
                var moved = 0.0
                for j in 0..<inFeatures {
                    let change = Double(total[r * inFeatures + j]) - Double(right[c * inFeatures + j])
                    moved += change * change
                }
                right.replaceSubrange((c * inFeatures)..<((c + 1) * inFeatures),
                                      with: total[(r * inFeatures)..<((r + 1) * inFeatures)])
                singularValues[c] = norms[r]
                runs[c] += 1
                if tolerance > 0 && !(moved.squareRoot() > tolerance) { running[c] = false }
            }
            rightStep = step + 1
        default:
            throw problem("the principal directions are already done")
        }
        step += 1
        prepareRound()
    }

    private func problem(_ text: String) -> KernelShapeError {
        KernelShapeError(kernel: "principal directions round \(step)", problem: text)
    }

    // MARK: checkpoint

    private func header(_ w: inout ByteWriter) {
        w.int(clusterCount); w.int(outFeatures); w.int(inFeatures); w.int(iterations); w.int(needsStart ? 1 : 0)
        w.double(tolerance)
    }

    private func checkHeader(_ r: inout ByteReader) throws {
        guard try r.int() == clusterCount, try r.int() == outFeatures, try r.int() == inFeatures,
              try r.int() == iterations, try r.int() == (needsStart ? 1 : 0),
              try r.double().bitPattern == tolerance.bitPattern else {
            throw problem("state written for another clustering, iteration count or tolerance")
        }
    }

    /// The half a LEFT round changes (û), with the step it was written at; bit-exact.
    public func encodedLeft() -> [UInt8] {
        var w = ByteWriter()
        header(&w)
        w.int(leftStep); w.floats(left)
        return w.bytes
    }

    /// The half a RIGHT or start round changes (v̂, σ, the per-cluster stop), with the step it was written at.
    public func encodedRight() -> [UInt8] {
        var w = ByteWriter()
        header(&w)
        w.int(rightStep); w.floats(right); w.doubles(singularValues)
        w.ints(running.map { $0 ? 1 : 0 }); w.ints(runs)
        return w.bytes
    }

    /// The whole state, bit-exact: both halves.
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        let l = encodedLeft(), r = encodedRight()
        w.int(l.count); w.append(l); w.int(r.count); w.append(r)
        return w.bytes
    }

    /// This (freshly made) state advanced to `encoded()`'s; throws if the bytes were written for other rounds.
    public func decoding(_ bytes: [UInt8]) throws -> PrincipalDirectionRounds {
        var r = ByteReader(bytes, what: "principal directions state")
        let l = Array(try r.raw(count: try r.count(elementBytes: 1)))
        let h = Array(try r.raw(count: try r.count(elementBytes: 1)))
        try r.finish()
        return try decoding(left: l, right: h)
    }

    /// This (freshly made) state advanced to the one whose halves are `left` (`encodedLeft()`) and `right`
    /// (`encodedRight()`), each as of the last round that changed it (nil: none did). The halves must be of
    /// consecutive rounds (each round writes one): the later one is the state's step, the other one step earlier
    /// (or absent when only one round ran); anything else throws.
    public func decoding(left leftBytes: [UInt8]?, right rightBytes: [UInt8]?) throws -> PrincipalDirectionRounds {
        var state = self
        if let leftBytes {
            var r = ByteReader(leftBytes, what: "principal directions state (left half)")
            try checkHeader(&r)
            state.leftStep = try r.bounded(roundCount, "left step")
            state.left = try r.floats()
            try r.finish()
        }
        if let rightBytes {
            var r = ByteReader(rightBytes, what: "principal directions state (right half)")
            try checkHeader(&r)
            state.rightStep = try r.bounded(roundCount, "right step")
            state.right = try r.floats(); state.singularValues = try r.doubles()
            let flags = try r.ints()
            state.runs = try r.ints()
            try r.finish()
            guard flags.count == clusterCount, flags.allSatisfy({ $0 == 0 || $0 == 1 }) else {
                throw problem("state with \(flags.count) stop flags for \(clusterCount) clusters")
            }
            state.running = flags.map { $0 == 1 }
        }
        guard state.left.count == left.count, state.right.count == right.count,
              state.singularValues.count == clusterCount, state.runs.count == clusterCount,
              state.runs.allSatisfy({ (0...iterations).contains($0) }) else {
            throw problem("state of the wrong shape")
        }
        let latest = max(state.leftStep, state.rightStep), earlier = min(state.leftStep, state.rightStep)
        // Which half the round at `latest` changed: the start round and RIGHT rounds the right one.
        let latestIsRight = latest > 0 && (needsStart && latest == 1 || (latest - (needsStart ? 1 : 0)) % 2 == 0)
        guard latest == 0 || (latestIsRight ? state.rightStep == latest : state.leftStep == latest)
                && (earlier == latest - 1 || latest == 1 && earlier == 0) else {
            throw problem("halves of rounds \(state.leftStep) (left) and \(state.rightStep) (right) do not follow each other")
        }
        state.step = latest
        guard state.runs.allSatisfy({ $0 <= state.iterationsRun }) else { throw problem("stop counts beyond the rounds run") }
        state.prepareRound()
        return state
    }
}
