import Foundation

/// The quality figures of a split module (relative error against T and the Eckart–Young floor), computed from
/// products of T that are sums over blocks (`BlockKMeans.product`), reduced in block order by the coordinator as
/// the rounds of one more track of `SplitKMeans`. The figures are formed once the merged factors B'A' exist.
///
/// Exact or estimated by the rule of unsplit modules (docs/kernels.md "Quality figures"): exact when `report:
/// exact`, or when `QualityCostModel`'s exact figures fit a quarter of lego's modelled flops for the clustering
/// actually run (`decide`, once the clustering is done: iterations and cluster count are known only then).
/// - estimation (unless `report: exact`), from the start, side by side with the restarts: round 0 returns
///   T·[G | Ω] (Hutchinson probes G = `QualityEstimator.probes(seed, in, m)` and a range-sketch start Ω); then
///   subspace iteration, Tᵀ·Q (W) and T·W with Q = orth(T·W), until the top-k energy S = Σ_{i≤k} σ_i(W)² settles
///   within `tolerance` (at least 2, at most `maxEvaluations` Rayleigh–Ritz evaluations). Figures as the unsplit
///   estimate: ‖QᵀT‖² = ‖W‖² and ‖Qᵀ(T − B'A')‖² exact, the tails sampled by the probes deflated by Q; floor
///   sqrt((t̄ − S)/t̄) ± se, the stated error including the last rise of S (the sketch may still be short).
/// - exact: one round after the estimation (or the only round, for `report: exact`), every block returns T_b;
///   T = Σ_b T_b ([out, in] at the coordinator), then the unsplit exact routes (`StackedProduct.quality` on T).
public struct SplitQualityTrack: Sendable, Equatable {
    public let outFeatures: Int
    public let inFeatures: Int
    public let blockCount: Int
    /// Hutchinson probes m (0 when exact is forced).
    public let probes: Int
    /// Sketch width w (0: no floor estimate).
    public let width: Int
    /// Rank k of the floor the sketch is for.
    public let rank: Int
    public let maxEvaluations: Int
    /// The rule's inputs: stacked rank R of the module, restarts, and `report: exact`.
    public let stacked: Int
    public let restarts: Int
    public let forcedExact: Bool
    public static let tolerance = 1e-3
    /// The share of the merge's modelled flops exact figures may cost (as unsplit modules).
    public static let budgetShare = 0.25
    static let sketchStream: UInt64 = 0x534B_4348  // "SKCH"

    /// Estimation rounds reduced.
    public private(set) var step = 0
    public private(set) var estimationDone = false
    /// Whether `decide` ran, and its answer.
    public private(set) var decided = false
    public private(set) var exact = false
    /// TG [out, m].
    private(set) var image: [Float] = []
    /// T [out, in] once the exact round is reduced.
    private(set) var target: [Float] = []
    /// Q [out, w], orthonormal.
    private(set) var basis: [Float] = []
    /// W = TᵀQ [in, w] (after a Rayleigh–Ritz round).
    private(set) var projected: [Float] = []
    /// S after each Rayleigh–Ritz round.
    private(set) var captured: [Double] = []

    public init(outFeatures: Int, inFeatures: Int, blockCount: Int, stacked: Int, restarts: Int, forcedExact: Bool,
                probes: Int = QualityEstimator.probeCount, width: Int = 0, rank: Int = 0, maxEvaluations: Int = 6) {
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.blockCount = blockCount
        self.stacked = max(stacked, 0)
        self.restarts = max(restarts, 1)
        self.forcedExact = forcedExact
        self.probes = forcedExact ? 0 : min(max(probes, 2), BlockKMeans.maxProductColumns)
        self.width = forcedExact ? 0 : min(max(width, 0), BlockKMeans.maxProductColumns, outFeatures, inFeatures)
        self.rank = max(rank, 0)
        self.maxEvaluations = max(2, maxEvaluations)
        if forcedExact { estimationDone = true; decided = true; exact = true }
    }

    /// lego's modelled flops, the unsplit rule's budget base (`ModuleQuality` uses it too): restarts × (Lloyd
    /// steps + 2 for seeding) × 4·R·(out + in)·k.
    public static func legoMergeFlops(restarts: Int, iterations: Int, stacked: Int, rows: Int, cols: Int,
                                      rank: Int) -> Double {
        Double(max(restarts, 1)) * Double(max(iterations, 0) + 2) * 4 * Double(stacked) * Double(rows + cols)
            * Double(max(rank, 1))
    }

    /// Applies the rule once the clustering is known (idempotent; no effect when exact is forced). A result with
    /// one cluster per unit reproduces T and needs no figures computed.
    public mutating func decide(clusterCount k: Int, iterations: Int, unitCount: Int) {
        guard !decided else { return }
        decided = true
        guard k > 0, k < unitCount else { return }
        let costs = QualityCostModel(rows: outFeatures, cols: inFeatures, inner: max(stacked, 1), rank: k)
        exact = costs.exact <= Self.budgetShare * Self.legoMergeFlops(restarts: restarts, iterations: iterations,
                                                                        stacked: stacked, rows: outFeatures,
                                                                        cols: inFeatures, rank: k)
    }

    /// False for a restored state whose exact round ran although the (re-applied) decision says estimate.
    public var isConsistent: Bool { target.isEmpty || exact }

    /// Whether every round the figures need has been reduced.
    public var isDone: Bool { estimationDone && decided && (!exact || !target.isEmpty) }

    /// Rounds reduced.
    public var rounds: Int { step + (target.isEmpty ? 0 : 1) }

    /// [G | Ω] row-major [in, probes + width]: what a probe round multiplies T by (built by every block).
    public static func probeMatrix(seed: UInt64, inFeatures: Int, probes: Int, sketchWidth: Int) -> [Float] {
        let g = QualityEstimator.probes(seed: seed, cols: inFeatures, count: probes)
        let omega = QualityEstimator.probes(seed: seed ^ sketchStream, cols: inFeatures, count: sketchWidth)
        var matrix: [Float] = []
        matrix.reserveCapacity(inFeatures * (probes + sketchWidth))
        for row in 0..<inFeatures {
            matrix.append(contentsOf: g[(row * probes)..<((row + 1) * probes)])
            matrix.append(contentsOf: omega[(row * sketchWidth)..<((row + 1) * sketchWidth)])
        }
        return matrix
    }

    /// The next round's request (the same for every block); nil when none is due (done, or waiting for `decide`).
    public var request: BlockRoundRequest? {
        if !estimationDone {
            switch step {
            case 0: return BlockRoundRequest(kind: .probeImage, round: step, centerCount: width, probes: probes)
            case let s where s % 2 == 1:
                return BlockRoundRequest(kind: .targetTransposedTimes, round: step, centers: basis, centerCount: width)
            default: return BlockRoundRequest(kind: .targetTimes, round: step, centers: projected, centerCount: width)
            }
        }
        return decided && exact && target.isEmpty ? BlockRoundRequest(kind: .target, round: step) : nil
    }

    /// Values a partial of the current round holds.
    private var expectedValues: Int {
        guard let request else { return 0 }
        switch request.kind {
        case .target: return outFeatures * inFeatures
        case .probeImage: return outFeatures * (probes + width)
        case .targetTimes: return outFeatures * width
        default: return inFeatures * width
        }
    }

    public func validate(_ partial: BlockPartial) throws {
        guard let request else { throw Self.problem("no quality round is running") }
        guard partial.kind == request.kind, partial.unitCount >= 0, partial.sums.count == expectedValues,
              partial.sums.allSatisfy(\.isFinite) else {
            throw Self.problem("a \(request.kind) partial must hold \(expectedValues) finite values "
                               + "(it is a \(partial.kind) partial of \(partial.sums.count))")
        }
    }

    /// Reduces the round (one partial per block, added in block order).
    public mutating func advance(with partials: [BlockPartial]) throws {
        guard partials.count == blockCount else { throw Self.problem("\(partials.count) partials for \(blockCount) blocks") }
        for partial in partials { try validate(partial) }
        guard let kind = request?.kind else { return }
        var sum = partials[0].sums
        for partial in partials.dropFirst() { for i in sum.indices { sum[i] += partial.sums[i] } }
        if kind == .target {
            target = sum
            return
        }
        step += 1
        switch kind {
        case .probeImage:
            let columns = probes + width
            image = (0..<outFeatures).flatMap { sum[($0 * columns)..<($0 * columns + probes)] }
            if width == 0 { estimationDone = true; return }
            let sketch = (0..<outFeatures).flatMap { sum[($0 * columns + probes)..<(($0 + 1) * columns)] }
            basis = try LinearAlgebra.thinQR(sketch, rows: outFeatures, cols: width).q
        case .targetTimes:
            basis = try LinearAlgebra.thinQR(sum, rows: outFeatures, cols: width).q
        default:
            projected = sum
            let values = try LinearAlgebra.svd(sum, rows: inFeatures, cols: width).s
            let energy = values.prefix(rank).reduce(0.0) { $0 + Double($1) * Double($1) }
            captured.append(energy)
            let settled = captured.count >= 2 && energy - captured[captured.count - 2] <= Self.tolerance * energy
            if settled || captured.count >= maxEvaluations { estimationDone = true }
        }
    }

    /// The figures of the merged factors B' (row-major [out, rank]) and A' ([rank, in]) against T, once done.
    public func quality(approximationLeft: [Float], approximationRight: [Float], rank k: Int,
                        seed: UInt64) throws -> ProductQuality {
        guard isDone else { throw Self.problem("the quality rounds have not finished") }
        guard approximationLeft.count == outFeatures * k, approximationRight.count == k * inFeatures else {
            throw Self.problem("merged factors of \(approximationLeft.count) and \(approximationRight.count) values for "
                               + "rank \(k) of [\(outFeatures), \(inFeatures)]")
        }
        let bound = min(outFeatures, inFeatures)
        if exact {
            let image = target
            guard image.contains(where: { $0 != 0 }) else {
                return ProductQuality(relativeError: 0, targetNorm: 0, floor: 0, route: .denseGram)
            }
            // T as a stacked product whose short side is an identity: the unsplit exact routes apply unchanged.
            let tall = outFeatures >= inFeatures
            var identity = [Float](repeating: 0, count: bound * bound)
            for i in 0..<bound { identity[i * bound + i] = 1 }
            let product = tall
                ? try StackedProduct(leftColumns: FactoredProduct.transposed(image, rows: outFeatures, cols: inFeatures),
                                     right: identity, rows: outFeatures, inner: inFeatures, cols: inFeatures)
                : try StackedProduct(leftColumns: identity, right: image, rows: outFeatures, inner: outFeatures,
                                     cols: inFeatures)
            return try product.quality(approximationLeft: approximationLeft, approximationRight: approximationRight,
                                       rank: k, spectrumRank: k, seed: seed)
        }
        let g = QualityEstimator.probes(seed: seed, cols: inFeatures, count: probes)
        var deflation = QualityEstimator.Deflation.none
        if width > 0, !projected.isEmpty {
            let errorSquared = StackedProduct.projectedErrorSquared(
                image: projected, basisBlock: basis, width: width, rows: outFeatures, cols: inFeatures,
                left: approximationLeft, right: approximationRight, rank: k)
            deflation = QualityEstimator.Deflation(basis: [basis], widths: [width],
                                                   targetSquared: StackedProduct.squaredNorm(projected),
                                                   errorSquared: errorSquared)
        }
        let samples = QualityEstimator.samples(targetImage: image, probes: g, count: probes,
                                               approximationLeft: approximationLeft, approximationRight: approximationRight,
                                               rank: k, rows: outFeatures, cols: inFeatures, deflation: deflation)
        let error = QualityEstimator.relativeError(samples)
        var quality = ProductQuality(relativeError: error.value, targetNorm: error.targetNorm, floor: nil,
                                     route: .krylov, relativeErrorStandardError: error.standardError)
        if let top = captured.last {
            if k >= bound {
                quality.floor = 0
                quality.floorStandardError = 0
            } else {
                // S may still rise by about its last increment (capped by Ky Fan's bound: the energy outside the
                // basis): the floor is an upper bound by up to that much.
                let remaining = captured.count >= 2 ? max(top - captured[captured.count - 2], 0) : top
                let floor = QualityEstimator.boundedFloor(samples, capturedTop: top, extrapolatedRise: remaining,
                                                          deflatedSquared: deflation.targetSquared, outsideExact: 0)
                quality.floor = floor.value
                quality.floorStandardError = floor.standardError
            }
        }
        return quality
    }

    static func problem(_ text: String) -> KernelShapeError { KernelShapeError(kernel: "split quality track", problem: text) }

    // MARK: checkpoint

    /// The parameters and every reduced value, bit-exact. The decision is not written: it is a function of the
    /// clustering, applied again (`decide`) when a split k-means is restored.
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        for value in parameters { w.int(value) }
        w.int(step); w.int(estimationDone ? 1 : 0)
        w.floats(image); w.floats(target); w.floats(basis); w.floats(projected); w.doubles(captured)
        return w.bytes
    }

    private var parameters: [Int] {
        [outFeatures, inFeatures, blockCount, probes, width, rank, maxEvaluations, stacked, restarts, forcedExact ? 1 : 0]
    }

    /// Restores `encoded()` of a track configured like `self`; throws on anything else.
    public func decoding(_ bytes: [UInt8]) throws -> SplitQualityTrack {
        var r = ByteReader(bytes, what: "split quality track")
        for value in parameters {
            guard try r.int() == value else { throw Self.problem("state written for other quality settings") }
        }
        var track = self
        track.step = try r.bounded(2 * maxEvaluations + 2, "step")
        track.estimationDone = try r.bounded(1, "estimation flag") == 1
        track.image = try r.floats(); track.target = try r.floats(); track.basis = try r.floats()
        track.projected = try r.floats(); track.captured = try r.doubles()
        try r.finish()
        guard track.image.count == (track.step > 0 ? outFeatures * probes : 0),
              track.target.isEmpty || track.target.count == outFeatures * inFeatures,
              track.basis.isEmpty || track.basis.count == outFeatures * width,
              track.projected.isEmpty || track.projected.count == inFeatures * width,
              track.captured.count == track.step / 2, track.captured.allSatisfy(\.isFinite),
              !forcedExact || track.step == 0, track.estimationDone || track.target.isEmpty,
              (track.image + track.target + track.basis + track.projected).allSatisfy(\.isFinite) else {
            throw Self.problem("state values do not match step \(track.step)")
        }
        return track
    }
}
