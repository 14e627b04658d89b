import Testing
@testable import Kernels
@testable import MergeEngine

/// The one-pass magnitude cut and the fused prune-and-combine pass against the two-pass forms they replace:
/// the same cut (threshold, ties) and the same bits of the dense result, on task vectors large enough to take the
/// sampled-bracket path (≥ 65 536 entries), on every CSIMD path.
@Suite struct TaskVectorFusedTests {
    static let rows = 300, cols = 256

    static func term(seed: UInt64, rank: Int = 4, coefficient: Float = 0.7, rowScales: Bool = false) -> LowRankTerm {
        var random = TestRandom(seed: seed)
        var b = random.values(rows * rank)
        // Rows of very different scales: the sample's rows then disagree on the kept fraction.
        if rowScales { for i in 0..<rows { for r in 0..<rank { b[i * rank + r] *= Float(1 + (i % 7) * (i % 7)) } } }
        return LowRankTerm(coefficient: coefficient, rank: rank, b: b, a: random.values(rank * cols))
    }

    /// The cut without the last kept tie's position (which only the one-pass cut records).
    static func core(_ cut: MagnitudeCut) -> MagnitudeCut {
        var stripped = cut
        stripped.lastTieKept = nil
        return stripped
    }

    @Test(arguments: [0.01, 0.2, 0.5, 0.77, 0.999])
    func oneTakesTheBracketAndEqualsTheTwoPassCut(density: Double) throws {
        for (seed, scaled) in [(UInt64(1), false), (2, true), (3, false)] {
            let term = Self.term(seed: seed, rowScales: scaled)
            let keep = Int(density * Double(Self.rows * Self.cols))
            for blockRows in [7, 64] {
                let bracket = try #require(MagnitudeSelection.bracket(term, rows: Self.rows, cols: Self.cols, keep: keep))
                let scanned = MagnitudeSelection.scanCut(term, rows: Self.rows, cols: Self.cols, keep: keep,
                                                         blockRows: blockRows, bracket: bracket)
                let reference = TaskVectors.histogramCut(term, rows: Self.rows, cols: Self.cols, keep: keep,
                                                         blockRows: blockRows)
                #expect(scanned.map(Self.core) == reference, "density \(density) seed \(seed) blockRows \(blockRows)")
                #expect(Self.core(TaskVectors.magnitudeCut(term, rows: Self.rows, cols: Self.cols, keep: keep,
                                                           blockRows: blockRows)) == reference)
            }
        }
    }

    /// Blocks of τ are coefficient × the fused multiply-add chain over the rank in order: the same bits on every
    /// CSIMD path and for any block height (so the cut's pass and the combine pass see the same values whatever
    /// their blocks, and whatever OpenBLAS kernel set is loaded).
    @Test(arguments: [16, 33])
    func blocksAreExactOrderArithmeticOnEveryPath(rank: Int) {
        let rows = 21, cols = 1000 + 7
        var random = TestRandom(seed: UInt64(rank))
        let term = LowRankTerm(coefficient: -0.37, rank: rank, b: random.values(rows * rank), a: random.values(rank * cols))
        var expected = [Float](repeating: 0, count: rows * cols)
        for i in 0..<rows {
            for j in 0..<cols {
                var chain: Float = 0
                for r in 0..<rank { chain = chain.addingProduct(term.b[i * rank + r], term.a[r * cols + j]) }
                expected[i * cols + j] = chain * term.coefficient
            }
        }
        for path in 0...2 {
            for height in [1, 5, rows] {
                var out = [Float](repeating: .nan, count: rows * cols)
                out.withUnsafeMutableBufferPointer { buffer in
                    for start in stride(from: 0, to: rows, by: height) {
                        TaskVectors.fillBlock(onPath: path, term, cols: cols, rowStart: start,
                                              rowCount: min(height, rows - start),
                                              into: buffer.baseAddress! + start * cols)
                    }
                }
                #expect(out.map(\.bitPattern) == expected.map(\.bitPattern), "path \(path) height \(height)")
            }
        }
    }

    /// A bracket that misses the k-th magnitude (or holds it only partly) is refused, never a wrong cut.
    @Test func aBracketThatMissesIsRefused() {
        let term = Self.term(seed: 5)
        let keep = Self.rows * Self.cols / 2
        let reference = TaskVectors.histogramCut(term, rows: Self.rows, cols: Self.cols, keep: keep, blockRows: 16)
        let below = 0...(reference.thresholdBits - 1)
        let above = (reference.thresholdBits + 1)...0x7fff_ffff
        #expect(MagnitudeSelection.scanCut(term, rows: Self.rows, cols: Self.cols, keep: keep, blockRows: 16, bracket: below) == nil)
        #expect(MagnitudeSelection.scanCut(term, rows: Self.rows, cols: Self.cols, keep: keep, blockRows: 16, bracket: above) == nil)
        let exact = reference.thresholdBits...reference.thresholdBits
        #expect(MagnitudeSelection.scanCut(term, rows: Self.rows, cols: Self.cols, keep: keep, blockRows: 16,
                                           bracket: exact).map(Self.core) == reference)
    }

    /// Many entries tie at the cut (a rank-1 τ of repeated values): the cut keeps some of them by position, so it
    /// has no single bound and the positional path runs; the one-pass cut still equals the two-pass one.
    @Test func tiesAtTheCutKeepTheirPositions() throws {
        let rows = 512, cols = 256
        let term = LowRankTerm(coefficient: 1, rank: 1, b: (0..<rows).map { Float($0 % 3 + 1) },
                               a: (0..<cols).map { Float($0 % 5 + 1) })
        let keep = rows * cols / 2 + 17
        let cut = TaskVectors.magnitudeCut(term, rows: rows, cols: cols, keep: keep, blockRows: 32)
        #expect(Self.core(cut) == TaskVectors.histogramCut(term, rows: rows, cols: cols, keep: keep, blockRows: 32))
        #expect(cut.equalToKeep > 0 && cut.equalToKeep < cut.equalTotal)
    }

    /// Every CSIMD path scans to the same count, candidates and positions, and accumulates to the same bits.
    @Test func everyPathAgrees() {
        var random = TestRandom(seed: 9)
        let values = random.values(1000 + 13), other = random.values(1013), third = random.values(1013)
        var counts: [[Int]] = [], lists: [[UInt32]] = [], sums: [[[Float]]] = []
        for path in 0...2 {
            var above = 0, found = 0
            var candidates = [UInt32](repeating: 0, count: 64 + 16), positions = candidates
            values.withUnsafeBufferPointer { x in
                candidates.withUnsafeMutableBufferPointer { c in
                    positions.withUnsafeMutableBufferPointer { p in
                        MagnitudeSelection.scan(onPath: path, x, first: 5, bracket: 0x3e80_0000...0x3f00_0000,
                                                above: &above, candidates: c.baseAddress!, positions: p.baseAddress!,
                                                capacity: 64, found: &found)
                    }
                }
            }
            counts.append([above, found])
            lists.append(Array(candidates[0..<min(found, 64)]) + Array(positions[0..<min(found, 64)]))
            var perMode: [[Float]] = []
            for mode in [TaskVectorCombine.Mode.sum, .ties(total: true), .ties(total: false)] {
                let combine = TaskVectorCombine(mode: mode, capacity: values.count)
                combine.reset(count: values.count)
                values.withUnsafeBufferPointer { a in
                    other.withUnsafeBufferPointer { b in
                        third.withUnsafeBufferPointer { c in
                            combine.add(onPath: path, [.init(block: a.baseAddress!, threshold: 0x3e00_0000, tieLimit: -1),
                                                       .init(block: b.baseAddress!)])
                            combine.add(onPath: path, [.init(block: c.baseAddress!, threshold: 0x3f00_0000, tieLimit: 500)])
                        }
                    }
                }
                var out = [Float](repeating: 0, count: values.count)
                out.withUnsafeMutableBufferPointer { combine.finish(into: $0.baseAddress!) }
                perMode.append(out)
            }
            sums.append(perMode)
        }
        #expect(counts.allSatisfy { $0 == counts[0] } && counts[0][1] > 64, "the buffer overflowed as intended")
        #expect(lists.allSatisfy { $0 == lists[0] })
        for path in 1...2 { for mode in 0..<3 { #expect(sums[path][mode].map(\.bitPattern) == sums[0][mode].map(\.bitPattern)) } }
    }

    /// The one-pass cut knows where its last kept tie is, so the fused pass needs no walk in order: on a τ with
    /// many ties at the cut, the merged bits equal the two-pass form's.
    @Test func lastKeptTieIsRecorded() throws {
        let rows = 512, cols = 256
        let term = LowRankTerm(coefficient: 1, rank: 1, b: (0..<rows).map { Float($0 % 3 + 1) },
                               a: (0..<cols).map { Float($0 % 5 + 1) })
        let keep = rows * cols / 2 + 17
        let cut = TaskVectors.magnitudeCut(term, rows: rows, cols: cols, keep: keep, blockRows: 32)
        let tie = try #require(cut.lastTieKept)
        // Exactly `equalToKeep` tied entries lie at or before it.
        var tied = 0
        for i in 0...tie where (Float((i / cols) % 3 + 1) * Float((i % cols) % 5 + 1)).bitPattern == cut.thresholdBits { tied += 1 }
        #expect(tied == cut.equalToKeep)
    }

    /// Inputs with many ties at every cut (small integer factors): the positional rule through the recorded last
    /// tie, and the fallback's walk in order, give the two-pass form's bits.
    @Test(arguments: [MergeMethodName.ties, .magnitudePrune])
    func tiedInputsGiveTheTwoPassBits(method: MergeMethodName) throws {
        var input = Dense.randomInput(out: Self.rows, in: Self.cols, ranks: [2, 1, 3], coefficients: [1, -1, 0.5], seed: 4)
        for t in input.terms.indices {
            input.terms[t].b = input.terms[t].b.map { ($0 * 4).rounded() }
            input.terms[t].a = input.terms[t].a.map { ($0 * 4).rounded() }
        }
        var options = PruneOptions()
        options.density = 0.45
        let fused = try TaskVectorMerge.denseResult(input, method: method, options: options, seed: 2)
        let reference = Self.twoPassResult(input, method: method, options: options, seed: 2)
        #expect(fused.map(\.bitPattern) == reference.map(\.bitPattern))
    }

    static let methods: [(MergeMethodName, PruneOptions.MajoritySign)] = [
        (.ties, .total), (.ties, .frequency), (.magnitudePrune, .total), (.dareTies, .total), (.dareLinear, .total),
    ]

    /// The dense result is bit-identical to the former two-pass form (every term's block held, the cut applied in
    /// place, then the sign vote and the agreeing sum as separate passes), kept here as the reference.
    @Test(arguments: methods)
    func denseResultIsBitIdenticalToTheTwoPassForm(method: MergeMethodName, majority: PruneOptions.MajoritySign) throws {
        let input = Dense.randomInput(out: Self.rows, in: Self.cols, ranks: [4, 2, 8, 4, 3],
                                      coefficients: [0.6, -0.8, 1.1, 0.3, -0.5], seed: 21)
        var options = PruneOptions()
        options.density = 0.35
        options.majoritySign = majority
        let fused = try TaskVectorMerge.denseResult(input, method: method, options: options, seed: 5)
        let reference = Self.twoPassResult(input, method: method, options: options, seed: 5)
        #expect(fused.map(\.bitPattern) == reference.map(\.bitPattern))
    }

    /// More terms than one group (`TaskVectorMerge.group`): the running sums persist across groups, same bits.
    @Test(arguments: [PruneOptions.MajoritySign.total, .frequency])
    func severalGroupsGiveTheTwoPassBits(majority: PruneOptions.MajoritySign) throws {
        let count = TaskVectorMerge.group + 3
        let input = Dense.randomInput(out: Self.rows, in: Self.cols, ranks: (0..<count).map { $0 % 4 + 1 },
                                      coefficients: (0..<count).map { Double($0 % 5) * 0.3 - 0.6 }, seed: 33)
        for method in [MergeMethodName.ties, .magnitudePrune, .dareTies] {
            var options = PruneOptions()
            options.density = 0.6
            options.majoritySign = majority
            let fused = try TaskVectorMerge.denseResult(input, method: method, options: options, seed: 8)
            let reference = Self.twoPassResult(input, method: method, options: options, seed: 8)
            #expect(fused.map(\.bitPattern) == reference.map(\.bitPattern), "\(method)")
        }
    }

    /// The former `TaskVectorMerge.denseResult` (before the fused pass), verbatim in substance.
    static func twoPassResult(_ input: ModuleInput, method: MergeMethodName, options: PruneOptions, seed: UInt64) -> [Float] {
        let rows = input.outFeatures, cols = input.inFeatures
        let terms = input.terms.map { LowRankTerm(coefficient: Float($0.coefficient), rank: $0.rank, b: $0.b, a: $0.a) }
        let step = TaskVectors.passRows(rows: rows, cols: cols)  // the same GEMM calls as the fused form
        let magnitude = method == .ties || method == .magnitudePrune
        let keep = Int(options.density * Double(rows * cols))
        let cuts = terms.map { TaskVectors.histogramCut($0, rows: rows, cols: cols, keep: keep, blockRows: step) }
        let elect = method == .ties || method == .dareTies
        var dense = [Float](repeating: 0, count: rows * cols)
        var blocks = [[Float]](repeating: [Float](repeating: 0, count: step * cols), count: terms.count)
        var equalSeen = [Int](repeating: 0, count: terms.count)
        var start = 0
        while start < rows {
            let count = min(step, rows - start), size = count * cols
            for (index, term) in terms.enumerated() {
                blocks[index].withUnsafeMutableBufferPointer { block in
                    TaskVectors.fillBlock(term, cols: cols, rowStart: start, rowCount: count, into: block.baseAddress!)
                    let part = UnsafeMutableBufferPointer(rebasing: block[0..<size])
                    if magnitude {
                        TaskVectors.applyCut(cuts[index], to: part, equalSeen: &equalSeen[index])
                    } else {
                        TaskVectors.applyRandomDrop(key: TaskVectorMerge.dareKey(seed: seed, termIndex: index),
                                                    density: Float(options.density), firstIndex: start * cols, to: part)
                    }
                }
            }
            for j in 0..<size {
                guard elect else {
                    var total: Float = 0
                    for t in terms.indices { total += blocks[t][j] }
                    dense[start * cols + j] = total
                    continue
                }
                var vote: Float = 0
                for t in terms.indices {
                    let value = blocks[t][j]
                    vote += options.majoritySign == .total ? value : (value > 0 ? 1 : 0) - (value < 0 ? 1 : 0)
                }
                let sign: Float = vote >= 0 ? 1 : -1
                var total: Float = 0, agreeing: Float = 0
                for t in terms.indices {
                    let agrees = blocks[t][j] * sign > 0
                    total += agrees ? blocks[t][j] : 0
                    agreeing += agrees ? 1 : 0
                }
                dense[start * cols + j] = total / max(agreeing, 1)
            }
            start += count
        }
        return dense
    }
}
