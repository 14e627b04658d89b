/// lego's `refit` for a split module, as rounds over its blocks: the coordinator's side of `FactorRefit.refit`.
/// Each alternating least-squares round is two block rounds, because each half-step needs a product with
/// T = Σ_b T_b (T_b the block's units' sum Σ x_B x_Aᵀ), which is a sum over blocks:
/// - LEFT (`refitLeft`, A' [k, in] sent): every block returns C_b = X_B,bᵀ (X_A,b A'ᵀ) [out, k]
///   (`FactorRefit.leftProduct` on the block); the coordinator adds them in block order and solves
///   B' = C (A' A'ᵀ)⁺ (`FactorRefit.solveB`);
/// - RIGHT (`refitRight`, B' [out, k] sent): E_b = (X_B,b B')ᵀ X_A,b [k, in] (`FactorRefit.rightProduct`), summed,
///   then A' = (B'ᵀ B')⁺ E (`FactorRefit.solveA`).
/// After the last round every rank is rebalanced (`FactorRefit.balance`). The block products and the solves are the
/// unsplit kernel's own functions, so a module of one block gives `FactorRefit.refit`'s bits (tested), and more
/// blocks differ from it only by the order of the sum over units (the in-process reference, `SplitLego`, runs
/// these same rounds, so a split module's bytes do not depend on the workers).
///
/// The state (step, B', A') round-trips exactly through `encoded()` / `decoding(_:)`, so a coordinator checkpoints
/// it after every round and resumes with identical bytes.
public struct FactorRefitRounds: Sendable, Equatable {
    public let outFeatures: Int
    public let inFeatures: Int
    public let rank: Int
    /// Alternating least-squares rounds (each: a LEFT and a RIGHT block round).
    public let rounds: Int
    /// Block rounds reduced so far.
    public private(set) var step = 0
    /// Row-major [out, k] and [k, in]: the current factors (the cluster → rank step's before the first round).
    private(set) var b: [Float]
    private(set) var a: [Float]

    /// The rounds starting from the assembled factors `b` [out, k] and `a` [k, in].
    public init(b: [Float], a: [Float], outFeatures: Int, inFeatures: Int, rank: Int, rounds: Int) throws {
        guard rank > 0, b.count == outFeatures * rank, a.count == rank * inFeatures else {
            throw KernelShapeError(kernel: "refit rounds", problem: "B \(b.count), A \(a.count) values for out "
                                   + "\(outFeatures), in \(inFeatures), rank \(rank)")
        }
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.rank = rank
        self.rounds = max(1, rounds)
        self.b = b
        self.a = a
    }

    public var roundCount: Int { 2 * rounds }
    public var isDone: Bool { step >= roundCount }

    /// The kind of the next round (nil when done).
    public var nextKind: BlockRoundKind? {
        isDone ? nil : step % 2 == 0 ? .refitLeft : .refitRight
    }

    /// The next round's request (the same for every block), numbered `round`; nil when done.
    public func request(round: Int) -> BlockRoundRequest? {
        guard let kind = nextKind else { return nil }
        return BlockRoundRequest(kind: kind, round: round, centers: kind == .refitLeft ? a : b, centerCount: rank)
    }

    /// Checks one block's answer against the next round (`units`: the block's unit count).
    public func validate(_ partial: BlockPartial, units: Int? = nil) throws {
        guard let kind = nextKind else { throw problem("the refit rounds are already done") }
        guard partial.kind == kind else { throw problem("partial of kind \(partial.kind), round needs \(kind)") }
        guard partial.unitCount >= 0, units.map({ $0 == partial.unitCount }) ?? true else {
            throw problem("partial for \(partial.unitCount) units, the block has \(units ?? -1)")
        }
        let values = rank * (kind == .refitLeft ? outFeatures : inFeatures)
        guard partial.sums.count == values, partial.sums.allSatisfy(\.isFinite), partial.units.isEmpty else {
            throw problem("\(kind) partial does not have \(values) finite values")
        }
    }

    /// Reduces the next round's partials (one per block, in block order): the sum, then the half-step's solve.
    public mutating func advance(with partials: [BlockPartial], blockUnits: [Int]? = nil) throws {
        guard !partials.isEmpty else { throw problem("no partials") }
        for (index, partial) in partials.enumerated() { try validate(partial, units: blockUnits?[index]) }
        // Block order, from the first block's partial (not from zero: 0 + x keeps x's bits, -0 included).
        var total = partials[0].sums
        for partial in partials.dropFirst() { ClusterPrincipalDirections.add(partial.sums, to: &total) }
        do {
            if nextKind == .refitLeft {
                b = try FactorRefit.solveB(total, a: a, outFeatures: outFeatures, inFeatures: inFeatures, k: rank)
            } else {
                a = try FactorRefit.solveA(total, b: b, outFeatures: outFeatures, inFeatures: inFeatures, k: rank)
            }
        } catch let error as KernelShapeError {
            throw error
        } catch {
            throw problem("\(error)")
        }
        step += 1
    }

    /// The refitted factors, every rank balanced (nil until done).
    public var factors: (b: [Float], a: [Float])? {
        guard isDone else { return nil }
        var (b, a) = (b, a)
        FactorRefit.balance(b: &b, a: &a, out: outFeatures, inFeatures: inFeatures, k: rank)
        return (b, a)
    }

    private func problem(_ text: String) -> KernelShapeError {
        KernelShapeError(kernel: "refit round \(step)", problem: text)
    }

    // MARK: checkpoint

    /// The state, bit-exact.
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.int(outFeatures); w.int(inFeatures); w.int(rank); w.int(rounds); w.int(step)
        w.floats(b); w.floats(a)
        return w.bytes
    }

    /// Restores `encoded()`; throws on bytes of another shape or round count.
    public init(decoding bytes: [UInt8]) throws {
        var r = ByteReader(bytes, what: "refit rounds state")
        let out = try r.bounded(Int(Int32.max), "out features"), inFeatures = try r.bounded(Int(Int32.max), "in features")
        let rank = try r.bounded(Int(Int32.max), "rank"), rounds = try r.bounded(Int(Int32.max), "rounds")
        let step = try r.bounded(2 * max(1, rounds), "step")
        let b = try r.floats(), a = try r.floats()
        try r.finish()
        try self.init(b: b, a: a, outFeatures: out, inFeatures: inFeatures, rank: rank, rounds: rounds)
        guard self.rounds == rounds else { throw problem("state for \(rounds) rounds") }
        self.step = step
    }
}

/// The block side of the refit rounds: the unsplit kernel's products on the block's units.
extension BlockKMeans {
    static func refit(_ block: UnitBlock, request: BlockRoundRequest) throws -> BlockPartial {
        try requireCenters(request)
        let k = request.centerCount, out = block.outFeatures, inFeatures = block.dimension - block.outFeatures
        let sums: [Float]
        switch request.kind {
        case .refitLeft:
            sums = FactorRefit.leftProduct(units: block.vectors, count: block.count, outFeatures: out,
                                           inFeatures: inFeatures, a: request.centers, k: k)
        case .refitRight:
            sums = FactorRefit.rightProduct(units: block.vectors, count: block.count, outFeatures: out,
                                            inFeatures: inFeatures, b: request.centers, k: k)
        default:
            throw KernelShapeError(kernel: "BlockKMeans", problem: "\(request.kind) is not a refit round")
        }
        return BlockPartial(kind: request.kind, unitCount: block.count, sums: sums)
    }
}
