import Kernels

/// One adapter's contribution to a module: `coefficient · B · A`, with `coefficient` = `c_i = w_i · s_i` (the
/// normalised merge weight times the adapter's PEFT scaling), A row-major [rank, in] and B row-major [out, rank].
/// The same type the kernels work on, so terms reach them without a copy.
public typealias LoraTerm = FactorTerm

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
