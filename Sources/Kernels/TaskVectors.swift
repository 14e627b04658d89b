import CSIMD

/// One low-rank task vector `τ = coefficient · B · A` given by its factors (B row-major [rows, rank],
/// A row-major [rank, cols]). Dense task-vector merges never hold a whole τ: they build it in row blocks.
public struct LowRankTerm: Sendable {
    public var coefficient: Float
    public var rank: Int
    public var b: [Float]
    public var a: [Float]

    public init(coefficient: Float, rank: Int, b: [Float], a: [Float]) {
        self.coefficient = coefficient
        self.rank = rank
        self.b = b
        self.a = a
    }
}

/// Which entries of a task vector survive magnitude pruning: every entry with |value| above `threshold`, plus
/// the first `equalToKeep` entries (in row-major order) whose |value| equals it. This makes "keep the k largest"
/// exact and deterministic when several entries tie at the k-th magnitude (torch.topk breaks such ties
/// arbitrarily; we break them by position).
public struct MagnitudeCut: Sendable, Equatable {
    /// Bit pattern of the k-th largest |value| (non-negative floats order like their bit patterns).
    public var thresholdBits: UInt32
    public var equalToKeep: Int
    /// Keep nothing (k = 0).
    public var keepNone: Bool
    /// How many entries of the whole task vector have |value| equal to the threshold (≥ `equalToKeep`).
    public var equalTotal: Int
    /// Row-major index of the last tied entry that is kept (−1: none), when known (the one-pass cut records it):
    /// a tied entry is then kept iff its index is at most this, which needs no walk in order.
    public var lastTieKept: Int?

    public init(thresholdBits: UInt32, equalToKeep: Int, keepNone: Bool, equalTotal: Int, lastTieKept: Int? = nil) {
        self.thresholdBits = thresholdBits
        self.equalToKeep = equalToKeep
        self.keepNone = keepNone
        self.equalTotal = equalTotal
        self.lastTieKept = lastTieKept
    }

    public static let none = MagnitudeCut(thresholdBits: 0, equalToKeep: 0, keepNone: true, equalTotal: 0)

    /// The cut on the block of `count` entries starting at row-major index `first`, as a threshold and a tie limit
    /// (keep iff |value|'s bits > threshold, or = threshold at a block index ≤ limit; `TaskVectorCombine`), or nil
    /// when only some tied entries survive and their positions are unknown (then `applyCut` walks them in order).
    public func bounds(first: Int, count: Int) -> (threshold: UInt32, tieLimit: Int)? {
        if keepNone { return (0x7fff_ffff, -1) }
        if equalToKeep == 0 { return (thresholdBits, -1) }
        if equalToKeep == equalTotal { return (thresholdBits, count) }
        guard let lastTieKept else { return nil }
        return (thresholdBits, min(max(lastTieKept - first, -1), count))
    }
}

/// Blocked dense construction of task vectors and the exact selection of magnitude thresholds.
public enum TaskVectors {
    /// Entries per row block of a task vector in the task-vector merges' passes (about 256 KB): small enough that
    /// a group of blocks and the running sums stay in cache, large enough to amortise each block's setup.
    public static let blockEntries = 1 << 16

    /// Rows per block of the task-vector merges' passes for [rows, cols]: a function of the shape alone (never of
    /// the number of terms or workers). The values do not depend on it (`fillBlock`), only the speed.
    public static func passRows(rows: Int, cols: Int) -> Int {
        max(1, min(rows, blockEntries / max(cols, 1)))
    }

    /// Rows per block such that `copies` blocks of [rows, cols] Float32 fit in `budgetBytes` (at least 1 row).
    public static func blockRows(rows: Int, cols: Int, copies: Int, budgetBytes: Int = 64 << 20) -> Int {
        let perRow = max(1, cols * max(copies, 1) * MemoryLayout<Float>.size)
        return max(1, min(rows, budgetBytes / perRow))
    }

    /// Writes rows `rowStart ..< rowStart + rowCount` of `coefficient · B · A` into `destination` ([rowCount, cols])
    /// by CSIMD's low-rank block kernel: each entry is coefficient × the fused multiply-add chain over the rank in
    /// order, the same bits on every CPU path, for any block shape and whatever OpenBLAS kernel set is loaded (the
    /// arithmetic of OpenBLAS's SkylakeX sgemm for these calls), with no packing of A and no zeroing per call.
    public static func fillBlock(_ term: LowRankTerm, cols: Int, rowStart: Int, rowCount: Int,
                                 into destination: UnsafeMutablePointer<Float>) {
        fillBlock(onPath: nil, term, cols: cols, rowStart: rowStart, rowCount: rowCount, into: destination)
    }

    /// `fillBlock` on a forced CSIMD path (tests); nil takes this CPU's best.
    static func fillBlock(onPath path: Int?, _ term: LowRankTerm, cols: Int, rowStart: Int, rowCount: Int,
                          into destination: UnsafeMutablePointer<Float>) {
        term.b.withUnsafeBufferPointer { pb in
            term.a.withUnsafeBufferPointer { pa in
                guard let b = pb.baseAddress, let a = pa.baseAddress, term.rank > 0,
                      pb.count >= (rowStart + rowCount) * term.rank, pa.count >= term.rank * cols else {
                    destination.update(repeating: 0, count: rowCount * cols)
                    return
                }
                if let path {
                    brickyard_low_rank_block_on_path(Int32(path), b + rowStart * term.rank, rowCount, term.rank, a,
                                                     cols, term.coefficient, destination)
                } else {
                    brickyard_low_rank_block(b + rowStart * term.rank, rowCount, term.rank, a, cols,
                                             term.coefficient, destination)
                }
            }
        }
    }

    /// The cut that keeps exactly `keep` entries of `τ` ([rows, cols]) with the largest |value|.
    /// Usually one pass (`MagnitudeSelection`): a sample of rows brackets the cut, the pass counts the entries
    /// above the bracket and collects those inside it, and a radix selection among those finds the exact cut.
    /// When the sample's bracket misses (or would hold too many entries), the two-pass radix selection over every
    /// entry (`histogramCut`) gives the same cut. `blockRows` is the passes' block height (the values do not
    /// depend on it: `fillBlock`).
    public static func magnitudeCut(_ term: LowRankTerm, rows: Int, cols: Int, keep: Int, blockRows: Int) -> MagnitudeCut {
        let total = rows * cols
        guard keep > 0, total > 0 else { return .none }
        if keep >= total { return MagnitudeCut(thresholdBits: 0, equalToKeep: total, keepNone: false, equalTotal: total) }
        if let bracket = MagnitudeSelection.bracket(term, rows: rows, cols: cols, keep: keep),
           let cut = MagnitudeSelection.scanCut(term, rows: rows, cols: cols, keep: keep, blockRows: blockRows,
                                                bracket: bracket) {
            return cut
        }
        return histogramCut(term, rows: rows, cols: cols, keep: keep, blockRows: blockRows)
    }

    /// The cut by radix selection over every entry: one pass histograms the high 16 bits of |value|, a second pass
    /// the low 16 bits inside the selected bucket. Memory: one block and two 64 K-entry histograms.
    static func histogramCut(_ term: LowRankTerm, rows: Int, cols: Int, keep: Int, blockRows: Int) -> MagnitudeCut {
        var high = [Int](repeating: 0, count: 1 << 16)
        forEachBlock(term, rows: rows, cols: cols, blockRows: blockRows) { block in
            for value in block { high[Int((value.bitPattern & 0x7fff_ffff) >> 16)] += 1 }
        }
        let (highBucket, aboveHigh) = selectBucket(high, rank: keep)
        var low = [Int](repeating: 0, count: 1 << 16)
        let bucket = UInt32(highBucket)
        forEachBlock(term, rows: rows, cols: cols, blockRows: blockRows) { block in
            for value in block {
                let bits = value.bitPattern & 0x7fff_ffff
                if bits >> 16 == bucket { low[Int(bits & 0xffff)] += 1 }
            }
        }
        let (lowBucket, aboveLow) = selectBucket(low, rank: keep - aboveHigh)
        let greater = aboveHigh + aboveLow
        return MagnitudeCut(thresholdBits: bucket << 16 | UInt32(lowBucket), equalToKeep: keep - greater,
                            keepNone: false, equalTotal: low[lowBucket])
    }

    /// Applies `cut` to a block in place. `equalSeen` counts ties at the threshold met so far in row-major order
    /// across blocks; call blocks in order.
    public static func applyCut(_ cut: MagnitudeCut, to block: UnsafeMutableBufferPointer<Float>, equalSeen: inout Int) {
        if cut.keepNone {
            block.update(repeating: 0)
            return
        }
        // Ties at the threshold are rare: count them first so the common case is one branch-free pass.
        var ties = 0
        for value in block { ties += (value.bitPattern & 0x7fff_ffff) == cut.thresholdBits ? 1 : 0 }
        if ties == 0 || equalSeen >= cut.equalToKeep {
            guard let base = block.baseAddress else { return }
            for index in 0..<block.count {
                let bits = base[index].bitPattern
                // All ones when |value| > threshold: thresholdBits − |bits| is then negative (both < 2^31).
                let keep = UInt32(bitPattern: Int32(bitPattern: cut.thresholdBits &- (bits & 0x7fff_ffff)) >> 31)
                base[index] = Float(bitPattern: bits & keep)
            }
            return
        }
        for index in block.indices {
            let bits = block[index].bitPattern & 0x7fff_ffff
            if bits > cut.thresholdBits { continue }
            if bits == cut.thresholdBits && equalSeen < cut.equalToKeep {
                equalSeen += 1
                continue
            }
            block[index] = 0
        }
    }

    /// DARE: keeps each entry with probability `density` (counter-based stream `key`, entry index = row-major
    /// position in the whole matrix, so masks do not depend on blocking) and rescales survivors by 1/density.
    /// An entry is kept when the top 24 of its 32 random bits, read as u in [0, 1), are below `density`.
    public static func applyRandomDrop(key: UInt64, density: Float, firstIndex: Int,
                                       to block: UnsafeMutableBufferPointer<Float>) {
        let scale = 1 / density
        let threshold = keepThreshold(density)
        let first = UInt32(truncatingIfNeeded: firstIndex)
        guard let base = block.baseAddress else { return }
        for index in 0..<block.count {
            let draw = CounterRandom.bits32(key: key, index: first &+ UInt32(truncatingIfNeeded: index)) >> 8
            // All ones when draw < threshold (both < 2^24, so the difference's sign bit decides): no branch to
            // mispredict on a coin flip per entry.
            let keep = UInt32(bitPattern: Int32(bitPattern: draw &- threshold) >> 31)
            base[index] = Float(bitPattern: (base[index] * scale).bitPattern & keep)
        }
    }

    /// Whether DARE keeps entry `index` of stream `key` (the same rule `applyRandomDrop` uses), for checks.
    public static func randomDropKeeps(key: UInt64, density: Float, index: Int) -> Bool {
        CounterRandom.bits32(key: key, index: UInt32(truncatingIfNeeded: index)) >> 8 < keepThreshold(density)
    }

    /// u24 · 2⁻²⁴ < density  ⇔  u24 < ⌈density · 2²⁴⌉ (exact: the product is a power-of-two scaling).
    private static func keepThreshold(_ density: Float) -> UInt32 {
        UInt32(min(Double(density) * 0x1p24, 0x1p24).rounded(.up))
    }

    /// Calls `body` with each row block of `τ` in order.
    static func forEachBlock(_ term: LowRankTerm, rows: Int, cols: Int, blockRows: Int,
                             _ body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let step = max(1, blockRows)
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: step * cols)
        defer { buffer.deallocate() }
        guard let base = buffer.baseAddress else { return }
        var start = 0
        while start < rows {
            let count = min(step, rows - start)
            fillBlock(term, cols: cols, rowStart: start, rowCount: count, into: base)
            body(UnsafeMutableBufferPointer(rebasing: buffer[0..<(count * cols)]))
            start += count
        }
    }

    /// The bucket holding the `rank`-th largest element (1-based) and how many elements lie in higher buckets.
    static func selectBucket(_ histogram: [Int], rank: Int) -> (bucket: Int, above: Int) {
        var above = 0
        for bucket in stride(from: histogram.count - 1, through: 0, by: -1) {
            if above + histogram[bucket] >= rank { return (bucket, above) }
            above += histogram[bucket]
        }
        return (0, above)
    }
}
