import AdapterIO

extension ModulePlan {
    /// Reads every source's factors with `read` (a TensorRef → Float32 loader) into a `ModuleInput`:
    /// A as [r, in] and B as [out, r] whatever the stored layout.
    public func loadInput(read: (TensorRef) throws -> [Float]) throws -> ModuleInput {
        let terms = try sources.map { source -> LoraTerm in
            let info = source.module
            let a = try FactorLayout.rowsByColumns(read(info.a), ref: info.a, rows: info.rank, cols: info.inFeatures,
                                                    transposedAllowed: info.fanInFanOut, module: name, factor: "lora_A")
            let b = try FactorLayout.rowsByColumns(read(info.b), ref: info.b, rows: info.outFeatures, cols: info.rank,
                                                    transposedAllowed: info.fanInFanOut, module: name, factor: "lora_B")
            return LoraTerm(coefficient: source.coefficient, rank: info.rank, a: a, b: b)
        }
        return ModuleInput(name: name, outFeatures: outFeatures, inFeatures: inFeatures, terms: terms)
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
        var result = [Float](repeating: 0, count: values.count)
        for i in 0..<cols { for j in 0..<rows { result[j * cols + i] = values[i * rows + j] } }
        return result
    }
}
