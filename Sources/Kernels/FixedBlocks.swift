/// Walks `count` units in fixed blocks of `blockSize` units (the last one shorter), in order: the blocks and the
/// summation order that every block-reducible statistic uses, so an in-process pass equals a split module's rounds.
enum FixedBlocks {
    static func forEach(count: Int, blockSize: Int, _ body: (_ start: Int, _ rows: Int) throws -> Void) rethrows {
        let block = max(1, blockSize)
        var start = 0
        while start < count {
            let rows = min(block, count - start)
            try body(start, rows)
            start += rows
        }
    }
}
