import CSIMD

/// The combine step of the task-vector merges, a group of term blocks at a time: each (pruned) block of τ_i is
/// added into running sums right after it is formed, so no block of every term is ever held (CSIMD kernels, every
/// path the same bits). TIES keeps the positive and negative parts apart (sums and counts): the disjoint mean of
/// whichever sign the vote elects is then known after the last term, with the bits of the two-pass form (elect,
/// then sum the agreeing values in term order and divide by their count), because every sum still adds its values
/// in term order and +0 for the others.
public final class TaskVectorCombine {
    /// How the pruned task vectors are combined.
    public enum Mode: Sendable, Equatable {
        /// Σ_i τ_i entry by entry (magnitude_prune, dare_linear).
        case sum
        /// TIES' disjoint mean; the sign elected by Σ_i τ_i (`total`) or by Σ_i sign(τ_i) (`frequency`).
        case ties(total: Bool)

        var code: Int32 {
            switch self {
            case .sum: Int32(BRICKYARD_TV_SUM)
            case .ties(let total): Int32(total ? BRICKYARD_TV_TIES_TOTAL : BRICKYARD_TV_TIES_FREQUENCY)
            }
        }
    }

    /// One term's block in a group: its entries and its cut (keep iff |value|'s bits > `threshold`, or equal at a
    /// block index ≤ `tieLimit`; (0, count) keeps everything).
    public struct Term {
        public var block: UnsafePointer<Float>
        public var threshold: UInt32
        public var tieLimit: Int

        public init(block: UnsafePointer<Float>, threshold: UInt32 = 0, tieLimit: Int = Int(Int32.max)) {
            self.block = block
            self.threshold = threshold
            self.tieLimit = tieLimit
        }
    }

    public let mode: Mode
    public let capacity: Int
    private var count = 0
    private let sum, vote, negative, positives, negatives: UnsafeMutablePointer<Float>

    /// Sums for spans of up to `capacity` entries.
    public init(mode: Mode, capacity: Int) {
        self.mode = mode
        self.capacity = max(capacity, 1)
        let ties = mode != .sum
        sum = .allocate(capacity: self.capacity)
        vote = .allocate(capacity: mode == .ties(total: true) ? self.capacity : 1)
        negative = .allocate(capacity: ties ? self.capacity : 1)
        positives = .allocate(capacity: ties ? self.capacity : 1)
        negatives = .allocate(capacity: ties ? self.capacity : 1)
    }

    deinit {
        for buffer in [sum, vote, negative, positives, negatives] { buffer.deallocate() }
    }

    /// Starts a span of `count` entries (all sums zero).
    public func reset(count: Int) {
        precondition(count <= capacity, "TaskVectorCombine: span of \(count) entries over capacity \(capacity)")
        self.count = count
        sum.update(repeating: 0, count: count)
        guard mode != .sum else { return }
        if mode == .ties(total: true) { vote.update(repeating: 0, count: count) }
        negative.update(repeating: 0, count: count)
        positives.update(repeating: 0, count: count)
        negatives.update(repeating: 0, count: count)
    }

    /// Adds the next group of terms, in order, over the span: entries `offset ..< offset + count` of each block
    /// (tie limits are block indices). `path` forces a CSIMD path (tests); nil takes this CPU's best.
    public func add(_ terms: [Term], offset: Int = 0) { add(onPath: nil, terms, offset: offset) }

    func add(onPath path: Int?, _ terms: [Term], offset: Int = 0) {
        guard !terms.isEmpty, count > 0 else { return }
        let blocks: [UnsafePointer<Float>?] = terms.map { $0.block + offset }
        let thresholds = terms.map(\.threshold)
        let limits = terms.map { min(max($0.tieLimit - offset, -1), Int(Int32.max)) }
        blocks.withUnsafeBufferPointer { pb in
            if let path {
                brickyard_prune_accumulate_on_path(Int32(path), pb.baseAddress, thresholds, limits, Int32(terms.count),
                                                   count, mode.code, sum, vote, negative, positives, negatives)
            } else {
                brickyard_prune_accumulate(pb.baseAddress, thresholds, limits, Int32(terms.count), count, mode.code,
                                           sum, vote, negative, positives, negatives)
            }
        }
    }

    /// Writes the combined span (`count` entries) to `target`.
    public func finish(into target: UnsafeMutablePointer<Float>) {
        if mode == .sum {
            target.update(from: sum, count: count)
        } else {
            brickyard_ties_finish(count, mode.code, sum, vote, negative, positives, negatives, target)
        }
    }
}
