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
        try merge(ModuleTermSource(input), spec: spec, seed: seed)
    }

    /// Merges from a source that loads one term at a time: lego streams its units from it; the other methods load
    /// every term (they need them at once), as do the quality figures when they are measured (after lego's units
    /// are released).
    public static func merge(_ source: ModuleTermSource, spec: MergeSpec, seed: UInt64) throws -> ModuleResult {
        // One BLAS thread: OpenBLAS's threaded gemv/gemm/LAPACK change bits with the thread count.
        try BLAS.singleThreaded { try mergeSingleThreaded(source, spec: spec, seed: seed) }
    }

    private static func mergeSingleThreaded(_ source: ModuleTermSource, spec: MergeSpec, seed: UInt64) throws -> ModuleResult {
        // Methods that need every term at once load them inside their case, so the loaded input is released when
        // the method returns, before the quality figures stack the terms (from the source, one at a time).
        var result: ModuleResult
        switch spec.method {
        case .cat: result = try CatMerge.merge(source)
        case .linear: result = try LinearMerge.merge(try source.loadAll())
        case .svd: result = try SVDMerge.merge(source, rank: spec.rank, seed: seed, wantQuality: spec.report == .exact)
        case .lego: result = try LegoMerge.merge(source, rank: spec.rank, options: spec.lego, seed: seed)
        case .ties, .dareTies, .dareLinear, .magnitudePrune:
            result = try TaskVectorMerge.merge(try source.loadAll(), method: spec.method, rank: spec.rank,
                                               options: spec.prune, seed: seed)
        }
        // Quality figures describe the merge itself (against T); `scale` is the user's strength on top of it.
        // They read the terms only when they are measured.
        try ModuleQuality.fillStats(&result, source: source, seed: seed, report: spec.report,
                                    mergeFlops: ModuleQuality.modelledMergeFlops(spec: spec, source: source,
                                                                                 result: result))
        result.applyScale(spec.scale)
        return result
    }
}

extension ModuleResult {
    /// Multiplies the update B'A' by `scale`: √|scale| into each factor, the sign on B (as coefficients are folded).
    mutating func applyScale(_ scale: Double) {
        guard scale != 1 else { return }
        let root = abs(scale).squareRoot()
        let rootB = Float(scale < 0 ? -root : root), rootA = Float(root)
        b.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            BLAS.scal(p.count, alpha: rootB, x: base)
        }
        a.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            BLAS.scal(p.count, alpha: rootA, x: base)
        }
    }
}
