/// One weighted low-rank term `coefficient · B · A` in the layout PEFT stores: B row-major [out, rank],
/// A row-major [rank, in]. Kernels' own copy of the engine's term type, so Kernels does not import MergeEngine.
public struct FactorTerm: Sendable {
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

/// How a rank-one unit `c · b aᵀ` is written as one vector `x = [x_B ; x_A]` with `x_B x_Aᵀ = c · b aᵀ`.
public enum UnitGauge: Sendable {
    /// `x = sqrt|g| [±b/‖b‖ ; a/‖a‖]`, g = c‖b‖‖a‖, sign on the B part: both halves have equal norm.
    case balanced
    /// `x = [sign(c) sqrt|c| b ; sqrt|c| a]`: the factors as stored, with the coefficient folded the way the
    /// output folds it (sqrt into each factor, sign on B), so the B/A scale ambiguity is left as trained.
    case raw
}

/// Which rank-one decomposition of each term `c · B · A` the units come from.
public enum UnitBasis: Sendable {
    /// The stored columns of B and rows of A: unit j = `c b_j a_jᵀ`. Only defined up to the term's gauge
    /// `B A = (B R)(R⁻¹ A)`, so two adapters that learned the same update need not share units.
    case raw
    /// The term's own SVD `c B A = Σ_j σ_j u_j v_jᵀ` (`CanonicalUnits`: r×r Grams of B and A, SVD of the r×r
    /// core): the canonical form, the same for every R. Directions with σ ≤ 1e-6 σ_1 are dropped (they carry no
    /// update).
    case svd
}

/// The pooled rank-one units (LoRA-LEGO's minimal semantic units) of a module, one per row.
public struct RankOneUnits: Sendable {
    public let outFeatures: Int
    public let inFeatures: Int
    /// Number of units (rows).
    public let count: Int
    /// Row-major [count, outFeatures + inFeatures]; row i is `[x_B ; x_A]`.
    public var vectors: [Float] { didSet { norms = nil } }
    /// The rows' norms, computed as each term's rows were written (while in cache); nil once `vectors` is changed.
    public private(set) var norms: UnitNorms? = nil
    /// (term index, rank index) each row came from, in extraction order.
    public let sources: [(term: Int, rank: Int)]

    public var dimension: Int { outFeatures + inFeatures }

    /// Extracts every unit of every term in term order then rank order. Units with ‖b‖ = 0, ‖a‖ = 0 or c = 0
    /// contribute nothing to T and are dropped, so `Σ_i x_B,i x_A,iᵀ = Σ c B A` holds exactly for the rest.
    public static func extract(terms: [FactorTerm], outFeatures: Int, inFeatures: Int,
                               gauge: UnitGauge, basis: UnitBasis = .raw) throws -> RankOneUnits {
        for (t, term) in terms.enumerated() { try checkShape(term, index: t, outFeatures: outFeatures, inFeatures: inFeatures) }
        return try extract(ranks: terms.map(\.rank), outFeatures: outFeatures, inFeatures: inFeatures, gauge: gauge,
                           basis: basis) { terms[$0] }
    }

    /// The same units, streamed: `term(t)` is asked for each term once, in order, and only that term's factors
    /// (plus its canonical form) are held besides the unit matrix, whose rows are written as each term arrives.
    /// `ranks` (the terms' ranks, known before any is loaded) bound the matrix; rows of dropped units are never
    /// touched, so they cost address space only. Same bytes as extracting from the terms held in memory.
    public static func extract(ranks: [Int], outFeatures: Int, inFeatures: Int, gauge: UnitGauge,
                               basis: UnitBasis = .raw, term load: (Int) throws -> FactorTerm) throws -> RankOneUnits {
        guard outFeatures >= 0, inFeatures >= 0, ranks.allSatisfy({ $0 >= 0 }) else {
            throw KernelShapeError(kernel: "RankOneUnits", problem: "negative rank or shape in ranks \(ranks) for "
                                   + "[\(outFeatures), \(inFeatures)]")
        }
        let dim = outFeatures + inFeatures
        let bound = ranks.reduce(0, +)
        var sources: [(term: Int, rank: Int)] = []
        var failure: (any Error)?
        var scratch = CanonicalUnits.Scratch()
        var norms = UnitNorms()
        let vectors = [Float](unsafeUninitializedCapacity: bound * dim) { buffer, initialized in
            var rows = 0
            defer { initialized = rows * dim }
            guard let x = buffer.baseAddress else { return }
            ProcessMemory.adviseHugePages(x, byteCount: buffer.count * MemoryLayout<Float>.stride)
            do {
                for t in ranks.indices {
                    let term = try load(t)
                    try checkShape(term, index: t, outFeatures: outFeatures, inFeatures: inFeatures)
                    guard term.rank == ranks[t] else {
                        throw KernelShapeError(kernel: "RankOneUnits", problem: "term \(t) has rank \(term.rank), "
                                               + "announced \(ranks[t])")
                    }
                    guard term.coefficient != 0, term.rank > 0 else { continue }
                    guard rows + term.rank <= bound else {
                        throw KernelShapeError(kernel: "RankOneUnits", problem: "term \(t): \(term.rank) units exceed "
                                               + "the \(bound) announced")
                    }
                    let first = rows
                    defer { norms.append(rows: x + first * dim, count: rows - first, dimension: dim) }
                    switch basis {
                    case .raw:
                        rows += appendUnits(of: term, index: t, outFeatures: outFeatures, inFeatures: inFeatures,
                                            gauge: gauge, into: x + rows * dim, sources: &sources)
                    case .svd:
                        // Rows t = [b'_t ; a'_t] of a term of coefficient 1 whose halves both have norm √σ_t: already
                        // in the balanced gauge, and in the raw one (√1 = 1), so no scaling pass.
                        let written = try CanonicalUnits.write(term, outFeatures: outFeatures, inFeatures: inFeatures,
                                                               into: x + rows * dim, scratch: &scratch)
                        for j in 0..<written { sources.append((t, j)) }
                        rows += written
                    }
                }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return RankOneUnits(outFeatures: outFeatures, inFeatures: inFeatures, count: sources.count, vectors: vectors,
                            norms: norms, sources: sources)
    }

    static func checkShape(_ term: FactorTerm, index t: Int, outFeatures: Int, inFeatures: Int) throws {
        guard term.rank >= 0, term.a.count == term.rank * inFeatures, term.b.count == outFeatures * term.rank else {
            throw KernelShapeError(kernel: "RankOneUnits", problem: "term \(t) of rank \(term.rank) has A \(term.a.count) "
                                   + "and B \(term.b.count) values for [\(outFeatures), \(inFeatures)]")
        }
    }

    /// Writes the kept units of one term as consecutive rows from `rows` on; returns how many were kept.
    private static func appendUnits(of term: FactorTerm, index t: Int, outFeatures: Int, inFeatures: Int,
                                    gauge: UnitGauge, into rows: UnsafeMutablePointer<Float>,
                                    sources: inout [(term: Int, rank: Int)]) -> Int {
        let r = term.rank, dim = outFeatures + inFeatures
        var kept = 0
        term.b.withUnsafeBufferPointer { b in
            term.a.withUnsafeBufferPointer { a in
                guard let b = b.baseAddress, let a = a.baseAddress else { return }
                for j in 0..<r {
                    let normB = Double(BLAS.nrm2(outFeatures, b + j, stride: r))
                    let normA = Double(BLAS.nrm2(inFeatures, a + j * inFeatures))
                    guard normB > 0, normA > 0, normB.isFinite, normA.isFinite else { continue }
                    let c = term.coefficient
                    let sign: Double = c < 0 ? -1 : 1
                    let scaleB: Float, scaleA: Float
                    switch gauge {
                    case .balanced:
                        let root = (abs(c) * normB * normA).squareRoot()
                        scaleB = Float(sign * root / normB)
                        scaleA = Float(root / normA)
                    case .raw:
                        let root = abs(c).squareRoot()
                        scaleB = Float(sign * root)
                        scaleA = Float(root)
                    }
                    let row = rows + kept * dim
                    BLAS.copy(outFeatures, x: b + j, strideX: r, y: row)
                    BLAS.copy(inFeatures, x: a + j * inFeatures, y: row + outFeatures)
                    BLAS.scal(outFeatures, alpha: scaleB, x: row)
                    BLAS.scal(inFeatures, alpha: scaleA, x: row + outFeatures)
                    sources.append((t, j))
                    kept += 1
                }
            }
        }
        return kept
    }
}
