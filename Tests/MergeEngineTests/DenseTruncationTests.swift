import Testing
@testable import Kernels

@Suite struct DenseTruncationTests {
    /// A rank-`rank` matrix plus small noise.
    static func lowRankPlusNoise(rows: Int, cols: Int, rank: Int, noise: Float, seed: UInt64) -> [Float] {
        var random = TestRandom(seed: seed)
        let b = random.values(rows * rank), a = random.values(rank * cols)
        var d = BLAS.matmul(b, a, m: rows, n: cols, k: rank)
        for index in d.indices { d[index] += noise * random.symmetric() }
        return d
    }

    @Test(arguments: [(120, 90, 5), (90, 130, 8)])
    func randomizedMatchesExactOnDecayingSpectrum(rows: Int, cols: Int, rank: Int) throws {
        let d = Self.lowRankPlusNoise(rows: rows, cols: cols, rank: rank, noise: 1e-3, seed: 17)
        let exact = try DenseTruncation.truncate(d, rows: rows, cols: cols, rank: rank, seed: 1)
        var options = DenseTruncation.Options()
        options.exactLimit = 10
        let randomized = try DenseTruncation.truncate(d, rows: rows, cols: cols, rank: rank, seed: 1, options: options)
        #expect(!exact.randomized && randomized.randomized)
        #expect(randomized.relativeError <= exact.relativeError * 1.01 + 1e-6)
        // The reported error is the real one.
        let product = Dense.product(b: randomized.b, a: randomized.a, out: rows, rank: rank, in: cols)
        let measured = Dense.relativeError(product, d.map(Double.init))
        #expect(abs(measured - randomized.relativeError) < 1e-5)
        // Same seed, same bytes.
        let again = try DenseTruncation.truncate(d, rows: rows, cols: cols, rank: rank, seed: 1, options: options)
        #expect(again.b == randomized.b && again.a == randomized.a)
    }

    @Test func factorsAreBalanced() throws {
        let d = Self.lowRankPlusNoise(rows: 30, cols: 20, rank: 4, noise: 0, seed: 2)
        let result = try DenseTruncation.truncate(d, rows: 30, cols: 20, rank: 4, seed: 0)
        for t in 0..<4 {
            let columnNorm = (0..<30).reduce(0.0) { $0 + Double(result.b[$1 * 4 + t] * result.b[$1 * 4 + t]) }
            let rowNorm = (0..<20).reduce(0.0) { $0 + Double(result.a[t * 20 + $1] * result.a[t * 20 + $1]) }
            #expect(abs(columnNorm - rowNorm) < 1e-3 * max(columnNorm, 1))
        }
        #expect(result.relativeError < 1e-5)
    }
}
