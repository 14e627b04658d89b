import Kernels

/// The stacked target factors `T = Bc · Ac`: Bc = [c_1 B_1, …] [out, R], Ac = [A_1; …] [R, in].
/// Built once per module, term by term from a `ModuleTermSource`, so a worker holds these factors plus one
/// adapter's Float32 factors, never the whole loaded input next to them (svd at 960 adapters of a 14336×4096
/// module: 1.13 GB of stacked factors instead of 2.26 GB).
struct StackedTarget {
    var rank: Int
    /// Bc column-major (column j = c · b_j contiguous), i.e. row-major [rank, out]: the layout QR wants.
    var bColumns: [Float]
    /// Row-major [rank, in].
    var a: [Float]

    /// The product these factors define.
    func product(outFeatures: Int, inFeatures: Int) throws -> StackedProduct {
        try StackedProduct(leftColumns: bColumns, right: a, rows: outFeatures, inner: rank, cols: inFeatures)
    }
}

extension ModuleTermSource {
    /// Stacks the terms in job order (the order is part of the deterministic summation order), loading and
    /// checking one term at a time (`checkedTerm`). Same bytes as stacking a loaded `ModuleInput`.
    func stackedTarget() throws -> StackedTarget {
        if let index = ranks.firstIndex(where: { $0 < 0 }) {
            _ = try checkedTerm(index)  // the full message (factor sizes) when the term's shapes say why
            throw MergeError("module \(name): term \(index) has rank \(ranks[index])")
        }
        let total = totalRank
        var columns = [Float](repeating: 0, count: outFeatures * total)
        var a = [Float](repeating: 0, count: total * inFeatures)
        var column = 0
        for index in 0..<termCount {
            let term = try checkedTerm(index)
            columns.withUnsafeMutableBufferPointer { stacked in
                term.b.withUnsafeBufferPointer { source in
                    guard let stacked = stacked.baseAddress, let source = source.baseAddress else { return }
                    for j in 0..<term.rank {
                        let destination = stacked + (column + j) * outFeatures
                        BLAS.copy(outFeatures, x: source + j, strideX: term.rank, y: destination)
                        BLAS.scal(outFeatures, alpha: Float(term.coefficient), x: destination)
                    }
                }
            }
            a.withUnsafeMutableBufferPointer { stacked in
                term.a.withUnsafeBufferPointer { source in
                    guard let stacked = stacked.baseAddress, let source = source.baseAddress else { return }
                    (stacked + column * inFeatures).update(from: source, count: term.rank * inFeatures)
                }
            }
            column += term.rank
        }
        return StackedTarget(rank: total, bColumns: columns, a: a)
    }
}

extension ModuleInput {
    /// The terms, after checking every factor has the shape its rank says and every coefficient is finite.
    func factorTerms() throws -> [FactorTerm] {
        let source = ModuleTermSource(self)
        return try terms.indices.map { index in
            let term = terms[index]
            guard term.rank >= 0 else {
                throw MergeError("module \(name): term \(index) has rank \(term.rank) but A has \(term.a.count) and "
                                 + "B \(term.b.count) values (expected [\(term.rank), \(inFeatures)] and "
                                 + "[\(outFeatures), \(term.rank)])")
            }
            return try source.checkedTerm(index)
        }
    }

    /// Stacks the terms in job order (see `ModuleTermSource.stackedTarget()`).
    func stackedTarget() throws -> StackedTarget { try ModuleTermSource(self).stackedTarget() }
}
