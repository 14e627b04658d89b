import AdapterIO
import Foundation
import MergeEngine

/// Canonical JSON of a `MergeSpec` (sorted keys), the form `Task.options_json` carries: equal specs give equal
/// bytes, so tasks, hashes and checkpoints never depend on dictionary order.
public enum SpecJSON {
    public static func encode(_ spec: MergeSpec) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(spec), as: UTF8.self)
    }

    public static func decode(_ json: String) throws -> MergeSpec {
        try JSONDecoder().decode(MergeSpec.self, from: Data(json.utf8))
    }
}

extension Wire.Task {
    /// The task for one module of a plan (coordinator side). Paths are deduplicated in first-use order; each
    /// source becomes an `InputRef` with its factors' absolute byte ranges. `fan_in_fan_out` on the wire means
    /// "stored transposed" (A as [in, r], B as [r, out]), which is what a worker needs to lay the bytes out; PEFT
    /// stores even fan-in-fan-out adapters' factors untransposed, so the flag follows the stored shapes.
    /// Throws `WireError` if a source's factors live in two files (the protocol has one path per input) or if
    /// stored shapes fit neither layout.
    public init(module: ModulePlan, spec: MergeSpec, jobID: String, taskID: UInt64, attempt: UInt32,
                inputMode: Wire.InputMode, resultChunkBytes: Int = Chunking.defaultChunkBytes) throws {
        var paths: [String] = []
        var pathIndex: [String: UInt32] = [:]
        var inputs: [Wire.InputRef] = []
        for source in module.sources {
            let info = source.module
            guard info.a.path == info.b.path else {
                throw WireError(.inconsistent, "module \(module.name): lora_A in \(info.a.path) but lora_B in \(info.b.path); one file per adapter is required")
            }
            let index: UInt32
            if let known = pathIndex[info.a.path] {
                index = known
            } else {
                index = UInt32(paths.count)
                pathIndex[info.a.path] = index
                paths.append(info.a.path)
            }
            inputs.append(Wire.InputRef(
                pathIndex: index, coefficient: source.coefficient, rank: UInt32(clamping: info.rank),
                aDType: info.a.dtype, aOffset: UInt64(clamping: info.a.byteOffset), aLength: UInt64(clamping: info.a.byteCount),
                bDType: info.b.dtype, bOffset: UInt64(clamping: info.b.byteOffset), bLength: UInt64(clamping: info.b.byteCount),
                fanInFanOut: try Self.storedTransposed(info, module: module.name)))
        }
        self.init(jobID: jobID, taskID: taskID, attempt: attempt, kind: .mergeModule, module: module.name,
                  method: spec.method.rawValue, optionsJSON: try SpecJSON.encode(spec), rank: UInt32(clamping: spec.rank),
                  seed: module.seed, outFeatures: UInt32(clamping: module.outFeatures),
                  inFeatures: UInt32(clamping: module.inFeatures), inputMode: inputMode, paths: paths, inputs: inputs,
                  resultChunkBytes: UInt32(clamping: resultChunkBytes))
    }

    /// Whether both factors are stored transposed. Logical shapes win when they match (square cases included).
    private static func storedTransposed(_ info: LoraModuleInfo, module: String) throws -> Bool {
        let aLogical = [info.rank, info.inFeatures], bLogical = [info.outFeatures, info.rank]
        if info.a.shape == aLogical && info.b.shape == bLogical { return false }
        if info.fanInFanOut && info.a.shape == [info.inFeatures, info.rank] && info.b.shape == [info.rank, info.outFeatures] {
            return true
        }
        throw WireError(.inconsistent, "module \(module): stored shapes A \(info.a.shape), B \(info.b.shape) match neither [r, in]/[out, r] nor the transposed layout")
    }
}
