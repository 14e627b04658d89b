import Testing
@testable import Kernels
@testable import MergeEngine

/// ties / dare_ties / dare_linear / magnitude_prune against an independent dense reference in Double
/// (PEFT merge_utils semantics, weights inside τ_i), at full output rank so truncation is exact.
@Suite struct TaskVectorMergeTests {
    static let out = 9, inFeatures = 7
    static let coefficients = [0.6, -0.8, 1.1]

    static func input() -> ModuleInput {
        Dense.randomInput(out: out, in: inFeatures, ranks: [3, 2, 4], coefficients: coefficients, seed: 42)
    }

    /// The reference: prune each τ_i, then sum, or elect a sign per entry and average the agreeing entries.
    static func reference(_ input: ModuleInput, method: MergeMethodName, density: Double,
                          majority: PruneOptions.MajoritySign, seed: UInt64) -> [Double] {
        let numel = input.outFeatures * input.inFeatures
        let taus = input.terms.enumerated().map { index, term -> [Double] in
            var tau = Dense.product(b: term.b, a: term.a, out: input.outFeatures, rank: term.rank, in: input.inFeatures,
                                    coefficient: term.coefficient)
            guard density < 1 else { return tau }
            switch method {
            case .ties, .magnitudePrune:
                let keep = Int(density * Double(numel))
                let order = tau.indices.sorted { abs(tau[$0]) != abs(tau[$1]) ? abs(tau[$0]) > abs(tau[$1]) : $0 < $1 }
                for position in order.dropFirst(keep) { tau[position] = 0 }
            default:
                let key = TaskVectorMerge.dareKey(seed: seed, termIndex: index)
                for j in tau.indices {
                    tau[j] = TaskVectors.randomDropKeeps(key: key, density: Float(density), index: j) ? tau[j] / density : 0
                }
            }
            return tau
        }
        return (0..<numel).map { j in
            let values = taus.map { $0[j] }
            guard method == .ties || method == .dareTies else { return values.reduce(0, +) }
            let vote = majority == .total ? values.reduce(0, +) : values.reduce(0) { $0 + ($1 > 0 ? 1 : ($1 < 0 ? -1 : 0)) }
            let elected: Double = vote >= 0 ? 1 : -1
            let agreeing = values.filter { $0 != 0 && ($0 > 0 ? 1.0 : -1.0) == elected }
            return agreeing.reduce(0, +) / Double(max(agreeing.count, 1))
        }
    }

    static let cases: [(MergeMethodName, Double, PruneOptions.MajoritySign)] = [
        (.ties, 0.3, .total), (.ties, 0.7, .frequency), (.ties, 1.0, .total),
        (.dareTies, 0.4, .total), (.dareTies, 0.8, .frequency),
        (.dareLinear, 0.5, .total), (.dareLinear, 1.0, .total),
        (.magnitudePrune, 0.2, .total), (.magnitudePrune, 0.65, .total),
    ]

    @Test(arguments: cases)
    func matchesDenseReference(method: MergeMethodName, density: Double, majority: PruneOptions.MajoritySign) throws {
        let input = Self.input()
        var spec = MergeSpec(method: method, rank: Self.inFeatures)
        spec.prune.density = density
        spec.prune.majoritySign = majority
        let seed: UInt64 = 0x1234
        let result = try ModuleMerger.merge(input, spec: spec, seed: seed)
        let expected = Self.reference(input, method: method, density: density, majority: majority, seed: seed)
        #expect(result.rank == Self.inFeatures)
        let error = Dense.relativeError(Dense.product(result), expected)
        #expect(error < 1e-5, "\(method) density \(density): relative error \(error)")
        #expect((result.stats.truncationError ?? 1) < 1e-5)
        // The pruning actually did something where it should (guards against a reference that equals T).
        if density < 1 { #expect(Dense.relativeError(expected, Dense.target(input)) > 1e-3) }
    }

    @Test func dareMasksAreReproducibleFromTheSeed() throws {
        let input = Self.input()
        var spec = MergeSpec(method: .dareLinear, rank: Self.inFeatures)
        spec.prune.density = 0.5
        let first = try TaskVectorMerge.denseResult(input, method: .dareLinear, options: spec.prune, seed: 7)
        let again = try TaskVectorMerge.denseResult(input, method: .dareLinear, options: spec.prune, seed: 7)
        let other = try TaskVectorMerge.denseResult(input, method: .dareLinear, options: spec.prune, seed: 8)
        #expect(first == again)
        #expect(first != other)
    }

    @Test(arguments: [0.1, 0.5, 0.9])
    func dareKeepsTheDensityFraction(density: Double) {
        let key = TaskVectorMerge.dareKey(seed: 99, termIndex: 3)
        let draws = 200_000
        let kept = (0..<draws).filter { TaskVectors.randomDropKeeps(key: key, density: Float(density), index: $0) }.count
        #expect(abs(Double(kept) / Double(draws) - density) < 0.01)
    }

    /// Ties at the k-th magnitude are kept in row-major order, whatever the block height.
    @Test(arguments: [1, 2, 4])
    func magnitudeCutBreaksTiesByPosition(blockRows: Int) {
        let term = LowRankTerm(coefficient: -1, rank: 1, b: [1, 1, 1, 1], a: [1, 1, 2, 2, 3])
        let cut = TaskVectors.magnitudeCut(term, rows: 4, cols: 5, keep: 6, blockRows: blockRows)
        var kept: [Int] = []
        var seen = 0
        var buffer = [Float](repeating: 0, count: blockRows * 5)
        for start in stride(from: 0, to: 4, by: blockRows) {
            buffer.withUnsafeMutableBufferPointer { block in
                TaskVectors.fillBlock(term, cols: 5, rowStart: start, rowCount: blockRows, into: block.baseAddress!)
                TaskVectors.applyCut(cut, to: block, equalSeen: &seen)
            }
            for (offset, value) in buffer.enumerated() where value != 0 { kept.append(start * 5 + offset) }
        }
        // The four 3s (column 4 of each row), then the first two 2s in row-major order (row 0, columns 2 and 3).
        #expect(kept == [2, 3, 4, 9, 14, 19])
    }

    @Test(arguments: [0, 1, 37, 100])
    func magnitudeCutKeepsExactlyK(keep: Int) {
        var random = TestRandom(seed: 3)
        let term = LowRankTerm(coefficient: 0.5, rank: 2, b: random.values(20), a: random.values(10))
        let cut = TaskVectors.magnitudeCut(term, rows: 10, cols: 5, keep: keep, blockRows: 3)
        var seen = 0, count = 0
        var buffer = [Float](repeating: 0, count: 50)
        buffer.withUnsafeMutableBufferPointer { block in
            TaskVectors.fillBlock(term, cols: 5, rowStart: 0, rowCount: 10, into: block.baseAddress!)
            TaskVectors.applyCut(cut, to: block, equalSeen: &seen)
            count = block.filter { $0 != 0 }.count
        }
        #expect(count == min(keep, 50))
    }

    @Test func truncationBelowFullRankReportsItsError() throws {
        let input = Self.input()
        var spec = MergeSpec(method: .magnitudePrune, rank: 3)
        spec.prune.density = 0.5
        let result = try ModuleMerger.merge(input, spec: spec, seed: 1)
        let dense = try TaskVectorMerge.denseResult(input, method: .magnitudePrune, options: spec.prune, seed: 1).map(Double.init)
        #expect(result.rank == 3)
        let measured = Dense.relativeError(Dense.product(result), dense)
        #expect(abs(measured - (result.stats.truncationError ?? -1)) < 1e-5)
        #expect(measured > 0)
    }

    /// Without pruning, the summing methods reproduce T exactly at full rank, and the report's error says so.
    @Test(arguments: [MergeMethodName.magnitudePrune, .dareLinear])
    func densityOneAtFullRankIsTheExactSum(method: MergeMethodName) throws {
        let input = Self.input()
        var spec = MergeSpec(method: method, rank: Self.inFeatures)
        spec.prune.density = 1
        let result = try ModuleMerger.merge(input, spec: spec, seed: 3)
        #expect(Dense.relativeError(Dense.product(result), Dense.target(input)) < 1e-5)
        #expect(result.stats.relativeError < 1e-5)
    }
}
