import Kernels

/// Fills the quality figures of `merge-report.json` for any method's result: the relative error against the
/// exact weighted sum T and the Eckart–Young floor at the result's rank, by the cheapest exact route and never
/// forming T whole (`StackedProduct.quality`: QR of the stacked factors while the stacked rank R is small, else
/// one dense pass in row blocks, linear in R, with the floor from T's top-k spectrum). No stacked-rank cap.
/// What the method already knows is not recomputed: exact methods (cat, lego with one cluster per unit) cost
/// nothing; svd on an exact route has error = floor (Eckart–Young); svd on the subspace route needs one dense
/// pass for ‖T‖ and its error. `minimal` (`report: minimal`) skips all of it.
enum ModuleQuality {
    static func fillStats(_ result: inout ModuleResult, input: ModuleInput, minimal: Bool = false,
                          seed: UInt64 = 0) throws {
        guard result.b.count == result.outFeatures * result.rank, result.a.count == result.rank * result.inFeatures,
              result.outFeatures == input.outFeatures, result.inFeatures == input.inFeatures else {
            throw MergeError("module \(input.name): merged factors have shapes B \(result.b.count), A \(result.a.count) "
                             + "that do not match rank \(result.rank) and [\(input.outFeatures), \(input.inFeatures)]")
        }
        if case .exact = result.knownQuality {
            result.stats.relativeError = 0
            result.stats.svdFloor = 0
            return
        }
        if minimal {
            result.stats.qualityOmitted = true
            return
        }
        if case .truncation(_, let norm?) = result.knownQuality, let floor = result.stats.svdFloor {
            // Exact route: the truncation is the Eckart–Young one, whose error is the floor.
            result.stats.relativeError = norm > 0 ? floor : 0
            return
        }
        let target = try input.stackedTarget()
        guard target.rank > 0 else {
            // T = 0: the error is reported relative to nothing, as 0 (the approximation of zero by an exact zero).
            result.stats.relativeError = 0
            result.stats.svdFloor = 0
            return
        }
        let product = try StackedProduct(leftColumns: target.bColumns, right: target.a, rows: input.outFeatures,
                                         inner: target.rank, cols: input.inFeatures)
        if case .truncation(let values, nil) = result.knownQuality {
            let norms = product.denseNorms(approximationLeft: result.b, approximationRight: result.a, rank: result.rank)
            result.stats.relativeError = norms.target > 0 ? norms.difference / norms.target : 0
            result.stats.svdFloor = StackedProduct.floor(
                norm: norms.target, values: values,
                complete: result.rank >= min(input.outFeatures, input.inFeatures, target.rank))
            return
        }
        let wantFloor = result.stats.svdFloor == nil
        let quality = try product.quality(approximationLeft: result.b, approximationRight: result.a, rank: result.rank,
                                          spectrumRank: wantFloor ? result.rank : nil, seed: seed)
        result.stats.relativeError = quality.relativeError
        if wantFloor { result.stats.svdFloor = quality.floor }
    }
}

/// The stacked target factors `T = Bc · Ac`: Bc = [c_1 B_1, …] [out, R], Ac = [A_1; …] [R, in].
struct StackedTarget {
    var rank: Int
    /// Bc column-major (column j = c · b_j contiguous), i.e. row-major [rank, out]: the layout QR wants.
    var bColumns: [Float]
    /// Row-major [rank, in].
    var a: [Float]
}

extension ModuleInput {
    /// The terms, after checking every factor has the shape its rank says and every coefficient is finite.
    func factorTerms() throws -> [FactorTerm] {
        try terms.enumerated().map { index, term in
            guard term.rank >= 0, term.a.count == term.rank * inFeatures, term.b.count == outFeatures * term.rank else {
                throw MergeError("module \(name): term \(index) has rank \(term.rank) but A has \(term.a.count) and "
                                 + "B \(term.b.count) values (expected [\(term.rank), \(inFeatures)] and "
                                 + "[\(outFeatures), \(term.rank)])")
            }
            guard term.coefficient.isFinite else {
                throw MergeError("module \(name): term \(index) has a non-finite coefficient \(term.coefficient)")
            }
            return term
        }
    }

    /// Stacks the terms in job order (the order is part of the deterministic summation order).
    func stackedTarget() throws -> StackedTarget {
        let factors = try factorTerms()
        let total = factors.reduce(0) { $0 + $1.rank }
        var columns = [Float](repeating: 0, count: outFeatures * total)
        var a: [Float] = []
        a.reserveCapacity(total * inFeatures)
        columns.withUnsafeMutableBufferPointer { stacked in
            guard let stacked = stacked.baseAddress else { return }
            var column = 0
            for term in factors {
                term.b.withUnsafeBufferPointer { source in
                    guard let source = source.baseAddress else { return }
                    for j in 0..<term.rank {
                        let destination = stacked + (column + j) * outFeatures
                        BLAS.copy(outFeatures, x: source + j, strideX: term.rank, y: destination)
                        BLAS.scal(outFeatures, alpha: Float(term.coefficient), x: destination)
                    }
                }
                column += term.rank
            }
        }
        for term in factors { a += term.a }
        return StackedTarget(rank: total, bColumns: columns, a: a)
    }
}

extension ModuleResult {
    /// A rank-1 all-zero result for modules whose target is exactly zero (PEFT cannot load rank 0).
    static func zero(for input: ModuleInput, stats: ModuleStats = ModuleStats(relativeError: 0)) -> ModuleResult {
        ModuleResult(name: input.name, rank: 1, outFeatures: input.outFeatures, inFeatures: input.inFeatures,
                     b: [Float](repeating: 0, count: input.outFeatures), a: [Float](repeating: 0, count: input.inFeatures),
                     stats: stats)
    }
}
