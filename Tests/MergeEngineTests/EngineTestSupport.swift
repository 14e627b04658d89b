import BrickyardTestSupport
import Foundation
@testable import AdapterIO
@testable import MergeEngine

/// Deterministic pseudo-random test data (no dependency on the code under test's generators).
struct TestRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407 }

    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        var x = state
        x ^= x >> 33
        x &*= 0xff51_afd7_ed55_8ccd
        x ^= x >> 33
        return x
    }

    /// Uniform in [-1, 1).
    mutating func symmetric() -> Float { Float(Double(next() >> 11) * 0x1p-53 * 2 - 1) }

    mutating func values(_ count: Int) -> [Float] { (0..<count).map { _ in symmetric() } }
}

/// Dense double-precision helpers for independent reference computations.
enum Dense {
    /// coefficient · B [out, r] · A [r, in] in Double.
    static func product(b: [Float], a: [Float], out: Int, rank: Int, in inFeatures: Int, coefficient: Double = 1) -> [Double] {
        var result = [Double](repeating: 0, count: out * inFeatures)
        for i in 0..<out { for t in 0..<rank {
            let bv = Double(b[i * rank + t]) * coefficient
            if bv == 0 { continue }
            for j in 0..<inFeatures { result[i * inFeatures + j] += bv * Double(a[t * inFeatures + j]) }
        } }
        return result
    }

    static func product(_ result: ModuleResult) -> [Double] {
        product(b: result.b, a: result.a, out: result.outFeatures, rank: result.rank, in: result.inFeatures)
    }

    static func relativeError(_ actual: [Double], _ expected: [Double]) -> Double {
        var difference = 0.0, norm = 0.0
        for (x, y) in zip(actual, expected) {
            difference += (x - y) * (x - y)
            norm += y * y
        }
        return norm > 0 ? (difference / norm).squareRoot() : difference.squareRoot()
    }

    /// A module input of random terms (ranks and coefficients given).
    static func randomInput(out: Int, in inFeatures: Int, ranks: [Int], coefficients: [Double], seed: UInt64,
                            name: String = "model.layers.0.self_attn.q_proj") -> ModuleInput {
        var random = TestRandom(seed: seed)
        let terms = zip(ranks, coefficients).map { rank, coefficient in
            LoraTerm(coefficient: coefficient, rank: rank, a: random.values(rank * inFeatures), b: random.values(out * rank))
        }
        return ModuleInput(name: name, outFeatures: out, inFeatures: inFeatures, terms: terms)
    }

    /// T = Σ c_i B_i A_i in Double.
    static func target(_ input: ModuleInput) -> [Double] {
        var total = [Double](repeating: 0, count: input.outFeatures * input.inFeatures)
        for term in input.terms {
            let part = product(b: term.b, a: term.a, out: input.outFeatures, rank: term.rank, in: input.inFeatures,
                               coefficient: term.coefficient)
            for index in total.indices { total[index] += part[index] }
        }
        return total
    }
}

extension JobSpec {
    /// A job over fixture adapters, built in code.
    static func fixtureJob(_ method: MergeMethodName, adapters: [String], weights: [Double]? = nil, rank: Int? = nil,
                           parameters: [String: ParameterValue] = [:], normalize: Bool = true, dtype: DType = .f32) -> JobSpec {
        let entries = adapters.enumerated().map { index, name in
            AdapterEntry(path: PeftTinyFixtures.adapter(name), weight: weights?[index] ?? 1)
        }
        return JobSpec(method: method, rank: rank, normalize: normalize, parameters: parameters, outputDType: dtype,
                       adapters: entries, sourcePath: "test-job.yaml")
    }
}
