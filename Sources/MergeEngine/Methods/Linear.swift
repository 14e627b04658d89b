/// `linear` (PEFT `combination_type="linear"`, LoraHub): averages the factors themselves,
/// `A' = Σ sign(c_i) sqrt|c_i| A_i`, `B' = Σ sqrt|c_i| B_i`. Not the weighted sum of updates (it has cross
/// terms); kept for parity with PEFT and LoraHub. Needs every input at the same rank.
enum LinearMerge {
    static func merge(_ input: ModuleInput) throws -> ModuleResult {
        try input.checkShapes()
        guard let rank = input.terms.first?.rank else {
            throw MergeError("module \(input.name): no adapter has this module")
        }
        if let other = input.terms.first(where: { $0.rank != rank }) {
            throw MergeError("module \(input.name): linear needs equal ranks, found \(rank) and \(other.rank) (use cat, svd or lego)")
        }
        let out = input.outFeatures, inFeatures = input.inFeatures
        var b = [Float](repeating: 0, count: out * rank)
        var a = [Float](repeating: 0, count: rank * inFeatures)
        for term in input.terms {
            // METHODS.md puts the sign on A here (PEFT would take the square root of a negative number).
            let (signed, magnitude) = CoefficientFolding.split(term.coefficient)
            for index in 0..<b.count { b[index] += magnitude * term.b[index] }
            for index in 0..<a.count { a[index] += signed * term.a[index] }
        }
        return ModuleResult(name: input.name, rank: rank, outFeatures: out, inFeatures: inFeatures, b: b, a: a,
                            stats: ModuleStats(relativeError: 0))
    }
}
