/// One adapter's contribution to a module: `coefficient · B · A`.
public struct LoraTerm: Sendable {
    /// `c_i = w_i · s_i`: the (normalised) merge weight times the adapter's PEFT scaling.
    public var coefficient: Double
    public var rank: Int
    /// Row-major [rank, inFeatures].
    public var a: [Float]
    /// Row-major [outFeatures, rank].
    public var b: [Float]

    public init(coefficient: Double, rank: Int, a: [Float], b: [Float]) {
        self.coefficient = coefficient
        self.rank = rank
        self.a = a
        self.b = b
    }
}

/// Everything a merge method needs for one module, already in Float32 and in memory.
/// Terms are in job order (the order of the adapters in the job file); the order is part of the
/// deterministic summation order.
public struct ModuleInput: Sendable {
    public var name: String
    public var outFeatures: Int
    public var inFeatures: Int
    public var terms: [LoraTerm]

    public init(name: String, outFeatures: Int, inFeatures: Int, terms: [LoraTerm]) {
        self.name = name
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.terms = terms
    }

    /// Σ r_i.
    public var totalRank: Int { terms.reduce(0) { $0 + $1.rank } }
}
