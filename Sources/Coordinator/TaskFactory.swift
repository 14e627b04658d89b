import AdapterIO
import MergeEngine
import WireProtocol

/// Builds the wire `Task` for one module of a plan: the spec as canonical JSON, the module's seed, and for every
/// source its file (deduplicated into `paths`) and the byte ranges of its two factors.
enum TaskFactory {
    static func task(for module: ModulePlan, plan: MergePlan, optionsJSON: String, jobID: String, taskID: UInt64,
                     attempt: UInt32, inputMode: Wire.InputMode, resultChunkBytes: Int) -> Wire.Task {
        var paths: [String] = []
        var pathIndex: [String: UInt32] = [:]
        let inputs = module.sources.map { source -> Wire.InputRef in
            let info = source.module
            let index: UInt32
            if let known = pathIndex[info.a.path] {
                index = known
            } else {
                index = UInt32(paths.count)
                pathIndex[info.a.path] = index
                paths.append(info.a.path)
            }
            return Wire.InputRef(pathIndex: index, coefficient: source.coefficient, rank: UInt32(info.rank),
                                 aDType: info.a.dtype, aOffset: UInt64(info.a.byteOffset), aLength: UInt64(info.a.byteCount),
                                 bDType: info.b.dtype, bOffset: UInt64(info.b.byteOffset), bLength: UInt64(info.b.byteCount),
                                 fanInFanOut: info.fanInFanOut)
        }
        return Wire.Task(jobID: jobID, taskID: taskID, attempt: attempt, module: module.name,
                         method: plan.spec.method.rawValue, optionsJSON: optionsJSON, rank: UInt32(plan.spec.rank),
                         seed: module.seed, outFeatures: UInt32(module.outFeatures), inFeatures: UInt32(module.inFeatures),
                         inputMode: inputMode, paths: inputMode == .shared ? paths : [], inputs: inputs,
                         resultChunkBytes: UInt32(resultChunkBytes))
    }
}
