import CSIMD
import Foundation

/// The one-pass exact magnitude cut of a task vector τ = c·B·A (`TaskVectors.magnitudeCut`): a sample of evenly
/// spaced rows estimates where the k-th largest |value| lies and brackets it generously (bit patterns
/// [lo, hi]); one pass over τ counts the entries above the bracket and collects the magnitudes inside it (CSIMD
/// scan); the exact k-th largest is then selected among those by radix selection. The sample only decides how
/// much is collected: the cut is exact whatever it says, and a bracket that misses (or would overflow) is
/// reported as nil, so the caller falls back to the two-pass selection over every entry, with the same result.
enum MagnitudeSelection {
    /// Sampled rows (evenly spaced) and columns (evenly strided): rows of τ differ in scale, so rows matter most.
    static let sampleRows = 1024
    static let sampleColumns = 256
    /// Standard errors of the sample's kept fraction the bracket spans on each side (a miss costs one more pass).
    static let spread = 4.0

    /// A bracket [lo, hi] of |value| bit patterns that should hold the k-th largest magnitude (nil: too small a
    /// task vector to bother; the two-pass selection is cheap there).
    static func bracket(_ term: LowRankTerm, rows: Int, cols: Int, keep: Int) -> ClosedRange<UInt32>? {
        let total = rows * cols
        let rank = term.rank
        guard total >= 1 << 16, rank > 0, term.b.count >= rows * rank, term.a.count >= rank * cols else { return nil }
        let sampled = min(rows, sampleRows), columns = min(cols, sampleColumns)
        var left = [Float](repeating: 0, count: sampled * rank)
        for s in 0..<sampled {
            let row = (2 * s + 1) * rows / (2 * sampled)
            for r in 0..<rank { left[s * rank + r] = term.b[row * rank + r] }
        }
        var right = [Float](repeating: 0, count: rank * columns)
        for r in 0..<rank {
            for c in 0..<columns { right[r * columns + c] = term.a[r * cols + (2 * c + 1) * cols / (2 * columns)] }
        }
        let values = BLAS.matmul(left, right, m: sampled, n: columns, k: rank).map { $0 * term.coefficient }
        // High-16-bit buckets of the sampled magnitudes, overall and per row.
        var histogram = [Int](repeating: 0, count: 1 << 16)
        let buckets = values.map { value -> UInt16 in
            let bucket = UInt16((value.bitPattern & 0x7fff_ffff) >> 16)
            histogram[Int(bucket)] += 1
            return bucket
        }
        let n = values.count
        let fraction = Double(keep) / Double(total)
        // The kept fraction's spread over rows (the sample is a cluster sample of rows).
        let (center, _) = TaskVectors.selectBucket(histogram, rank: max(1, Int((fraction * Double(n)).rounded())))
        let rowFractions = (0..<sampled).map { s in
            Double(buckets[(s * columns)..<((s + 1) * columns)].filter { Int($0) > center }.count) / Double(columns)
        }
        let mean = rowFractions.reduce(0, +) / Double(sampled)
        let variance = rowFractions.reduce(0.0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(sampled - 1, 1))
        let population = max(0, 1 - Double(sampled) / Double(rows))
        let rowError = (variance / Double(sampled) * population).squareRoot()
        let pointError = (fraction * (1 - fraction) / Double(n)).squareRoot()
        let margin = spread * (rowError + pointError) + 1e-3
        let upper = fraction - margin, lower = fraction + margin
        let hi: UInt32 = upper <= 0
            ? 0x7fff_ffff
            : UInt32(TaskVectors.selectBucket(histogram, rank: max(1, Int((upper * Double(n)).rounded(.down)))).bucket) << 16 | 0xffff
        let lo: UInt32 = lower >= 1
            ? 0
            : UInt32(TaskVectors.selectBucket(histogram, rank: min(n, Int((lower * Double(n)).rounded(.up)))).bucket) << 16
        return lo <= hi ? lo...hi : nil
    }

    /// The exact cut from one pass over τ with `bracket`, or nil when the k-th largest magnitude is not inside it,
    /// the bracket holds more than a quarter of the entries, or τ has 2³² entries or more (positions are 32-bit).
    /// Candidates come in row-major order, so the last kept tie is the `equalToKeep`-th candidate at the threshold.
    static func scanCut(_ term: LowRankTerm, rows: Int, cols: Int, keep: Int, blockRows: Int,
                        bracket: ClosedRange<UInt32>) -> MagnitudeCut? {
        let total = rows * cols
        guard total < 1 << 32 else { return nil }
        let capacity = max(1 << 16, total / 4)
        let candidates = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity + 16)
        let positions = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity + 16)
        defer {
            candidates.deallocate()
            positions.deallocate()
        }
        var above = 0, found = 0, first = 0
        TaskVectors.forEachBlock(term, rows: rows, cols: cols, blockRows: blockRows) { block in
            scan(UnsafeBufferPointer(block), first: first, bracket: bracket, above: &above, candidates: candidates,
                 positions: positions, capacity: capacity, found: &found)
            first += block.count
        }
        guard found <= capacity, above < keep, keep <= above + found else { return nil }
        let (bits, greater, equal) = select(UnsafeBufferPointer(start: candidates, count: found), rank: keep - above)
        let equalToKeep = keep - above - greater
        var lastTieKept = -1, seen = 0
        for index in 0..<found where seen < equalToKeep && candidates[index] == bits {
            seen += 1
            lastTieKept = Int(positions[index])
        }
        return MagnitudeCut(thresholdBits: bits, equalToKeep: equalToKeep, keepNone: false, equalTotal: equal,
                            lastTieKept: lastTieKept)
    }

    /// One block of the scan (`brickyard_magnitude_scan`; `first` = the block's row-major index): adds to `above`
    /// the entries whose |value| bits exceed the bracket and appends those inside it (and their positions) to the
    /// buffers (room for `capacity` + 16 each) while `found` < capacity; `found` counts them all. `path` forces a
    /// CSIMD path (tests); nil takes this CPU's best.
    static func scan(onPath path: Int? = nil, _ block: UnsafeBufferPointer<Float>, first: Int,
                     bracket: ClosedRange<UInt32>, above: inout Int, candidates: UnsafeMutablePointer<UInt32>,
                     positions: UnsafeMutablePointer<UInt32>, capacity: Int, found: inout Int) {
        guard let base = block.baseAddress, !block.isEmpty else { return }
        let start = UInt32(truncatingIfNeeded: first)
        if let path {
            brickyard_magnitude_scan_on_path(Int32(path), base, block.count, start, bracket.lowerBound,
                                             bracket.upperBound, &above, candidates, positions, capacity, &found)
        } else {
            brickyard_magnitude_scan(base, block.count, start, bracket.lowerBound, bracket.upperBound, &above,
                                     candidates, positions, capacity, &found)
        }
    }

    /// The `rank`-th largest (1-based) of `values` by radix selection (high 16 bits, then low 16 bits), how many
    /// values are greater and how many equal it.
    static func select(_ values: UnsafeBufferPointer<UInt32>, rank: Int) -> (bits: UInt32, greater: Int, equal: Int) {
        var high = [Int](repeating: 0, count: 1 << 16)
        for value in values { high[Int(value >> 16)] += 1 }
        let (highBucket, aboveHigh) = TaskVectors.selectBucket(high, rank: rank)
        var low = [Int](repeating: 0, count: 1 << 16)
        let bucket = UInt32(highBucket)
        for value in values where value >> 16 == bucket { low[Int(value & 0xffff)] += 1 }
        let (lowBucket, aboveLow) = TaskVectors.selectBucket(low, rank: rank - aboveHigh)
        return (bucket << 16 | UInt32(lowBucket), aboveHigh + aboveLow, low[lowBucket])
    }
}
