import AdapterIO

extension ModulePlan {
    /// Reads every source's factors from disk by their `TensorRef`s (no header parsing: workers in shared mode
    /// get only the plan).
    public func loadInput() throws -> ModuleInput {
        try loadInput { try TensorReader.readFloats($0) }
    }

    /// Reads every source's factors with `read` (a TensorRef → Float32 loader) into a `ModuleInput`:
    /// A as [r, in] and B as [out, r] whatever the stored layout.
    public func loadInput(read: (TensorRef) throws -> [Float]) throws -> ModuleInput {
        let terms = try sources.indices.map { try loadTerm($0, read: read) }
        return ModuleInput(name: name, outFeatures: outFeatures, inFeatures: inFeatures, terms: terms)
    }

    /// Reads source `index`'s factors with `read` into one term (A as [r, in], B as [out, r]).
    func loadTerm(_ index: Int, read: (TensorRef) throws -> [Float]) throws -> LoraTerm {
        let source = sources[index]
        let info = source.module
        let a = try FactorLayout.rowsByColumns(read(info.a), ref: info.a, rows: info.rank, cols: info.inFeatures,
                                                transposedAllowed: info.fanInFanOut, module: name, factor: "lora_A")
        let b = try FactorLayout.rowsByColumns(read(info.b), ref: info.b, rows: info.outFeatures, cols: info.rank,
                                                transposedAllowed: info.fanInFanOut, module: name, factor: "lora_B")
        return LoraTerm(coefficient: source.coefficient, rank: info.rank, a: a, b: b)
    }
}

/// Puts a factor into the logical row-major layout the methods expect.
enum FactorLayout {
    /// `values` as stored (shape `ref.shape`) → row-major [rows, cols]. A stored [cols, rows] factor is accepted
    /// (and transposed) only for `fan_in_fan_out` adapters.
    static func rowsByColumns(_ values: [Float], ref: TensorRef, rows: Int, cols: Int, transposedAllowed: Bool,
                              module: String, factor: String) throws -> [Float] {
        guard values.count == rows * cols else {
            throw MergeError("\(ref.path): \(module).\(factor): \(values.count) values, expected [\(rows), \(cols)]")
        }
        // PEFT stores lora_A/lora_B as nn.Linear weights even with fan_in_fan_out; the logical shape wins.
        if ref.shape == [rows, cols] { return values }
        guard transposedAllowed, ref.shape == [cols, rows] else {
            throw MergeError("\(ref.path): \(module).\(factor): stored shape \(ref.shape), expected [\(rows), \(cols)]")
        }
        return transpose(values, rows: cols, cols: rows)
    }

    /// Row-major [rows, cols] → row-major [cols, rows].
    static func transpose(_ values: [Float], rows: Int, cols: Int) -> [Float] {
        var result = [Float](repeating: 0, count: values.count)
        for i in 0..<rows { for j in 0..<cols { result[j * rows + i] = values[i * cols + j] } }
        return result
    }
}

/// One adapter's factors for one module as stored bytes, as the coordinator sends them inline to workers.
public struct InlineTerm: Sendable {
    public var coefficient: Double
    public var rank: Int
    public var aBytes: [UInt8]
    public var aDType: DType
    public var bBytes: [UInt8]
    public var bDType: DType
    /// The factors are stored transposed (A as [in, r], B as [r, out]).
    public var transposed: Bool

    public init(coefficient: Double, rank: Int, aBytes: [UInt8], aDType: DType, bBytes: [UInt8], bDType: DType,
                transposed: Bool = false) {
        self.coefficient = coefficient
        self.rank = rank
        self.aBytes = aBytes
        self.aDType = aDType
        self.bBytes = bBytes
        self.bDType = bDType
        self.transposed = transposed
    }
}

extension ModuleInput {
    /// Decodes inline factors into a `ModuleInput` (A [r, in], B [out, r]); `source` names the sender in errors.
    public static func decode(name: String, outFeatures: Int, inFeatures: Int, terms: [InlineTerm],
                              source: String = "inline") throws -> ModuleInput {
        let decoded = try terms.enumerated().map { index, term in
            try decode(term, index: index, name: name, outFeatures: outFeatures, inFeatures: inFeatures, source: source)
        }
        return ModuleInput(name: name, outFeatures: outFeatures, inFeatures: inFeatures, terms: decoded)
    }

    /// Decodes one inline term (term `index` of module `name`).
    static func decode(_ term: InlineTerm, index: Int, name: String, outFeatures: Int, inFeatures: Int,
                       source: String) throws -> LoraTerm {
        let aShape = term.transposed ? [inFeatures, term.rank] : [term.rank, inFeatures]
        let bShape = term.transposed ? [term.rank, outFeatures] : [outFeatures, term.rank]
        let a = try term.aBytes.withUnsafeBytes {
            try TensorReader.decodeInline($0, dtype: term.aDType, shape: aShape, tensor: "\(name) term \(index) lora_A", source: source)
        }
        let b = try term.bBytes.withUnsafeBytes {
            try TensorReader.decodeInline($0, dtype: term.bDType, shape: bShape, tensor: "\(name) term \(index) lora_B", source: source)
        }
        return LoraTerm(coefficient: term.coefficient, rank: term.rank,
                        a: term.transposed ? FactorLayout.transpose(a, rows: inFeatures, cols: term.rank) : a,
                        b: term.transposed ? FactorLayout.transpose(b, rows: term.rank, cols: outFeatures) : b)
    }
}

extension ModuleInput {
    /// Checks that every term's factors hold the values their rank and the module's shape say, so methods can index
    /// without trapping on inputs that came over the wire.
    func checkShapes() throws {
        guard outFeatures >= 1, inFeatures >= 1 else {
            throw MergeError("module \(name): shape [\(outFeatures), \(inFeatures)] is empty")
        }
        for (index, term) in terms.enumerated() {
            guard term.rank >= 0, term.a.count == term.rank * inFeatures, term.b.count == outFeatures * term.rank else {
                throw MergeError("module \(name): term \(index) of rank \(term.rank) has \(term.a.count) values in A and "
                    + "\(term.b.count) in B (expected [\(term.rank), \(inFeatures)] and [\(outFeatures), \(term.rank)])")
            }
            guard term.coefficient.isFinite else {
                throw MergeError("module \(name): term \(index) has a non-finite coefficient \(term.coefficient)")
            }
        }
    }
}
