/// lego's `direction: principal` for a split module, as rounds over its blocks: the coordinator's side of
/// `ClusterPrincipalDirections.units`. After the kept clustering, each power iteration is two rounds (LEFT: every
/// block returns Σ_{i∈c} x_B,i (x_A,i·v_c) over its units; RIGHT: Σ_{i∈c} x_A,i (x_B,i·u_c)), reduced here by
/// `ClusterPrincipalDirections.add` in block order from zero and normalised by `normalizeRows`, exactly the
/// unsplit reduction: with the same blocks, assignment and centroids the result has the same bits (tested). A
/// cluster whose mean has a zero A half first gets one more round (`principalStart`) that finds its first member
/// with a non-zero A half, the unsplit method's fallback start.
///
/// The state (step, u, v, σ) round-trips exactly through `encoded()` / `decoding(_:)`, so a coordinator checkpoints
/// it after every round and resumes with identical bytes.
public struct PrincipalDirectionRounds: Sendable, Equatable {
    public let clusterCount: Int
    public let outFeatures: Int
    public let inFeatures: Int
    /// Power iterations (≥ 1: σ and v̂ need the last RIGHT product).
    public let iterations: Int
    /// A starting direction is zero, so the start round runs first.
    public let needsStart: Bool
    /// Rounds reduced so far.
    public private(set) var step = 0
    /// Row-major [k, out]: û after the latest LEFT round.
    private(set) var left: [Float]
    /// Row-major [k, in]: the current v̂ (the starting directions before the first RIGHT round).
    private(set) var right: [Float]
    private(set) var singularValues: [Double]

    /// The rounds for a clustering with final centroids `centroids` (row-major [k, out + in]).
    public init(centroids: [Float], clusterCount k: Int, outFeatures: Int, inFeatures: Int, iterations: Int) {
        clusterCount = k
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.iterations = max(1, iterations)
        right = ClusterPrincipalDirections.startingDirections(centroids: centroids, k: k, outFeatures: outFeatures,
                                                             inFeatures: inFeatures)
        needsStart = Self.zeroRows(right, rows: k, width: inFeatures).isEmpty == false
        left = [Float](repeating: 0, count: k * outFeatures)
        singularValues = [Double](repeating: 0, count: k)
    }

    /// Rows whose nrm2 is 0 (the test the unsplit fallback applies).
    static func zeroRows(_ matrix: [Float], rows: Int, width: Int) -> [Int] {
        matrix.withUnsafeBufferPointer { m in
            guard let m = m.baseAddress else { return [] }
            return (0..<rows).filter { BLAS.nrm2(width, m + $0 * width) == 0 }
        }
    }

    /// Every round: the start round when needed, then LEFT and RIGHT per iteration.
    public var roundCount: Int { (needsStart ? 1 : 0) + 2 * iterations }
    public var isDone: Bool { step >= roundCount }

    /// The kind of the next round (nil when done).
    public var nextKind: BlockRoundKind? {
        guard !isDone else { return nil }
        let product = step - (needsStart ? 1 : 0)
        if product < 0 { return .principalStart }
        return product % 2 == 0 ? .principalLeft : .principalRight
    }

    /// Block `assignment`'s request for the next round, numbered `round` (nil when done).
    public func request(round: Int, assignment: [UInt32]) -> BlockRoundRequest? {
        guard let kind = nextKind else { return nil }
        return BlockRoundRequest(kind: kind, round: round, centers: kind == .principalRight ? left : right,
                                 centerCount: clusterCount, assignment: assignment)
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
            guard partial.sums.count == clusterCount * width, partial.sums.allSatisfy(\.isFinite) else {
                throw problem("\(kind) partial does not have \(clusterCount)×\(width) finite values")
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
        case .principalLeft:
            var total = [Float](repeating: 0, count: clusterCount * outFeatures)
            for partial in partials { ClusterPrincipalDirections.add(partial.sums, to: &total) }
            ClusterPrincipalDirections.normalizeRows(&total, rows: clusterCount, width: outFeatures)
            left = total
        case .principalRight:
            var total = [Float](repeating: 0, count: clusterCount * inFeatures)
            for partial in partials { ClusterPrincipalDirections.add(partial.sums, to: &total) }
            singularValues = ClusterPrincipalDirections.normalizeRows(&total, rows: clusterCount, width: inFeatures)
            right = total
        default:
            throw problem("the principal directions are already done")
        }
        step += 1
    }

    /// The clusters' rank-one units [√σ û ; √σ v̂], row-major [k, out + in] (nil until done).
    public var units: [Float]? {
        guard isDone else { return nil }
        return ClusterPrincipalDirections.assemble(left: left, right: right, singularValues: singularValues,
                                                   outFeatures: outFeatures, inFeatures: inFeatures)
    }

    private func problem(_ text: String) -> KernelShapeError {
        KernelShapeError(kernel: "principal directions round \(step)", problem: text)
    }

    // MARK: checkpoint

    /// The state, bit-exact.
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.int(clusterCount); w.int(outFeatures); w.int(inFeatures); w.int(iterations); w.int(needsStart ? 1 : 0)
        w.int(step); w.floats(left); w.floats(right); w.doubles(singularValues)
        return w.bytes
    }

    /// This (freshly made) state advanced to `encoded()`'s; throws if the bytes were written for other rounds.
    public func decoding(_ bytes: [UInt8]) throws -> PrincipalDirectionRounds {
        var r = ByteReader(bytes, what: "principal directions state")
        guard try r.int() == clusterCount, try r.int() == outFeatures, try r.int() == inFeatures,
              try r.int() == iterations, try r.int() == (needsStart ? 1 : 0) else {
            throw problem("state written for another clustering or iteration count")
        }
        var state = self
        state.step = try r.bounded(roundCount, "step")
        state.left = try r.floats(); state.right = try r.floats(); state.singularValues = try r.doubles()
        try r.finish()
        guard state.left.count == left.count, state.right.count == right.count,
              state.singularValues.count == clusterCount else {
            throw problem("state of the wrong shape")
        }
        return state
    }
}
