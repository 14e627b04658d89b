import Kernels

/// Fisher–Yates with `DeterministicRandom` written out here (not the standard library's `shuffle`, whose
/// algorithm may change between Swift releases): the order is a pure function of (seed, stream, count).
public enum SeededShuffle {
    public static func permutation(count: Int, seed: UInt64, stream: UInt64) -> [Int] {
        var generator = DeterministicRandom(seed: CounterRandom.streamKey(seed: seed, stream: stream))
        var order = Array(0..<count)
        var index = count - 1
        while index > 0 {
            let other = generator.nextIndex(below: index + 1)
            order.swapAt(index, other)
            index -= 1
        }
        return order
    }
}
