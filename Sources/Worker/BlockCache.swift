import Foundation
import Kernels
import WireProtocol

/// The blocks of split modules this worker has loaded, kept between rounds so that after a block's first round
/// only centroids travel. Least recently used blocks are dropped beyond `capacityBytes`; a dropped block is simply
/// loaded again when asked for (any worker can compute any block). Shared by the session thread and the task
/// thread, hence the lock.
final class BlockCache: @unchecked Sendable {
    private let lock = NSLock()
    private let capacityBytes: Int
    private var entries: [(key: BlockCacheKey, block: UnitBlock)] = []
    private(set) var hits = 0
    private(set) var loads = 0

    init(capacityBytes: Int) {
        self.capacityBytes = max(0, capacityBytes)
    }

    /// The cached block, or the one `load` returns (then cached, evicting the oldest others beyond capacity).
    func block(for key: BlockCacheKey, load: () throws -> UnitBlock) throws -> (block: UnitBlock, cached: Bool) {
        if let found = lock.withLock({ () -> UnitBlock? in
            guard let index = entries.firstIndex(where: { $0.key == key }) else { return nil }
            let entry = entries.remove(at: index)
            entries.append(entry)
            hits += 1
            return entry.block
        }) {
            return (found, true)
        }
        let block = try load()
        lock.withLock {
            loads += 1
            entries.removeAll { $0.key == key }
            entries.append((key, block))
            var total = entries.reduce(0) { $0 + $1.block.byteSize }
            while total > capacityBytes, entries.count > 1 {
                total -= entries.removeFirst().block.byteSize
            }
            if total > capacityBytes { entries.removeAll() }
        }
        return (block, false)
    }

    /// Drops every block of other jobs (a new job's first block arrives).
    func keepOnly(jobID: String) {
        lock.withLock { entries.removeAll { $0.key.jobID != jobID } }
    }
}
