/// Errors of the merge engine: bad jobs and impossible merges. `description` is one line for the user.
public struct MergeError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The single entry point every runtime path uses (in-process, local workers, remote workers):
/// merge one module's input according to `spec`, deterministically from `seed`.
public enum ModuleMerger {
    public static func merge(_ input: ModuleInput, spec: MergeSpec, seed: UInt64) throws -> ModuleResult {
        // SKELETON: only cat is wired until the engine lands; it lets the runtime be built end to end.
        guard spec.method == .cat else { throw MergeError("method \(spec.method.rawValue) is not implemented yet") }
        let k = input.totalRank
        var b = [Float](repeating: 0, count: input.outFeatures * k)
        var a = [Float](repeating: 0, count: k * input.inFeatures)
        var offset = 0
        for term in input.terms {
            let root = Float((abs(term.coefficient)).squareRoot())
            let sign: Float = term.coefficient < 0 ? -1 : 1
            for row in 0..<input.outFeatures {
                for j in 0..<term.rank { b[row * k + offset + j] = sign * root * term.b[row * term.rank + j] }
            }
            for j in 0..<term.rank {
                for col in 0..<input.inFeatures { a[(offset + j) * input.inFeatures + col] = root * term.a[j * input.inFeatures + col] }
            }
            offset += term.rank
        }
        return ModuleResult(name: input.name, rank: k, outFeatures: input.outFeatures, inFeatures: input.inFeatures,
                            b: b, a: a, stats: ModuleStats(relativeError: 0))
    }
}
