import CSIMD
import Foundation

/// The one-pass exact magnitude cut of a task vector τ = c·B·A (`TaskVectors.magnitudeCut`): a sample of evenly
/// spaced rows estimates where the k-th largest |value| lies and brackets it generously (bit patterns
/// [lo, hi]); one pass over τ counts the entries above the bracket and collects the magnitudes inside it (CSIMD
/// scan); the exact k-th largest is then selected among those by radix selection. The sample only decides how
/// much is collected: the cut is exact whatever it says, and a bracket that misses (or would overflow) is
/// reported as nil, so the caller falls back to the two-pass selection over every entry, with the same result.
enum MagnitudeSelection {
    /// Sampled rows (evenly spaced) and the cap on sampled values (columns are strided beyond it).
    static let sampleRows = 256
    static let sampleValues = 1 << 18

    /// A bracket [lo, hi] of |value| bit patterns that should hold the k-th largest magnitude (nil: too small a
    /// task vector to bother; the two-pass selection is cheap there).
    static func bracket(_ term: LowRankTerm, rows: Int, cols: Int, keep: Int) -> ClosedRange<UInt32>? {
        let total = rows * cols
        guard total >= 1 << 16, term.rank > 0, term.b.count >= rows * term.rank, term.a.count >= term.rank * cols
        else { return nil }
        let sampled = min(rows, sampleRows)
        let stride = max(1, (sampled * cols + sampleValues - 1) / sampleValues)
        var left = [Float](repeating: 0, count: sampled * term.rank)
        for s in 0..<sampled {
            let row = (2 * s + 1) * rows / (2 * sampled)
            for r in 0..<term.rank { left[s * term.rank + r] = term.b[row * term.rank + r] }
        }
        var values = [Float](repeating: 0, count: sampled * cols)
        values.withUnsafeMutableBufferPointer { out in
            left.withUnsafeBufferPointer { pb in
                term.a.withUnsafeBufferPointer { pa in
                    guard let c = out.baseAddress, let b = pb.baseAddress, let a = pa.baseAddress else { return }
                    BLAS.gemm(.none, .none, m: sampled, n: cols, k: term.rank, alpha: term.coefficient, a: b,
                              lda: term.rank, b: a, ldb: cols, beta: 0, c: c, ldc: cols)
                }
            }
        }
        // High-16-bit buckets of the sampled magnitudes, per row and overall.
        let perRow = (cols + stride - 1) / stride
        var buckets = [UInt16](repeating: 0, count: sampled * perRow)
        var histogram = [Int](repeating: 0, count: 1 << 16)
        for s in 0..<sampled {
            for (slot, j) in Swift.stride(from: 0, to: cols, by: stride).enumerated() {
                let bucket = UInt16((values[s * cols + j].bitPattern & 0x7fff_ffff) >> 16)
                buckets[s * perRow + slot] = bucket
                histogram[Int(bucket)] += 1
            }
        }
        let n = sampled * perRow
        let fraction = Double(keep) / Double(total)
        // The kept fraction's spread over rows (rows of τ differ in scale: the sample is a cluster sample).
        let (center, _) = TaskVectors.selectBucket(histogram, rank: max(1, Int((fraction * Double(n)).rounded())))
        var rowFractions = [Double](repeating: 0, count: sampled)
        for s in 0..<sampled {
            var above = 0
            for slot in 0..<perRow where Int(buckets[s * perRow + slot]) > center { above += 1 }
            rowFractions[s] = Double(above) / Double(perRow)
        }
        let mean = rowFractions.reduce(0, +) / Double(sampled)
        let variance = rowFractions.reduce(0.0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(sampled - 1, 1))
        let population = max(0, 1 - Double(sampled) / Double(rows))
        let rowError = (variance / Double(sampled) * population).squareRoot()
        let pointError = (fraction * (1 - fraction) / Double(n)).squareRoot()
        let margin = 6 * rowError + 6 * pointError + 2e-3
        let upper = fraction - margin, lower = fraction + margin
        let hi: UInt32 = upper <= 0
            ? 0x7fff_ffff
            : UInt32(TaskVectors.selectBucket(histogram, rank: max(1, Int((upper * Double(n)).rounded(.down)))).bucket) << 16 | 0xffff
        let lo: UInt32 = lower >= 1
            ? 0
            : UInt32(TaskVectors.selectBucket(histogram, rank: min(n, Int((lower * Double(n)).rounded(.up)))).bucket) << 16
        return lo <= hi ? lo...hi : nil
    }

    /// The exact cut from one pass over τ with `bracket`, or nil when the k-th largest magnitude is not inside it
    /// or the bracket holds more than a quarter of the entries.
    static func scanCut(_ term: LowRankTerm, rows: Int, cols: Int, keep: Int, blockRows: Int,
                        bracket: ClosedRange<UInt32>) -> MagnitudeCut? {
        let total = rows * cols
        let capacity = max(1 << 16, total / 4)
        let candidates = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity + 16)
        defer { candidates.deallocate() }
        var above = 0, found = 0
        TaskVectors.forEachBlock(term, rows: rows, cols: cols, blockRows: blockRows) { block in
            scan(UnsafeBufferPointer(block), bracket: bracket, above: &above, candidates: candidates,
                 capacity: capacity, found: &found)
        }
        guard found <= capacity, above < keep, keep <= above + found else { return nil }
        let (bits, greater, equal) = select(UnsafeBufferPointer(start: candidates, count: found), rank: keep - above)
        return MagnitudeCut(thresholdBits: bits, equalToKeep: keep - above - greater, keepNone: false,
                            equalTotal: equal)
    }

    /// One block of the scan (`brickyard_magnitude_scan`): adds to `above` the entries whose |value| bits exceed
    /// the bracket and appends those inside it to `candidates` (room for `capacity` + 16) while `found` < capacity;
    /// `found` counts them all. `path` forces a CSIMD path (tests); nil takes this CPU's best.
    static func scan(onPath path: Int? = nil, _ block: UnsafeBufferPointer<Float>, bracket: ClosedRange<UInt32>,
                     above: inout Int, candidates: UnsafeMutablePointer<UInt32>, capacity: Int, found: inout Int) {
        guard let base = block.baseAddress, !block.isEmpty else { return }
        if let path {
            brickyard_magnitude_scan_on_path(Int32(path), base, block.count, bracket.lowerBound, bracket.upperBound,
                                             &above, candidates, capacity, &found)
        } else {
            brickyard_magnitude_scan(base, block.count, bracket.lowerBound, bracket.upperBound, &above, candidates,
                                     capacity, &found)
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
