/// `cat` (LoRA Soups CAT, PEFT `combination_type="cat"`): stack every adapter's factors with the coefficient
/// folded in. Exact: `B'A' = Σ c_i B_i A_i`, rank Σ r_i. Streams: each term is loaded, copied scaled into its
/// columns of B' and rows of A', and released before the next (no reconstruction, no error to measure).
enum CatMerge {
    static func merge(_ input: ModuleInput) throws -> ModuleResult {
        try input.checkShapes()
        return try merge(ModuleTermSource(input))
    }

    static func merge(_ source: ModuleTermSource) throws -> ModuleResult {
        try source.shapeOnly.checkShapes()
        let out = source.outFeatures, inFeatures = source.inFeatures, total = source.totalRank
        var b = [Float](repeating: 0, count: out * total)
        var a = [Float](repeating: 0, count: total * inFeatures)
        var offset = 0
        for index in 0..<source.termCount {
            let term = try source.checkedTerm(index)
            let (scaleB, scaleA) = CoefficientFolding.split(term.coefficient)
            let rank = term.rank
            b.withUnsafeMutableBufferPointer { b in
                term.b.withUnsafeBufferPointer { source in
                    guard let b = b.baseAddress, let source = source.baseAddress else { return }
                    for i in 0..<out {
                        let row = b + i * total + offset, from = source + i * rank
                        for j in 0..<rank { row[j] = scaleB * from[j] }
                    }
                }
            }
            a.withUnsafeMutableBufferPointer { a in
                term.a.withUnsafeBufferPointer { source in
                    guard let a = a.baseAddress, let source = source.baseAddress else { return }
                    let rows = a + offset * inFeatures
                    for index in 0..<(rank * inFeatures) { rows[index] = scaleA * source[index] }
                }
            }
            offset += rank
        }
        var result = ModuleResult(name: source.name, rank: total, outFeatures: out, inFeatures: inFeatures, b: b, a: a,
                                  stats: ModuleStats(relativeError: 0, svdFloor: 0))
        // Exact by construction: no error to measure, and rank Σ r_i reaches T's rank (floor 0).
        result.knownQuality = .exact
        return result
    }
}
