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
        let step = TaskVectors.blockRows(rows: rows, cols: cols, copies: max(terms.count, 1))
        let pruning = Pruning(method: method, options: options, terms: terms, rows: rows, cols: cols, blockRows: step, seed: seed)
        let election: PruneOptions.MajoritySign? = (method == .ties || method == .dareTies) ? options.majoritySign : nil

        var dense = [Float](repeating: 0, count: rows * cols)
        let blocks = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(terms.count, 1) * step * cols)
        defer { blocks.deallocate() }
        guard let base = blocks.baseAddress else { throw MergeError("module \(input.name): out of memory for task-vector blocks") }
        var equalSeen = [Int](repeating: 0, count: terms.count)
        var start = 0
        while start < rows {
            let count = min(step, rows - start)
            let blockSize = count * cols
            for (index, term) in terms.enumerated() {
                let block = base + index * step * cols
                TaskVectors.fillBlock(term, cols: cols, rowStart: start, rowCount: count, into: block)
                pruning.apply(term: index, block: UnsafeMutableBufferPointer(start: block, count: blockSize),
                              firstIndex: start * cols, equalSeen: &equalSeen[index])
            }
            dense.withUnsafeMutableBufferPointer { destination in
                guard let target = destination.baseAddress?.advanced(by: start * cols) else { return }
                combine(blocks: base, stride: step * cols, terms: terms.count, count: blockSize, election: election, into: target)
            }
            start += count
        }
        return dense
    }

    /// Sums the pruned blocks entry by entry in term order, or (TIES) keeps only entries agreeing with the elected
    /// sign and divides by how many agree (at least 1), as PEFT's `disjoint_merge`. Loops run term by term over
    /// contiguous entries without branches so they vectorise; each entry still sums its terms in term order.
    private static func combine(blocks: UnsafeMutablePointer<Float>, stride: Int, terms: Int, count: Int,
                                election: PruneOptions.MajoritySign?, into target: UnsafeMutablePointer<Float>) {
        target.update(repeating: 0, count: count)
        guard let election else {
            for t in 0..<terms {
                let block = blocks + t * stride
                for j in 0..<count { target[j] += block[j] }
            }
            return
        }
        let vote = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        let agreeing = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        defer {
            vote.deallocate()
            agreeing.deallocate()
        }
        vote.update(repeating: 0, count: count)
        agreeing.update(repeating: 0, count: count)
        for t in 0..<terms {
            let block = blocks + t * stride
            if election == .total {
                for j in 0..<count { vote[j] += block[j] }
            } else {
                for j in 0..<count { vote[j] += signum(block[j]) }
            }
        }
        // The elected sign: +1 where the vote is ≥ 0 (torch.where(sign_magnitude >= 0, 1, -1)).
        for j in 0..<count { vote[j] = vote[j] >= 0 ? 1 : -1 }
        for t in 0..<terms {
            let block = blocks + t * stride
            for j in 0..<count {
                let value = block[j]
                // value · sign > 0 exactly when the value is non-zero and has the elected sign.
                let agrees = value * vote[j] > 0
                target[j] += agrees ? value : 0
                agreeing[j] += agrees ? 1 : 0
            }
        }
        for j in 0..<count { target[j] /= max(agreeing[j], 1) }
    }

    @inline(__always)
    private static func signum(_ value: Float) -> Float { (value > 0 ? 1 : 0) - (value < 0 ? 1 : 0) }
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

    func apply(term: Int, block: UnsafeMutableBufferPointer<Float>, firstIndex: Int, equalSeen: inout Int) {
        switch self {
        case .none: break
        case .magnitude(let cuts): TaskVectors.applyCut(cuts[term], to: block, equalSeen: &equalSeen)
        case .random(let keys, let density):
            TaskVectors.applyRandomDrop(key: keys[term], density: density, firstIndex: firstIndex, to: block)
        }
    }
}
