import Testing
@testable import Kernels

@Suite struct RankOneUnitsTests {
    @Test(arguments: [UnitGauge.balanced, .raw], [(out: 7, in: 5, rank: 3), (out: 4, in: 9, rank: 1)])
    func unitsReconstructTargetExactly(gauge: UnitGauge, shape: (out: Int, in: Int, rank: Int)) throws {
        let terms = TestData.randomTerms(count: 3, rank: shape.rank, out: shape.out, in: shape.in, seed: 11)
        let units = try RankOneUnits.extract(terms: terms, outFeatures: shape.out, inFeatures: shape.in, gauge: gauge)
        #expect(units.count == 3 * shape.rank)
        var sum = [Double](repeating: 0, count: shape.out * shape.in)
        for u in 0..<units.count {
            let row = Array(units.vectors[(u * units.dimension)..<((u + 1) * units.dimension)])
            for i in 0..<shape.out { for j in 0..<shape.in {
                sum[i * shape.in + j] += Double(row[i]) * Double(row[shape.out + j])
            } }
        }
        let target = TestData.denseTarget(terms, out: shape.out, in: shape.in)
        #expect(TestData.relativeDifference(sum, target) < 1e-6)
    }

    @Test func balancedHalvesHaveEqualNormAndSignOnB() throws {
        var terms = TestData.randomTerms(count: 2, rank: 2, out: 6, in: 4, seed: 3)
        terms[0].coefficient = -0.7
        let units = try RankOneUnits.extract(terms: terms, outFeatures: 6, inFeatures: 4, gauge: .balanced)
        for u in 0..<units.count {
            let row = Array(units.vectors[(u * 10)..<((u + 1) * 10)])
            let normB = row[0..<6].reduce(0) { $0 + Double($1) * Double($1) }
            let normA = row[6..<10].reduce(0) { $0 + Double($1) * Double($1) }
            #expect(abs(normB - normA) <= 1e-5 * normA)
        }
        // Negative coefficient: the B half is the negated direction of b.
        let b0 = terms[0].b[0], x0 = units.vectors[0]
        #expect((b0 < 0) == (x0 > 0) || b0 == 0)
    }

    @Test func zeroUnitsAreDropped() throws {
        var terms = TestData.randomTerms(count: 2, rank: 3, out: 5, in: 4, seed: 5)
        for i in 0..<5 { terms[0].b[i * 3 + 1] = 0 }   // column 1 of B_0 is zero
        for j in 0..<4 { terms[1].a[2 * 4 + j] = 0 }   // row 2 of A_1 is zero
        terms.append(FactorTerm(coefficient: 0, rank: 1, a: [1, 1, 1, 1], b: [1, 1, 1, 1, 1]))
        let units = try RankOneUnits.extract(terms: terms, outFeatures: 5, inFeatures: 4, gauge: .balanced)
        #expect(units.count == 4)
        #expect(units.sources.map(\.term) == [0, 0, 1, 1])
        #expect(units.sources.map(\.rank) == [0, 2, 0, 1])
    }
}

extension RankOneUnitsTests {
    @Test func mismatchedFactorSizesAreAnError() {
        let term = FactorTerm(coefficient: 1, rank: 2, a: [1, 2, 3], b: [1, 2, 3, 4])
        #expect(throws: KernelShapeError.self) {
            try RankOneUnits.extract(terms: [term], outFeatures: 2, inFeatures: 2, gauge: .balanced)
        }
    }
}
