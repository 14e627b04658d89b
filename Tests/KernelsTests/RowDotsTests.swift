import Foundation
import Testing
@testable import Kernels

/// The k-means row products: the arithmetic csimd.h promises (16 lanes of fused multiply-adds, pairwise
/// reduction), the same bits on every CPU path this machine has, and close to the Double dot product.
@Suite struct RowDotsTests {
    /// csimd.h's order, written out with Foundation's correctly rounded fma.
    static func reference(_ x: ArraySlice<Float>, _ m: ArraySlice<Float>) -> Float {
        var lanes = [Float](repeating: 0, count: 16)
        for (j, (a, b)) in zip(x, m).enumerated() { lanes[j % 16] = fmaf(a, b, lanes[j % 16]) }
        var width = 8
        while width >= 1 {
            for l in 0..<width { lanes[l] = lanes[l] + lanes[l + width] }
            width /= 2
        }
        return lanes[0]
    }

    static func products(path: Int?, x: [Float], n: Int, d: Int, m: [Float], k: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: n * k)
        x.withUnsafeBufferPointer { xp in
            m.withUnsafeBufferPointer { mp in
                out.withUnsafeMutableBufferPointer { op in
                    if let path {
                        RowDots.compute(onPath: path, xp.baseAddress!, rows: n, dimension: d, centroids: mp.baseAddress!,
                                        count: k, into: op.baseAddress!)
                    } else {
                        RowDots.compute(xp.baseAddress!, rows: n, dimension: d, centroids: mp.baseAddress!, count: k,
                                        into: op.baseAddress!)
                    }
                }
            }
        }
        return out
    }

    @Test("products follow the documented order exactly, for row and centroid counts off the 4 × 4 blocking (narrow last blocks of 1–3 centroids), off the 32 × 32 tiles, and tails",
          arguments: [(n: 1, d: 1, k: 1), (n: 7, d: 37, k: 3), (n: 9, d: 1043, k: 17), (n: 4, d: 512, k: 2), (n: 5, d: 16, k: 33),
                      (n: 6, d: 300, k: 5), (n: 3, d: 2061, k: 6), (n: 8, d: 129, k: 7), (n: 2, d: 64, k: 19),
                      // Above 16 centroids the kernel tiles 32 rows × 32 centroids × 256 floats: partial tiles,
                      // groups and chunks on every side.
                      (n: 70, d: 531, k: 37), (n: 33, d: 300, k: 65), (n: 32, d: 256, k: 32)])
    func matchesReferenceBits(shape: (n: Int, d: Int, k: Int)) {
        let (n, d, k) = shape
        let x = TestData.gaussian(n * d, seed: 3), m = TestData.gaussian(k * d, seed: 4)
        let out = Self.products(path: nil, x: x, n: n, d: d, m: m, k: k)
        for i in 0..<n {
            for c in 0..<k {
                let expected = Self.reference(x[(i * d)..<((i + 1) * d)], m[(c * d)..<((c + 1) * d)])
                #expect(out[i * k + c].bitPattern == expected.bitPattern, "row \(i) centroid \(c)")
                var exact = 0.0
                for j in 0..<d { exact += Double(x[i * d + j]) * Double(m[c * d + j]) }
                #expect(abs(Double(out[i * k + c]) - exact) <= 1e-5 * Double(d).squareRoot() * 4)
            }
        }
    }

    @Test("every CPU path available here gives the same bits (AVX-512, AVX2 + FMA, portable C)")
    func pathsAgree() {
        for (n, d, k) in [(11, 2061, 5), (41, 700, 35)] {
            let x = TestData.gaussian(n * d, seed: 7), m = TestData.gaussian(k * d, seed: 8)
            let best = Self.products(path: RowDots.path, x: x, n: n, d: d, m: m, k: k)
            for path in 0...RowDots.path {
                #expect(Self.products(path: path, x: x, n: n, d: d, m: m, k: k).map(\.bitPattern) == best.map(\.bitPattern),
                        "path \(path), k = \(k)")
            }
        }
    }

    @Test("a row's products do not depend on which rows it is computed with")
    func rowsAreIndependent() {
        let n = 10, d = 700, k = 3
        let x = TestData.gaussian(n * d, seed: 9), m = TestData.gaussian(k * d, seed: 10)
        let all = Self.products(path: nil, x: x, n: n, d: d, m: m, k: k)
        for start in [0, 3, 7] {
            let part = Self.products(path: nil, x: Array(x[(start * d)..<(n * d)]), n: n - start, d: d, m: m, k: k)
            #expect(part.map(\.bitPattern) == Array(all[(start * k)...]).map(\.bitPattern))
        }
    }
}

/// The gathered products and the single product used by the bounded Lloyd steps: the bits of `RowDots.compute`.
@Suite struct RowDotsGatheredTests {
    @Test("rows given by pointers (any order, repeats) and single products give RowDots' bits on every path",
          arguments: [(n: 9, d: 1043, k: 5), (n: 3, d: 16, k: 32), (n: 1, d: 7, k: 1), (n: 13, d: 300, k: 18)])
    func gatheredAndSingleMatchContiguous(shape: (n: Int, d: Int, k: Int)) {
        let (n, d, k) = shape
        let x = TestData.gaussian(n * d, seed: 91), m = TestData.gaussian(k * d, seed: 92)
        let all = RowDotsTests.products(path: nil, x: x, n: n, d: d, m: m, k: k)
        let picks = (0..<n).reversed().map { $0 } + [0]
        for path in 0...RowDots.path {
            var out = [Float](repeating: .nan, count: picks.count * k)
            x.withUnsafeBufferPointer { xp in
                m.withUnsafeBufferPointer { mp in
                    out.withUnsafeMutableBufferPointer { op in
                        let rows: [UnsafePointer<Float>?] = picks.map { xp.baseAddress! + $0 * d }
                        rows.withUnsafeBufferPointer { rp in
                            RowDots.compute(onPath: path, rows: rp.baseAddress!, count: picks.count, dimension: d,
                                            centroids: mp.baseAddress!, count: k, into: op.baseAddress!)
                        }
                        for (g, i) in picks.enumerated() {
                            for c in 0..<k {
                                #expect(op[g * k + c].bitPattern == all[i * k + c].bitPattern, "path \(path) row \(i)")
                                let single = RowDots.dot(onPath: path, xp.baseAddress! + i * d, mp.baseAddress! + c * d,
                                                         dimension: d)
                                #expect(single.bitPattern == all[i * k + c].bitPattern, "single, path \(path)")
                            }
                        }
                    }
                }
            }
        }
    }

    @Test("paired products (4 chains at a time, any count and pairing) give RowDots' bits on every path",
          arguments: [(n: 9, d: 1043, k: 5), (n: 3, d: 16, k: 3), (n: 7, d: 7, k: 2), (n: 13, d: 300, k: 4)])
    func pairedMatchContiguous(shape: (n: Int, d: Int, k: Int)) {
        let (n, d, k) = shape
        let x = TestData.gaussian(n * d, seed: 93), m = TestData.gaussian(k * d, seed: 94)
        let all = RowDotsTests.products(path: nil, x: x, n: n, d: d, m: m, k: k)
        // Every row with a centroid of its own (rows repeated, centroids in a scrambled order).
        let pairs = (0..<(n + 3)).map { (row: ($0 * 5) % n, centroid: ($0 * 7 + 1) % k) }
        for path in 0...RowDots.path {
            for count in [pairs.count, 1, min(4, pairs.count), min(5, pairs.count)] {
                var out = [Float](repeating: .nan, count: count)
                x.withUnsafeBufferPointer { xp in
                    m.withUnsafeBufferPointer { mp in
                        let a: [UnsafePointer<Float>?] = pairs.prefix(count).map { xp.baseAddress! + $0.row * d }
                        let b: [UnsafePointer<Float>?] = pairs.prefix(count).map { mp.baseAddress! + $0.centroid * d }
                        a.withUnsafeBufferPointer { ap in
                            b.withUnsafeBufferPointer { bp in
                                out.withUnsafeMutableBufferPointer { op in
                                    RowDots.dots(onPath: path, ap.baseAddress!, bp.baseAddress!, count: count,
                                                 dimension: d, into: op.baseAddress!)
                                }
                            }
                        }
                    }
                }
                for (u, pair) in pairs.prefix(count).enumerated() {
                    #expect(out[u].bitPattern == all[pair.row * k + pair.centroid].bitPattern,
                            "path \(path) count \(count) pair \(u)")
                }
            }
        }
    }
}
