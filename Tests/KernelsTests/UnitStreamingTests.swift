import Testing
@testable import Kernels

/// Streamed unit extraction (one term at a time into the unit matrix) against a plain per-row reference, and the
/// centroid sums by addition against a Double reference.
@Suite struct UnitStreamingTests {
    /// The units written the obvious way: for every term in order, for every rank j with non-zero factors, the row
    /// [scaleB · b_j ; scaleA · a_j] with the gauge's scales (norms from the same nrm2, one Float multiply each).
    /// In the svd basis a term's rows are its canonical rows as they are: both halves already have norm √σ_j.
    static func referenceUnits(_ terms: [FactorTerm], out: Int, in inFeatures: Int, gauge: UnitGauge,
                               basis: UnitBasis) throws -> [Float] {
        var rows: [Float] = []
        for term in terms {
            let term = basis == .svd ? try canonicalTerm(term, out: out, in: inFeatures) : term
            guard term.coefficient != 0, term.rank > 0 else { continue }
            if basis == .svd {
                for j in 0..<term.rank {
                    rows += (0..<out).map { term.b[$0 * term.rank + j] } + term.a[(j * inFeatures)..<((j + 1) * inFeatures)]
                }
                continue
            }
            for j in 0..<term.rank {
                let column = (0..<out).map { term.b[$0 * term.rank + j] }
                let row = Array(term.a[(j * inFeatures)..<((j + 1) * inFeatures)])
                let normB = Double(column.withUnsafeBufferPointer { BLAS.nrm2(out, $0.baseAddress!) })
                let normA = Double(row.withUnsafeBufferPointer { BLAS.nrm2(inFeatures, $0.baseAddress!) })
                guard normB > 0, normA > 0 else { continue }
                let c = term.coefficient, sign: Double = c < 0 ? -1 : 1
                let root = gauge == .balanced ? (abs(c) * normB * normA).squareRoot() : abs(c).squareRoot()
                let scaleB = Float(gauge == .balanced ? sign * root / normB : sign * root)
                let scaleA = Float(gauge == .balanced ? root / normA : root)
                rows += column.map { $0 * scaleB } + row.map { $0 * scaleA }
            }
        }
        return rows
    }

    /// One term's canonical form as `CanonicalUnits` writes it (tested against the Householder route in
    /// CanonicalUnitsTests), as a term of coefficient 1.
    static func canonicalTerm(_ term: FactorTerm, out: Int, in inFeatures: Int) throws -> FactorTerm {
        guard term.coefficient != 0, term.rank > 0 else { return term }
        let (rows, count) = try CanonicalUnitsTests.canonicalRows(term, out: out, in: inFeatures)
        let dim = out + inFeatures
        var b = [Float](repeating: 0, count: out * count), a: [Float] = []
        for t in 0..<count {
            for i in 0..<out { b[i * count + t] = rows[t * dim + i] }
            a += rows[(t * dim + out)..<((t + 1) * dim)]
        }
        return FactorTerm(coefficient: 1, rank: count, a: a, b: b)
    }

    @Test("streamed units equal the reference bytes; each term is asked for once, in order",
          arguments: [UnitGauge.balanced, .raw], [UnitBasis.raw, .svd])
    func streamedUnitsEqualReference(gauge: UnitGauge, basis: UnitBasis) throws {
        var terms = TestData.randomTerms(count: 5, rank: 3, out: 9, in: 7, seed: 21)
        terms[1].coefficient = -0.4
        terms[2].coefficient = 0                                  // a whole term dropped
        for i in 0..<9 { terms[3].b[i * 3 + 1] = 0 }              // one unit of term 3 dropped
        var asked: [Int] = []
        let units = try RankOneUnits.extract(ranks: terms.map(\.rank), outFeatures: 9, inFeatures: 7, gauge: gauge,
                                             basis: basis) { index in
            asked.append(index)
            return terms[index]
        }
        #expect(asked == Array(terms.indices))
        let reference = try Self.referenceUnits(terms, out: 9, in: 7, gauge: gauge, basis: basis)
        #expect(units.vectors == reference)
        #expect(units.count * units.dimension == reference.count)
        #expect(try RankOneUnits.extract(terms: terms, outFeatures: 9, inFeatures: 7, gauge: gauge, basis: basis).vectors
                == units.vectors)
    }

    @Test("a term whose rank differs from the announced one is an error, not an overrun")
    func announcedRankIsChecked() {
        let terms = TestData.randomTerms(count: 2, rank: 2, out: 4, in: 3, seed: 2)
        #expect(throws: KernelShapeError.self) {
            try RankOneUnits.extract(ranks: [2, 1], outFeatures: 4, inFeatures: 3, gauge: .balanced) { terms[$0] }
        }
    }

    @Test("an error while loading a term propagates")
    func loadErrorPropagates() {
        struct Failed: Error {}
        let terms = TestData.randomTerms(count: 2, rank: 2, out: 4, in: 3, seed: 2)
        #expect(throws: Failed.self) {
            try RankOneUnits.extract(ranks: [2, 2], outFeatures: 4, inFeatures: 3, gauge: .balanced) { index in
                if index == 1 { throw Failed() }
                return terms[index]
            }
        }
    }

    @Test("centroid sums by addition equal the signed sums in Double and skip units outside 0..<k")
    func signedSumsMatchReference() {
        let n = 37, d = 29, k = 5
        let x = TestData.gaussian(n * d, seed: 8)
        let assignment = (0..<n).map { ($0 * 7) % (k + 1) - ($0 % 11 == 0 ? 1 + k : 0) }   // some < 0, some == k
        let signs: [Float] = (0..<n).map { $0 % 3 == 0 ? -1 : 1 }
        let sums = x.withUnsafeBufferPointer {
            SignInvariantKMeans.signedSums(units: $0.baseAddress!, count: n, dimension: d, assignment: assignment[...],
                                           signs: signs[...], k: k)
        }
        var reference = [Double](repeating: 0, count: k * d)
        for i in 0..<n where assignment[i] >= 0 && assignment[i] < k {
            for j in 0..<d { reference[assignment[i] * d + j] += Double(signs[i]) * Double(x[i * d + j]) }
        }
        for (value, expected) in zip(sums, reference) { #expect(abs(Double(value) - expected) <= 1e-5 * (1 + abs(expected))) }
    }

    @Test("a Lloyd step's result does not depend on whether block boundaries fall inside or between adapters' units",
          arguments: [3, 4, 5, 64])
    func lloydStepOverStreamedUnits(blockSize: Int) throws {
        // 6 adapters of rank 4: a block size of 4 cuts between adapters, 3 and 5 inside them, 64 holds all.
        let terms = TestData.randomTerms(count: 6, rank: 4, out: 8, in: 6, seed: 5)
        let streamed = try RankOneUnits.extract(ranks: terms.map(\.rank), outFeatures: 8, inFeatures: 6,
                                                gauge: .balanced, basis: .svd) { terms[$0] }
        let reference = try Self.referenceUnits(terms, out: 8, in: 6, gauge: .balanced, basis: .svd)
        #expect(streamed.vectors == reference)
        let n = streamed.count, d = streamed.dimension, k = 3
        let norms = SignInvariantKMeans.rowNormsSquared(streamed.vectors, count: n, dimension: d)
        let centroids = Array(streamed.vectors[0..<(k * d)])
        let step = SignInvariantKMeans.lloydStep(units: streamed.vectors, count: n, dimension: d, unitNormsSquared: norms,
                                                 centroids: centroids, k: k, blockSize: blockSize)
        let whole = SignInvariantKMeans.lloydStep(units: reference, count: n, dimension: d, unitNormsSquared: norms,
                                                  centroids: centroids, k: k, blockSize: n)
        #expect(step.assignment == whole.assignment)
        #expect(step.counts == whole.counts)
        for (value, expected) in zip(step.sums, whole.sums) { #expect(abs(value - expected) <= 1e-5 * (1 + abs(expected))) }
    }
}
