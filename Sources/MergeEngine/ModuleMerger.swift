import Kernels

/// Errors of the merge engine: bad jobs and impossible merges. `description` is one line for the user.
public struct MergeError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The single entry point every runtime path uses (in-process, local workers, remote workers):
/// merge one module's input according to `spec`, deterministically from `seed`.
public enum ModuleMerger {
    public static func merge(_ input: ModuleInput, spec: MergeSpec, seed: UInt64) throws -> ModuleResult {
        // One BLAS thread: OpenBLAS's threaded gemv/gemm/LAPACK change bits with the thread count.
        try BLAS.singleThreaded { try mergeSingleThreaded(input, spec: spec, seed: seed) }
    }

    private static func mergeSingleThreaded(_ input: ModuleInput, spec: MergeSpec, seed: UInt64) throws -> ModuleResult {
        var result: ModuleResult
        switch spec.method {
        case .cat: result = try CatMerge.merge(input)
        case .linear: result = try LinearMerge.merge(input)
        case .svd: result = try SVDMerge.merge(input, rank: spec.rank, seed: seed, wantQuality: spec.report != .minimal)
        case .lego: result = try LegoMerge.merge(input, rank: spec.rank, options: spec.lego, seed: seed)
        case .ties, .dareTies, .dareLinear, .magnitudePrune:
            result = try TaskVectorMerge.merge(input, method: spec.method, rank: spec.rank, options: spec.prune, seed: seed)
        }
        try ModuleQuality.fillStats(&result, input: input, minimal: spec.report == .minimal, seed: seed)
        return result
    }
}
