@testable import Kernels

/// Random test data from the project's deterministic generator, and dense Double references.
enum TestData {
    static func gaussian(_ count: Int, seed: UInt64, scale: Double = 1) -> [Float] {
        var random = DeterministicRandom(seed: seed)
        return (0..<count).map { _ in Float(random.nextGaussian() * scale) }
    }

    /// Dense row-major product in Double: [m, k] · [k, n].
    static func denseProduct(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for t in 0..<k {
            let x = Double(a[i * k + t])
            if x == 0 { continue }
            for j in 0..<n { c[i * n + j] += x * Double(b[t * n + j]) }
        } }
        return c
    }

    static func frobenius(_ x: [Double]) -> Double { x.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    static func relativeDifference(_ x: [Double], _ y: [Double]) -> Double {
        let difference = zip(x, y).map { $0 - $1 }
        let norm = frobenius(y)
        return norm > 0 ? frobenius(difference) / norm : frobenius(difference)
    }

    /// Σ c B A densely (B row-major [out, r], A row-major [r, in]).
    static func denseTarget(_ terms: [FactorTerm], out: Int, in inFeatures: Int) -> [Double] {
        var t = [Double](repeating: 0, count: out * inFeatures)
        for term in terms {
            let product = denseProduct(term.b, term.a, m: out, k: term.rank, n: inFeatures)
            for i in t.indices { t[i] += term.coefficient * product[i] }
        }
        return t
    }

    static func randomTerms(count: Int, rank: Int, out: Int, in inFeatures: Int, seed: UInt64) -> [FactorTerm] {
        (0..<count).map { i in
            let s = seed &* 1000 &+ UInt64(i)
            return FactorTerm(coefficient: 0.5 + Double(i % 3) * 0.25 * (i % 2 == 0 ? 1 : -1), rank: rank,
                              a: gaussian(rank * inFeatures, seed: s &* 2), b: gaussian(out * rank, seed: s &* 2 &+ 1))
        }
    }
}
