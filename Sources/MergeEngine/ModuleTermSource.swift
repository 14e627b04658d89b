import AdapterIO
import Kernels

/// One module's input terms, delivered one adapter at a time (read from its file, or decoded from inline bytes,
/// and converted to Float32 only when asked for), so a method that consumes the terms in order never holds every
/// adapter's Float32 factors at once: lego's units and svd's stacked factors are built term by term
/// (`ModuleTermStreaming`), and a worker's peak is what the method itself keeps plus one adapter's factors.
/// Methods that need every term at once (the task-vector family, `linear`, the quality figures) call `loadAll()`.
///
/// Terms come in job order; a term read twice gives the same values (the files are read-only inputs).
public struct ModuleTermSource: Sendable {
    public var name: String
    public var outFeatures: Int
    public var inFeatures: Int
    /// Rank of every term, in order (known from the plan or the task, before any factor is read).
    public var ranks: [Int]
    private let load: @Sendable (Int) throws -> LoraTerm

    public init(name: String, outFeatures: Int, inFeatures: Int, ranks: [Int],
                load: @escaping @Sendable (Int) throws -> LoraTerm) {
        self.name = name
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.ranks = ranks
        self.load = load
    }

    /// Terms already in memory (tests, benchmarks, the adaptive runtime): nothing is copied.
    public init(_ input: ModuleInput) {
        let terms = input.terms
        self.init(name: input.name, outFeatures: input.outFeatures, inFeatures: input.inFeatures,
                  ranks: terms.map(\.rank)) { terms[$0] }
    }

    public var termCount: Int { ranks.count }

    /// Σ r_i.
    public var totalRank: Int { ranks.reduce(0, +) }

    /// Term `index` in Float32, A [r, in] and B [out, r].
    public func term(_ index: Int) throws -> LoraTerm { try load(index) }

    /// Every term at once.
    public func loadAll() throws -> ModuleInput {
        ModuleInput(name: name, outFeatures: outFeatures, inFeatures: inFeatures,
                    terms: try (0..<termCount).map { try load($0) })
    }
}

extension ModulePlan {
    /// Reads each source's factors from its file when asked for (`TensorReader`: pread into a buffer of the
    /// stored bytes, then bf16/f16/f32 → f32), one adapter at a time.
    public func termSource() -> ModuleTermSource {
        let plan = self
        return ModuleTermSource(name: name, outFeatures: outFeatures, inFeatures: inFeatures,
                                ranks: sources.map(\.module.rank)) { index in
            try plan.loadTerm(index) { try TensorReader.readFloats($0) }
        }
    }
}

extension ModuleTermSource {
    /// Decodes inline factors (stored bytes as the coordinator sent them) one term at a time; `source` names the
    /// sender in errors.
    public static func inline(name: String, outFeatures: Int, inFeatures: Int, terms: [InlineTerm],
                              source: String = "inline") -> ModuleTermSource {
        ModuleTermSource(name: name, outFeatures: outFeatures, inFeatures: inFeatures, ranks: terms.map(\.rank)) { index in
            try ModuleInput.decode(terms[index], index: index, name: name, outFeatures: outFeatures,
                                   inFeatures: inFeatures, source: source)
        }
    }
}
