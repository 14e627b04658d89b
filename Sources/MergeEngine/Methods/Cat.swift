/// `cat` (LoRA Soups CAT, PEFT `combination_type="cat"`): stack every adapter's factors with the coefficient
/// folded in. Exact: `B'A' = Σ c_i B_i A_i`, rank Σ r_i.
enum CatMerge {
    static func merge(_ input: ModuleInput) throws -> ModuleResult {
        try input.checkShapes()
        let out = input.outFeatures, inFeatures = input.inFeatures, total = input.totalRank
        var b = [Float](repeating: 0, count: out * total)
        var a = [Float](repeating: 0, count: total * inFeatures)
        var offset = 0
        for term in input.terms {
            let (scaleB, scaleA) = CoefficientFolding.split(term.coefficient)
            for i in 0..<out {
                for j in 0..<term.rank { b[i * total + offset + j] = scaleB * term.b[i * term.rank + j] }
            }
            let base = offset * inFeatures
            for index in 0..<(term.rank * inFeatures) { a[base + index] = scaleA * term.a[index] }
            offset += term.rank
        }
        var result = ModuleResult(name: input.name, rank: total, outFeatures: out, inFeatures: inFeatures, b: b, a: a,
                                  stats: ModuleStats(relativeError: 0, svdFloor: 0))
        // Exact by construction: no error to measure, and rank Σ r_i reaches T's rank (floor 0).
        result.knownQuality = .exact
        return result
    }
}
