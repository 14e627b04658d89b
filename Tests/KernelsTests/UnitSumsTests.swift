import Foundation
import Testing
@testable import Kernels

/// The per-cluster sums kernels (csimd.h): against straightforward loops written out here (same bits: one rounded
/// addition per element and unit, dot products in `RowDots`' order, product then sum never fused), the same bits on
/// every CPU path this machine has, and skipped units really skipped.
@Suite struct UnitSumsTests {
    static func signed(path: Int?, x: [Float], n: Int, d: Int, clusters: [Int], signs: [Float], k: Int) -> [Float] {
        var sums = [Float](repeating: 0, count: k * d)
        x.withUnsafeBufferPointer { xp in
            clusters.withUnsafeBufferPointer { cp in
                signs.withUnsafeBufferPointer { sp in
                    sums.withUnsafeMutableBufferPointer { out in
                        if let path {
                            UnitSums.signed(onPath: path, xp.baseAddress!, rows: n, dimension: d, clusters: cp.baseAddress!,
                                            signs: sp.baseAddress!, k: k, into: out.baseAddress!)
                        } else {
                            UnitSums.signed(xp.baseAddress!, rows: n, dimension: d, clusters: cp.baseAddress!,
                                            signs: sp.baseAddress!, k: k, into: out.baseAddress!)
                        }
                    }
                }
            }
        }
        return sums
    }

    static func dotAdd(path: Int?, x: [Float], n: Int, stride: Int, read: (offset: Int, length: Int),
                       write: (offset: Int, length: Int), clusters: [Int], k: Int, directions: [Float]) -> [Float] {
        var sums = [Float](repeating: 0, count: k * write.length)
        x.withUnsafeBufferPointer { xp in
            clusters.withUnsafeBufferPointer { cp in
                directions.withUnsafeBufferPointer { wp in
                    sums.withUnsafeMutableBufferPointer { out in
                        if let path {
                            UnitSums.dotAdd(onPath: path, xp.baseAddress!, rows: n, stride: stride, read: read,
                                            write: write, clusters: cp.baseAddress!, k: k, directions: wp.baseAddress!,
                                            into: out.baseAddress!)
                        } else {
                            UnitSums.dotAdd(xp.baseAddress!, rows: n, stride: stride, read: read, write: write,
                                            clusters: cp.baseAddress!, k: k, directions: wp.baseAddress!,
                                            into: out.baseAddress!)
                        }
                    }
                }
            }
        }
        return sums
    }

    /// Clusters 0..<k with a few out-of-range entries (skipped), and ±1 signs.
    static func clusters(_ n: Int, k: Int, seed: UInt64) -> (clusters: [Int], signs: [Float]) {
        var random = DeterministicRandom(seed: seed)
        let clusters = (0..<n).map { i in i % 7 == 5 ? (i % 2 == 0 ? -1 : k) : random.nextIndex(below: k) }
        let signs = (0..<n).map { _ in Float(random.nextIndex(below: 2) == 0 ? -1 : 1) }
        return (clusters, signs)
    }

    @Test("signed sums equal the plain loop y = y ± x in unit order, bit for bit",
          arguments: [(n: 1, d: 1, k: 1), (n: 13, d: 37, k: 3), (n: 30, d: 1043, k: 5), (n: 9, d: 16, k: 2)])
    func signedMatchesLoop(shape: (n: Int, d: Int, k: Int)) {
        let (n, d, k) = shape
        let x = TestData.gaussian(n * d, seed: 21)
        let (clusters, signs) = Self.clusters(n, k: k, seed: 22)
        var expected = [Float](repeating: 0, count: k * d)
        for i in 0..<n where clusters[i] >= 0 && clusters[i] < k {
            for j in 0..<d {
                let y = expected[clusters[i] * d + j], v = x[i * d + j]
                expected[clusters[i] * d + j] = signs[i] < 0 ? y - v : y + v
            }
        }
        let sums = Self.signed(path: nil, x: x, n: n, d: d, clusters: clusters, signs: signs, k: k)
        #expect(sums.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    @Test("dot-add equals RowDots' product times the row, added in unit order, on both halves",
          arguments: [(out: 1, inn: 1, k: 1), (out: 37, inn: 21, k: 3), (out: 300, inn: 517, k: 4), (out: 16, inn: 48, k: 2)])
    func dotAddMatchesLoop(shape: (out: Int, inn: Int, k: Int)) {
        let (out, inn, k) = shape
        let n = 23, dim = out + inn
        let x = TestData.gaussian(n * dim, seed: 31)
        let (clusters, _) = Self.clusters(n, k: k, seed: 32)
        for (read, write) in [((offset: out, length: inn), (offset: 0, length: out)),
                              ((offset: 0, length: out), (offset: out, length: inn))] {
            let directions = TestData.gaussian(k * read.length, seed: 33)
            var expected = [Float](repeating: 0, count: k * write.length)
            for i in 0..<n where clusters[i] >= 0 && clusters[i] < k {
                let c = clusters[i]
                let w = RowDotsTests.reference(x[(i * dim + read.offset)..<(i * dim + read.offset + read.length)],
                                               directions[(c * read.length)..<((c + 1) * read.length)])
                guard w != 0 else { continue }
                for j in 0..<write.length {
                    let product = w * x[i * dim + write.offset + j]
                    expected[c * write.length + j] = expected[c * write.length + j] + product
                }
            }
            let sums = Self.dotAdd(path: nil, x: x, n: n, stride: dim, read: read, write: write, clusters: clusters,
                                   k: k, directions: directions)
            #expect(sums.map(\.bitPattern) == expected.map(\.bitPattern), "read \(read) write \(write)")
        }
    }

    @Test("dot-add visits clusters in groups of members (4 at a time) with the bits of the unit-order loop, zero products skipped",
          arguments: [(n: 41, k: 3), (n: 64, k: 1), (n: 9, k: 5), (n: 130, k: 7)])
    func dotAddGroupedMatchesUnitOrder(shape: (n: Int, k: Int)) {
        let (n, k) = shape
        let out = 70, inn = 33, dim = out + inn
        var x = TestData.gaussian(n * dim, seed: UInt64(50 + n))
        // Units 2 and 5 have a zero read half (w = 0: skipped inside a group of four).
        for i in [2, 5] where i < n { for j in 0..<inn { x[i * dim + out + j] = 0 } }
        let (clusters, _) = Self.clusters(n, k: k, seed: UInt64(60 + k))
        let read = (offset: out, length: inn), write = (offset: 0, length: out)
        let directions = TestData.gaussian(k * inn, seed: 61)
        var expected = [Float](repeating: 0, count: k * out)
        for i in 0..<n where clusters[i] >= 0 && clusters[i] < k {
            let c = clusters[i]
            let w = RowDotsTests.reference(x[(i * dim + out)..<(i * dim + dim)], directions[(c * inn)..<((c + 1) * inn)])
            guard w != 0 else { continue }
            for j in 0..<out { expected[c * out + j] = expected[c * out + j] + w * x[i * dim + j] }
        }
        for path in 0...RowDots.path {
            let sums = Self.dotAdd(path: path, x: x, n: n, stride: dim, read: read, write: write, clusters: clusters, k: k,
                                   directions: directions)
            #expect(sums.map(\.bitPattern) == expected.map(\.bitPattern), "path \(path)")
        }
    }

    @Test("every CPU path available here gives the same bits (AVX-512, AVX2 + FMA, portable C)")
    func pathsAgree() {
        let n = 19, out = 1031, inn = 530, k = 4, dim = out + inn
        let x = TestData.gaussian(n * dim, seed: 41)
        let (clusters, signs) = Self.clusters(n, k: k, seed: 42)
        let directions = TestData.gaussian(k * inn, seed: 43)
        let best = RowDots.path
        let signed = Self.signed(path: best, x: x, n: n, d: dim, clusters: clusters, signs: signs, k: k)
        let product = Self.dotAdd(path: best, x: x, n: n, stride: dim, read: (out, inn), write: (0, out),
                                  clusters: clusters, k: k, directions: directions)
        for path in 0...best {
            #expect(Self.signed(path: path, x: x, n: n, d: dim, clusters: clusters, signs: signs, k: k)
                .map(\.bitPattern) == signed.map(\.bitPattern), "signed, path \(path)")
            #expect(Self.dotAdd(path: path, x: x, n: n, stride: dim, read: (out, inn), write: (0, out),
                                clusters: clusters, k: k, directions: directions)
                .map(\.bitPattern) == product.map(\.bitPattern), "dot-add, path \(path)")
        }
    }
}
