import Kernels

/// `ties`, `dare_ties`, `dare_linear` and `magnitude_prune`: PEFT's task-vector merges
/// (src/peft/utils/merge_utils.py) on the dense task vectors `τ_i = c_i B_i A_i`, followed by the best rank-k
/// approximation of the dense result.
///
/// Choices where PEFT is silent or arbitrary (also in docs/merge-engine.md):
/// - Weights are inside τ_i (METHODS.md): pruning is unaffected by a positive weight, and `majority_sign: total`
///   elects the sign of Σ c_i B_i A_i. (PEFT's merge_utils elects on the unweighted tensors and multiplies by the
///   weights afterwards; the two agree whenever the weights are equal.)
/// - Magnitude pruning keeps exactly `Int(density · numel)` entries per τ_i; ties at the k-th magnitude are kept
///   in row-major order (torch.topk picks arbitrarily).
/// - DARE masks come from a counter-based stream keyed by (module seed, position of the adapter among the
///   module's inputs) and the entry's row-major index: independent of blocking, threads and workers.
/// - `density ≥ 1` prunes nothing (PEFT's `prune` returns the tensor unchanged).
enum TaskVectorMerge {
    /// Terms whose blocks are pruned and combined in one pass (each running sum is read and written once per group).
    static let group = 8
    /// Entries per pass when every term fits one group (the running sums then stay in cache).
    static let span = 16_384

    static func merge(_ input: ModuleInput, method: MergeMethodName, rank: Int, options: PruneOptions, seed: UInt64) throws -> ModuleResult {
        guard rank >= 1 else { throw MergeError("module \(input.name): output rank must be at least 1, got \(rank)") }
        let dense = try denseResult(input, method: method, options: options, seed: seed)
        let truncated = try DenseTruncation.truncate(dense, rows: input.outFeatures, cols: input.inFeatures, rank: rank, seed: seed)
        return ModuleResult(name: input.name, rank: truncated.rank, outFeatures: input.outFeatures, inFeatures: input.inFeatures,
                            b: truncated.b, a: truncated.a,
                            stats: ModuleStats(relativeError: 0, truncationError: truncated.relativeError))
    }

    /// The stream key of the DARE mask of the `termIndex`-th input of a module.
    static func dareKey(seed: UInt64, termIndex: Int) -> UInt64 {
        CounterRandom.streamKey(seed: seed, stream: UInt64(termIndex))
    }

    /// The merged dense task vector [out, in], before rank truncation.
    static func denseResult(_ input: ModuleInput, method: MergeMethodName, options: PruneOptions, seed: UInt64) throws -> [Float] {
        try input.checkShapes()
        guard options.density > 0, options.density <= 1 else {
            throw MergeError("module \(input.name): density must be in (0, 1], got \(options.density)")
        }
        let rows = input.outFeatures, cols = input.inFeatures
        let terms = input.terms.map { LowRankTerm(coefficient: Float($0.coefficient), rank: $0.rank, b: $0.b, a: $0.a) }
        // A block height of the shape alone, for cache (the former one shrank with the number of terms, to one row
        // of a 14336-wide module at 960 terms, where each OpenBLAS call packed all of A_i for one row).
        let step = TaskVectors.passRows(rows: rows, cols: cols)
        let pruning = Pruning(method: method, options: options, terms: terms, rows: rows, cols: cols, blockRows: step, seed: seed)
        let election: PruneOptions.MajoritySign? = (method == .ties || method == .dareTies) ? options.majoritySign : nil

        // Row block by row block; in each, terms in groups of `group`: form each term's block (the very values the
        // cut's pass saw: `TaskVectors.fillBlock`), then prune the group's blocks and add them, in term order, into
        // running sums while they are in cache (`TaskVectorCombine`): only the group's blocks are held. With a
        // single group the sums only live for a span of `span` entries.
        var dense = [Float](repeating: 0, count: rows * cols)
        let mode: TaskVectorCombine.Mode = election.map { .ties(total: $0 == .total) } ?? .sum
        let group = max(1, min(Self.group, terms.count))
        let single = terms.count <= group
        let span = Self.span
        let combine = TaskVectorCombine(mode: mode, capacity: single ? min(span, step * cols) : step * cols)
        let buffers = UnsafeMutablePointer<Float>.allocate(capacity: max(group * step * cols, 1))
        defer { buffers.deallocate() }
        var equalSeen = [Int](repeating: 0, count: terms.count)
        var start = 0
        while start < rows {
            let count = min(step, rows - start)
            let blockSize = count * cols
            if !single { combine.reset(count: blockSize) }
            for first in stride(from: 0, to: terms.count, by: group) {
                let members = first..<min(first + group, terms.count)
                let cuts = members.map { index -> TaskVectorCombine.Term in
                    let block = buffers + (index - first) * step * cols
                    TaskVectors.fillBlock(terms[index], cols: cols, rowStart: start, rowCount: count, into: block)
                    return pruning.prepare(term: index, block: block, count: blockSize, firstIndex: start * cols,
                                           equalSeen: &equalSeen[index])
                }
                if !single {
                    combine.add(cuts)
                    continue
                }
                dense.withUnsafeMutableBufferPointer { destination in
                    guard let target = destination.baseAddress?.advanced(by: start * cols) else { return }
                    for offset in stride(from: 0, to: blockSize, by: span) {
                        combine.reset(count: min(span, blockSize - offset))
                        combine.add(cuts, offset: offset)
                        combine.finish(into: target + offset)
                    }
                }
            }
            if !single {
                dense.withUnsafeMutableBufferPointer { destination in
                    guard let target = destination.baseAddress?.advanced(by: start * cols) else { return }
                    combine.finish(into: target)
                }
            }
            start += count
        }
        return dense
    }
}

/// How each task vector is sparsified before combining.
private enum Pruning {
    case none
    /// One exact cut per term (first pass over each τ_i).
    case magnitude([MagnitudeCut])
    /// One DARE stream per term.
    case random(keys: [UInt64], density: Float)

    init(method: MergeMethodName, options: PruneOptions, terms: [LowRankTerm], rows: Int, cols: Int, blockRows: Int, seed: UInt64) {
        guard options.density < 1 else {
            self = .none
            return
        }
        switch method {
        case .ties, .magnitudePrune:
            let keep = Int(options.density * Double(rows * cols))
            self = .magnitude(terms.map { TaskVectors.magnitudeCut($0, rows: rows, cols: cols, keep: keep, blockRows: blockRows) })
        case .dareTies, .dareLinear:
            self = .random(keys: terms.indices.map { TaskVectorMerge.dareKey(seed: seed, termIndex: $0) }, density: Float(options.density))
        default:
            self = .none
        }
    }

    /// Prepares the block of term `term` (`firstIndex` = its row-major index) for `TaskVectorCombine` and returns
    /// it with its cut: a magnitude cut is fused into the combine's pass (only a cut that keeps some but not all
    /// tied entries at unknown positions is applied here, by position); DARE's random drop is applied here.
    func prepare(term: Int, block: UnsafeMutablePointer<Float>, count: Int, firstIndex: Int,
                 equalSeen: inout Int) -> TaskVectorCombine.Term {
        let whole = TaskVectorCombine.Term(block: UnsafePointer(block))
        let entries = UnsafeMutableBufferPointer(start: block, count: count)
        switch self {
        case .none: return whole
        case .magnitude(let cuts):
            if let (threshold, limit) = cuts[term].bounds(first: firstIndex, count: count) {
                return TaskVectorCombine.Term(block: whole.block, threshold: threshold, tieLimit: limit)
            }
            TaskVectors.applyCut(cuts[term], to: entries, equalSeen: &equalSeen)
            return whole
        case .random(let keys, let density):
            TaskVectors.applyRandomDrop(key: keys[term], density: density, firstIndex: firstIndex, to: entries)
            return whole
        }
    }
}
