import Testing
@testable import Kernels
@testable import MergeEngine

/// Random modules from the deterministic generator, and dense Double references for them.
enum RandomModules {
    static func input(out: Int, in inFeatures: Int, ranks: [Int], coefficients: [Double]? = nil, seed: UInt64,
                      name: String = "model.layers.0.self_attn.q_proj") -> ModuleInput {
        var random = DeterministicRandom(seed: seed)
        let terms = ranks.enumerated().map { i, r in
            LoraTerm(coefficient: coefficients?[i] ?? (0.2 + random.nextUnitDouble()) * (i % 3 == 2 ? -1 : 1), rank: r,
                     a: (0..<(r * inFeatures)).map { _ in Float(random.nextGaussian()) },
                     b: (0..<(inFeatures > 0 ? out * r : 0)).map { _ in Float(random.nextGaussian()) })
        }
        return ModuleInput(name: name, outFeatures: out, inFeatures: inFeatures, terms: terms)
    }

    static func product(_ b: [Float], _ a: [Float], out: Int, rank: Int, in inFeatures: Int) -> [Double] {
        var c = [Double](repeating: 0, count: out * inFeatures)
        for i in 0..<out { for t in 0..<rank {
            let x = Double(b[i * rank + t])
            for j in 0..<inFeatures { c[i * inFeatures + j] += x * Double(a[t * inFeatures + j]) }
        } }
        return c
    }

    /// T = Σ c B A in Double.
    static func target(_ input: ModuleInput) -> [Double] {
        var t = [Double](repeating: 0, count: input.outFeatures * input.inFeatures)
        for term in input.terms {
            let p = product(term.b, term.a, out: input.outFeatures, rank: term.rank, in: input.inFeatures)
            for i in t.indices { t[i] += term.coefficient * p[i] }
        }
        return t
    }

    static func dense(_ result: ModuleResult) -> [Double] {
        product(result.b, result.a, out: result.outFeatures, rank: result.rank, in: result.inFeatures)
    }

    static func relativeError(_ x: [Double], _ reference: [Double]) -> Double {
        var difference = 0.0, norm = 0.0
        for i in x.indices { difference += (x[i] - reference[i]) * (x[i] - reference[i]); norm += reference[i] * reference[i] }
        return norm > 0 ? (difference / norm).squareRoot() : difference.squareRoot()
    }

    /// Singular values of the dense T (via Float LAPACK on the Double matrix rounded once).
    static func singularValues(_ t: [Double], out: Int, in inFeatures: Int) throws -> [Float] {
        try LinearAlgebra.svd(t.map { Float($0) }, rows: out, cols: inFeatures).s
    }
}

@Suite struct ModuleQualityTests {
    @Test(arguments: [(out: 12, in: 9, ranks: [3, 2], rank: 2), (out: 7, in: 20, ranks: [4, 4, 1], rank: 5),
                      (out: 30, in: 6, ranks: [2], rank: 3)])
    func relativeErrorAndFloorMatchDenseComputation(out: Int, in inFeatures: Int, ranks: [Int], rank: Int) throws {
        let input = RandomModules.input(out: out, in: inFeatures, ranks: ranks, seed: UInt64(out * inFeatures))
        var random = DeterministicRandom(seed: 99)
        var result = ModuleResult(name: input.name, rank: rank, outFeatures: out, inFeatures: inFeatures,
                                  b: (0..<(out * rank)).map { _ in Float(random.nextGaussian()) },
                                  a: (0..<(rank * inFeatures)).map { _ in Float(random.nextGaussian()) },
                                  stats: ModuleStats(relativeError: -1))
        try ModuleQuality.fillStats(&result, input: input)
        let target = RandomModules.target(input)
        let expected = RandomModules.relativeError(RandomModules.dense(result), target)
        #expect(abs(result.stats.relativeError - expected) <= 1e-5 * expected)
        let sigma = try RandomModules.singularValues(target, out: out, in: inFeatures)
        let floor = try #require(result.stats.svdFloor)
        #expect(abs(floor - TruncatedSVD.tailFraction(sigma, rank: rank)) <= 1e-4)
    }

    /// A result equal to T (CAT form, coefficients folded √|c| with the sign on B) reads as exact.
    @Test func exactResultReportsErrorNearFloatRounding() throws {
        let input = RandomModules.input(out: 64, in: 48, ranks: [8, 4, 6], seed: 3)
        let total = input.totalRank
        var b = [Float](repeating: 0, count: 64 * total), a: [Float] = []
        var offset = 0
        for term in input.terms {
            let root = Float(abs(term.coefficient).squareRoot())
            for i in 0..<64 { for j in 0..<term.rank {
                b[i * total + offset + j] = (term.coefficient < 0 ? -root : root) * term.b[i * term.rank + j]
            } }
            a += term.a.map { $0 * root }
            offset += term.rank
        }
        var result = ModuleResult(name: input.name, rank: total, outFeatures: 64, inFeatures: 48, b: b, a: a,
                                  stats: ModuleStats(relativeError: -1))
        try ModuleQuality.fillStats(&result, input: input)
        #expect(result.stats.relativeError < 1e-6)
        #expect(result.stats.svdFloor == 0)
    }

    @Test func mismatchedResultShapeIsAnError() {
        let input = RandomModules.input(out: 5, in: 4, ranks: [2], seed: 1)
        var result = ModuleResult(name: input.name, rank: 2, outFeatures: 5, inFeatures: 4, b: [0, 1], a: [],
                                  stats: ModuleStats(relativeError: 0))
        #expect(throws: MergeError.self) { try ModuleQuality.fillStats(&result, input: input) }
    }

    @Test func termWithWrongFactorSizeIsAnError() {
        var input = RandomModules.input(out: 5, in: 4, ranks: [2], seed: 1)
        input.terms[0].a.removeLast()
        #expect(throws: MergeError.self) { try ModuleMerger.merge(input, spec: MergeSpec(method: .svd, rank: 1), seed: 0) }
        #expect(throws: MergeError.self) { try ModuleMerger.merge(input, spec: MergeSpec(method: .lego, rank: 1), seed: 0) }
    }
}
