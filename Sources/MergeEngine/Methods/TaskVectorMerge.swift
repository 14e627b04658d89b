/// STUB: replaced by the engine work.
enum TaskVectorMerge {
    static func merge(_ input: ModuleInput, method: MergeMethodName, rank: Int, options: PruneOptions, seed: UInt64) throws -> ModuleResult {
        throw MergeError("method not implemented yet")
    }
}
