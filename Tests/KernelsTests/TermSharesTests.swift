import Testing
import Foundation
@testable import Kernels

/// lego's `balance` kernels against dense computations: the per-term weights ω = 1/‖T_t‖^p, the weighted target's
/// projections, the weighted refit (a dense ALS round on T̃) and the core fit (U Uᵀ T V Vᵀ).
@Suite struct TermSharesTests {
    typealias Dense = FactorRefitTests

    /// Units of `terms.count` terms (units of term t contiguous), Gaussian, term t scaled by `scales[t]`.
    static func pool(ranks: [Int], scales: [Float], out: Int, in inFeatures: Int, seed: UInt64) -> ([Float], [Int]) {
        let count = ranks.reduce(0, +)
        var units = TestData.gaussian(count * (out + inFeatures), seed: seed)
        var terms: [Int] = []
        for (t, r) in ranks.enumerated() { terms += [Int](repeating: t, count: r) }
        for i in 0..<count { for j in 0..<out { units[i * (out + inFeatures) + j] *= scales[terms[i]] } }
        return (units, terms)
    }

    static func termNorm(_ units: [Float], _ terms: [Int], term: Int, out: Int, in inFeatures: Int) -> Double {
        let d = out + inFeatures
        let rows = terms.indices.filter { terms[$0] == term }
        let mine = rows.flatMap { Array(units[($0 * d)..<(($0 + 1) * d)]) }
        return TestData.frobenius(Dense.target(mine, count: rows.count, out: out, in: inFeatures))
    }

    @Test(arguments: [0.5, 1.0])
    func weightsAreOneOverTheTermNormToThePower(power: Double) throws {
        let (out, inFeatures) = (9, 7)
        let (units, terms) = Self.pool(ranks: [3, 2, 4], scales: [1, 0.1, 3], out: out, in: inFeatures, seed: 3)
        let w = try TermShares.unitWeights(units: units, count: terms.count, outFeatures: out, inFeatures: inFeatures,
                                           terms: terms, power: power)
        let norms = (0..<3).map { Self.termNorm(units, terms, term: $0, out: out, in: inFeatures) }
        let raw = terms.map { 1 / Foundation.pow(norms[$0], power) }
        let largest = raw.max()!
        for i in terms.indices { #expect(abs(Double(w[i]) - raw[i] / largest) < 1e-5) }
        #expect(w.max() == 1)
        // Units of one term not contiguous: refused (the weights would mix terms).
        #expect(throws: KernelShapeError.self) {
            try TermShares.unitWeights(units: units, count: terms.count, outFeatures: out, inFeatures: inFeatures,
                                       terms: [0, 1, 0, 1, 1, 2, 2, 2, 2], power: power)
        }
    }

    /// The weighted units sum to T̃ = Σ_i ω_i x_B,i x_A,iᵀ (each term's update times its weight).
    @Test func weightedUnitsSumToTheWeightedTarget() throws {
        let (out, inFeatures) = (8, 6)
        let (units, terms) = Self.pool(ranks: [2, 3], scales: [1, 0.2], out: out, in: inFeatures, seed: 5)
        let count = terms.count, d = out + inFeatures
        let weights = try TermShares.unitWeights(units: units, count: count, outFeatures: out, inFeatures: inFeatures,
                                                 terms: terms, power: 1)
        let weighted = TermShares.weightedUnits(units, count: count, outFeatures: out, inFeatures: inFeatures,
                                                weights: weights)
        var expected = [Double](repeating: 0, count: out * inFeatures)
        for t in 0..<2 {
            let rows = terms.indices.filter { terms[$0] == t }
            let part = Dense.target(rows.flatMap { Array(units[($0 * d)..<(($0 + 1) * d)]) }, count: rows.count,
                                    out: out, in: inFeatures)
            let norm = TestData.frobenius(part)
            for i in expected.indices { expected[i] += part[i] / norm }
        }
        let scale = expected.map(abs).max()! / Dense.target(weighted, count: count, out: out, in: inFeatures).map(abs).max()!
        let got = Dense.target(weighted, count: count, out: out, in: inFeatures).map { $0 * scale }
        #expect(Dense.error(expected, got) < 1e-5)  // T̃ up to the normalisation of ω (largest weight 1)
        #expect(Array(weighted[(0 * d + out)..<(1 * d)]) == Array(units[out..<d]))  // A halves untouched
    }

    /// The core fit is T projected onto B's column space and A's row space: U Uᵀ T V Vᵀ, no worse than B A.
    @Test(arguments: [UInt64(7), 8, 9])
    func coreFitIsTheProjectionOfTOntoBothSubspaces(seed: UInt64) throws {
        let (count, out, inFeatures, k) = (10, 9, 8, 3)
        let units = TestData.gaussian(count * (out + inFeatures), seed: seed)
        let t = Dense.target(units, count: count, out: out, in: inFeatures)
        var b = TestData.gaussian(out * k, seed: seed + 100), a = TestData.gaussian(k * inFeatures, seed: seed + 200)
        let before = Dense.error(t, Dense.product(b, a, out: out, in: inFeatures, k: k))
        // Dense projectors onto span(B) [out, out] and span(Aᵀ) [in, in] by Gram-Schmidt in Double.
        func projector(_ columns: [[Double]], size: Int) -> [Double] {
            var basis: [[Double]] = []
            for var v in columns {
                for q in basis { let dot = zip(v, q).reduce(0) { $0 + $1.0 * $1.1 }; v = zip(v, q).map { $0 - dot * $1 } }
                let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
                basis.append(v.map { $0 / norm })
            }
            return (0..<(size * size)).map { i in basis.reduce(0) { $0 + $1[i / size] * $1[i % size] } }
        }
        let pu = projector((0..<k).map { s in (0..<out).map { Double(b[$0 * k + s]) } }, size: out)
        let pv = projector((0..<k).map { s in (0..<inFeatures).map { Double(a[s * inFeatures + $0]) } }, size: inFeatures)
        let expected = (0..<(out * inFeatures)).map { i -> Double in
            let (r, c) = (i / inFeatures, i % inFeatures)
            var total = 0.0
            for x in 0..<out { for y in 0..<inFeatures { total += pu[r * out + x] * t[x * inFeatures + y] * pv[y * inFeatures + c] } }
            return total
        }
        try FactorRefit.coreFit(units: units, count: count, outFeatures: out, inFeatures: inFeatures, b: &b, a: &a, k: k)
        let fitted = Dense.product(b, a, out: out, in: inFeatures, k: k)
        #expect(Dense.error(expected, fitted) < 1e-4)
        #expect(Dense.error(t, fitted) <= before + 1e-6)
    }
}
