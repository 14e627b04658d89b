import Testing
@testable import Kernels

@Suite struct DeterministicRandomTests {
    @Test func sameSeedSameStreamDifferentSeedDifferentStream() {
        var a = DeterministicRandom(seed: 42), b = DeterministicRandom(seed: 42), c = DeterministicRandom(seed: 43)
        let streamA = (0..<16).map { _ in a.next() }
        #expect(streamA == (0..<16).map { _ in b.next() })
        #expect(streamA != (0..<16).map { _ in c.next() })
    }

    @Test(arguments: [1, 2, 7, 1000])
    func indicesStayInRangeAndCoverIt(bound: Int) {
        var random = DeterministicRandom(seed: UInt64(bound))
        var seen = Set<Int>()
        for _ in 0..<(bound * 20 + 20) {
            let i = random.nextIndex(below: bound)
            #expect(i >= 0 && i < bound)
            seen.insert(i)
        }
        #expect(seen.count == bound || bound == 1000 && seen.count > 990)
    }

    @Test func unitDoublesAreInUnitIntervalWithMeanHalf() {
        var random = DeterministicRandom(seed: 9)
        let values = (0..<20000).map { _ in random.nextUnitDouble() }
        #expect(values.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(abs(values.reduce(0, +) / 20000 - 0.5) < 0.01)
    }
}
