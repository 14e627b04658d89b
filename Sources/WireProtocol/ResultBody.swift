import MergeEngine

/// The bytes of a task's result, as the concatenated `ResultChunk` payloads carry them:
///
///     B'  [out_features, k]  Float32, little-endian, row-major
///     A'  [k, in_features]   Float32, little-endian, row-major
///
/// with no header: k is `TaskDone.out_rank`, out/in are the Task's `out_features`/`in_features`, so the body is
/// exactly 4·k·(out + in) bytes. Every coefficient is already folded into the factors (output scaling 1).
/// Stats travel separately, as JSON in `TaskDone.stats_json`.
public enum ResultBody {
    /// Serialises `result`'s factors (B' then A').
    public static func encode(_ result: ModuleResult) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4 * (result.b.count + result.a.count))
        FloatBytes.appendLittleEndian(result.b, to: &bytes)
        FloatBytes.appendLittleEndian(result.a, to: &bytes)
        return bytes
    }

    /// Reads a body back, checking its length against the announced shapes (the numbers come from the wire).
    public static func decode(_ bytes: [UInt8], name: String, outFeatures: Int, inFeatures: Int, rank: Int,
                              stats: ModuleStats) throws -> ModuleResult {
        guard outFeatures >= 0, inFeatures >= 0, rank >= 0,
              let bCount = checkedProduct(outFeatures, rank), let aCount = checkedProduct(rank, inFeatures),
              case let (elements, overflow) = bCount.addingReportingOverflow(aCount), !overflow,
              let expected = checkedProduct(4, elements) else {
            throw WireError(.tooLarge, "result of \(name): shape out \(outFeatures), in \(inFeatures), rank \(rank) is invalid")
        }
        guard bytes.count == expected else {
            throw WireError(.inconsistent, "result of \(name) has \(bytes.count) bytes; rank \(rank) × (\(outFeatures) + \(inFeatures)) Float32 needs \(expected)")
        }
        let b = FloatBytes.floatsLittleEndian(bytes[0..<(4 * bCount)])
        let a = FloatBytes.floatsLittleEndian(bytes[(4 * bCount)...])
        return ModuleResult(name: name, rank: rank, outFeatures: outFeatures, inFeatures: inFeatures, b: b, a: a, stats: stats)
    }

    private static func checkedProduct(_ x: Int, _ y: Int) -> Int? {
        let (product, overflow) = x.multipliedReportingOverflow(by: y)
        return overflow ? nil : product
    }
}

/// Float32 ⇄ little-endian bytes (a plain copy on little-endian hosts).
public enum FloatBytes {
    public static func appendLittleEndian(_ values: [Float], to bytes: inout [UInt8]) {
        #if _endian(little)
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        #endif
    }

    /// `bytes.count` must be a multiple of 4 (callers check lengths first); a trailing partial value is ignored.
    public static func floatsLittleEndian(_ bytes: ArraySlice<UInt8>) -> [Float] {
        let count = bytes.count / 4
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                #if _endian(little)
                if count > 0, let source = raw.baseAddress, let target = buffer.baseAddress {
                    UnsafeMutableRawPointer(target).copyMemory(from: source, byteCount: 4 * count)
                }
                #else
                for index in 0..<count {
                    let bits = raw.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)
                    buffer[index] = Float(bitPattern: UInt32(littleEndian: bits))
                }
                #endif
            }
            initialized = count
        }
    }
}
