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
        // The block height of the former layout (every term's block of a row block held at once), kept so the GEMM
        // calls, and with them the bits of every τ_i on any OpenBLAS kernel set, are those of earlier releases.
        let step = TaskVectors.blockRows(rows: rows, cols: cols, copies: max(terms.count, 1))
        let pruning = Pruning(method: method, options: options, terms: terms, rows: rows, cols: cols, blockRows: step, seed: seed)
        let election: PruneOptions.MajoritySign? = (method == .ties || method == .dareTies) ? options.majoritySign : nil

        // Row block by row block; in each, term by term: form the block of τ_i (the same GEMM call the cut's pass
        // made), prune it and add it into the running sums while it is in cache (`TaskVectorCombine`), so only one
        // block of one term is held at a time.
        var dense = [Float](repeating: 0, count: rows * cols)
        let mode: TaskVectorCombine.Mode = election.map { .ties(total: $0 == .total) } ?? .sum
        let combine = TaskVectorCombine(mode: mode, capacity: step * cols)
        let block = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(step * cols, 1))
        defer { block.deallocate() }
        guard let base = block.baseAddress else { throw MergeError("module \(input.name): out of memory for a task-vector block") }
        var equalSeen = [Int](repeating: 0, count: terms.count)
        var start = 0
        while start < rows {
            let count = min(step, rows - start)
            let blockSize = count * cols
            combine.reset(count: blockSize)
            for (index, term) in terms.enumerated() {
                TaskVectors.fillBlock(term, cols: cols, rowStart: start, rowCount: count, into: base)
                let least = pruning.prepare(term: index, block: UnsafeMutableBufferPointer(start: base, count: blockSize),
                                            firstIndex: start * cols, equalSeen: &equalSeen[index])
                combine.add(base, keepAtLeast: least)
            }
            dense.withUnsafeMutableBufferPointer { destination in
                guard let target = destination.baseAddress?.advanced(by: start * cols) else { return }
                combine.finish(into: target)
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

    /// Prepares the block of term `term` for `TaskVectorCombine.add` and returns the bound it should keep at:
    /// a magnitude cut is fused into the combine's pass (only a cut that keeps some but not all tied entries is
    /// applied here, by position); DARE's random drop is applied here (bound 0: keep what it left).
    func prepare(term: Int, block: UnsafeMutableBufferPointer<Float>, firstIndex: Int, equalSeen: inout Int) -> UInt32 {
        switch self {
        case .none: return 0
        case .magnitude(let cuts):
            if let least = cuts[term].keepAtLeast { return least }
            TaskVectors.applyCut(cuts[term], to: block, equalSeen: &equalSeen)
            return 0
        case .random(let keys, let density):
            TaskVectors.applyRandomDrop(key: keys[term], density: density, firstIndex: firstIndex, to: block)
            return 0
        }
    }
}
