import CSIMD

/// The combine step of the task-vector merges, one term block at a time: each (pruned) block of τ_i is added into
/// running sums while it is still in cache, so no block of every term is ever held (CSIMD kernels, every path the
/// same bits). TIES keeps the positive and negative parts apart (sums and counts): the disjoint mean of whichever
/// sign the vote elects is then known after the last term, with the bits of the two-pass form (elect, then sum the
/// agreeing values in term order and divide by their count), because every sum still adds its values in term order
/// and +0 for the others.
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

    public let mode: Mode
    public let capacity: Int
    private var count = 0
    private let sum, vote, negative, positives, negatives: UnsafeMutablePointer<Float>

    /// Sums for blocks of up to `capacity` entries.
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

    /// Starts a block of `count` entries (all sums zero).
    public func reset(count: Int) {
        precondition(count <= capacity, "TaskVectorCombine: block of \(count) entries over capacity \(capacity)")
        self.count = count
        sum.update(repeating: 0, count: count)
        guard mode != .sum else { return }
        if mode == .ties(total: true) { vote.update(repeating: 0, count: count) }
        negative.update(repeating: 0, count: count)
        positives.update(repeating: 0, count: count)
        negatives.update(repeating: 0, count: count)
    }

    /// Adds the next term's block (`count` entries), keeping only entries whose |value| bit pattern is at least
    /// `keepAtLeast` (0 keeps all, `UInt32.max` none): the magnitude cut fused into the same pass.
    public func add(_ block: UnsafePointer<Float>, keepAtLeast least: UInt32 = 0) {
        brickyard_prune_accumulate(block, count, least, mode.code, sum, vote, negative, positives, negatives)
    }

    /// Writes the combined block (`count` entries) to `target`.
    public func finish(into target: UnsafeMutablePointer<Float>) {
        if mode == .sum {
            target.update(from: sum, count: count)
        } else {
            brickyard_ties_finish(count, mode.code, sum, vote, negative, positives, negatives, target)
        }
    }

    /// `add` forced onto a CSIMD path (capped at what this CPU has), for the tests that every path agrees.
    func add(onPath path: Int, _ block: UnsafePointer<Float>, keepAtLeast least: UInt32 = 0) {
        brickyard_prune_accumulate_on_path(Int32(path), block, count, least, mode.code, sum, vote, negative, positives,
                                           negatives)
    }
}
