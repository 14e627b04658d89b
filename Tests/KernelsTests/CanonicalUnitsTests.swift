import Testing
@testable import Kernels

/// `CanonicalUnits` (Grams + r×r SVD + two GEMMs) against the Householder route it replaced (`FactoredProduct`'s
/// truncated SVD, kept here as the reference) and against dense math.
@Suite struct CanonicalUnitsTests {
    /// The previous route: c·B·A in its own SVD basis by QRs of B and Aᵀ, as a term of coefficient 1 (B' [out, k]
    /// row-major, A' [k, in]), signs fixed on B' columns.
    static func householderReference(_ term: FactorTerm, out: Int, in inFeatures: Int) throws -> FactorTerm {
        var columns = FactoredProduct.transposed(term.b, rows: out, cols: term.rank)
        for i in columns.indices { columns[i] *= Float(term.coefficient) }
        let product = try FactoredProduct(leftColumns: columns, right: term.a, rows: out, inner: term.rank,
                                          cols: inFeatures)
        let svd = try product.truncatedSVD(rank: term.rank)
        return FactorTerm(coefficient: 1, rank: svd.rank, a: svd.right, b: svd.left)
    }

    /// The rows `CanonicalUnits.write` produces for one term, and how many.
    static func canonicalRows(_ term: FactorTerm, out: Int, in inFeatures: Int) throws -> (rows: [Float], count: Int) {
        var rows = [Float](repeating: .nan, count: max(1, term.rank) * (out + inFeatures))
        var scratch = CanonicalUnits.Scratch()
        let count = try rows.withUnsafeMutableBufferPointer {
            try CanonicalUnits.write(term, outFeatures: out, inFeatures: inFeatures, into: $0.baseAddress!,
                                     scratch: &scratch)
        }
        return (Array(rows.prefix(count * (out + inFeatures))), count)
    }

    /// Terms with structure: well-conditioned, a negative coefficient, B with one column a tiny fraction of the
    /// others (cond ~1e3), a rank above `out`, a zero column of B.
    static func cases() -> [(name: String, term: FactorTerm, out: Int, in: Int)] {
        var list: [(String, FactorTerm, Int, Int)] = []
        let plain = TestData.randomTerms(count: 1, rank: 6, out: 40, in: 24, seed: 3)[0]
        list.append(("plain", plain, 40, 24))
        var negative = TestData.randomTerms(count: 1, rank: 4, out: 30, in: 50, seed: 4)[0]
        negative.coefficient = -1.3
        list.append(("negative", negative, 30, 50))
        var illConditioned = TestData.randomTerms(count: 1, rank: 5, out: 64, in: 32, seed: 5)[0]
        for i in 0..<64 { illConditioned.b[i * 5 + 2] *= 1e-3 }
        list.append(("ill-conditioned", illConditioned, 64, 32))
        list.append(("rank above out", TestData.randomTerms(count: 1, rank: 8, out: 5, in: 20, seed: 6)[0], 5, 20))
        var zeroColumn = TestData.randomTerms(count: 1, rank: 4, out: 16, in: 12, seed: 7)[0]
        for i in 0..<16 { zeroColumn.b[i * 4 + 1] = 0 }
        list.append(("zero column", zeroColumn, 16, 12))
        return list
    }

    @Test("the units equal the Householder route's canonical units to Float accuracy",
          arguments: 0..<5)
    func matchesHouseholderRoute(index: Int) throws {
        let (name, term, out, inFeatures) = Self.cases()[index]
        let dim = out + inFeatures
        let reference = try Self.householderReference(term, out: out, in: inFeatures)
        let (rows, count) = try Self.canonicalRows(term, out: out, in: inFeatures)
        // The reference keeps zero directions as zero columns; the Gram route does not write them.
        var referenceRows: [[Float]] = []
        for t in 0..<reference.rank {
            let b = (0..<out).map { reference.b[$0 * reference.rank + t] }
            let a = Array(reference.a[(t * inFeatures)..<((t + 1) * inFeatures)])
            if b.contains(where: { $0 != 0 }) { referenceRows.append(b + a) }
        }
        #expect(count == referenceRows.count, "\(name)")
        guard count == referenceRows.count else { return }
        let scale = referenceRows.map { $0.reduce(0) { max($0, abs(Double($1))) } }.max() ?? 1
        for t in 0..<count {
            let row = Array(rows[(t * dim)..<((t + 1) * dim)])
            let difference = zip(row, referenceRows[t]).reduce(0.0) { max($0, abs(Double($1.0) - Double($1.1))) }
            #expect(difference <= 2e-4 * scale, "\(name) unit \(t): \(difference) against \(scale)")
        }
    }

    @Test("Σ b'_t a'_tᵀ = c·B·A, b' columns and a' rows orthogonal with equal norms √σ, largest |b'| entry positive",
          arguments: 0..<5)
    func properties(index: Int) throws {
        let (name, term, out, inFeatures) = Self.cases()[index]
        let dim = out + inFeatures
        let (rows, count) = try Self.canonicalRows(term, out: out, in: inFeatures)
        var sum = [Double](repeating: 0, count: out * inFeatures)
        for t in 0..<count {
            for i in 0..<out { for j in 0..<inFeatures {
                sum[i * inFeatures + j] += Double(rows[t * dim + i]) * Double(rows[t * dim + out + j])
            } }
        }
        #expect(TestData.relativeDifference(sum, TestData.denseTarget([term], out: out, in: inFeatures)) < 2e-6, "\(name)")
        func dot(_ s: Int, _ t: Int, offset: Int, length: Int) -> Double {
            (0..<length).reduce(0.0) { $0 + Double(rows[s * dim + offset + $1]) * Double(rows[t * dim + offset + $1]) }
        }
        let top = count > 0 ? dot(0, 0, offset: 0, length: out) : 0
        for s in 0..<count {
            let normB = dot(s, s, offset: 0, length: out), normA = dot(s, s, offset: out, length: inFeatures)
            #expect(abs(normB - normA) <= 1e-5 * top, "\(name) unit \(s)")
            if s > 0 { #expect(normB <= dot(s - 1, s - 1, offset: 0, length: out) * (1 + 1e-5), "\(name): σ descending") }
            for t in 0..<s {
                #expect(abs(dot(s, t, offset: 0, length: out)) <= 1e-5 * top, "\(name) B' \(s)·\(t)")
                #expect(abs(dot(s, t, offset: out, length: inFeatures)) <= 1e-5 * top, "\(name) A' \(s)·\(t)")
            }
            let b = rows[(s * dim)..<(s * dim + out)]
            let largest = b.indices.max { abs(b[$0]) < abs(b[$1]) || (abs(b[$0]) == abs(b[$1]) && $0 > $1) }!
            #expect(b[largest] > 0, "\(name) unit \(s) sign")
        }
    }

    @Test("a zero factor writes no unit; a non-finite factor is an error")
    func degenerateTerms() throws {
        var term = TestData.randomTerms(count: 1, rank: 3, out: 6, in: 5, seed: 9)[0]
        let zero = FactorTerm(coefficient: 1, rank: 3, a: term.a, b: [Float](repeating: 0, count: 18))
        #expect(try Self.canonicalRows(zero, out: 6, in: 5).count == 0)
        term.a[4] = .infinity
        // The error names this kernel (not `FactoredProduct`, the route it replaced) and the term's shape.
        let error = #expect(throws: KernelShapeError.self) { try Self.canonicalRows(term, out: 6, in: 5) }
        #expect(error?.kernel == "CanonicalUnits")
        #expect(error?.description.contains("[6, 3] · [3, 5] term") == true)
        term.a[4] = 0
        #expect(throws: KernelShapeError.self) {
            try Self.canonicalRows(FactorTerm(coefficient: .nan, rank: 3, a: term.a, b: term.b), out: 6, in: 5)
        }
    }
}
