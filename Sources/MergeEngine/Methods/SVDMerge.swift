/// STUB: replaced by the engine work.
enum SVDMerge {
    static func merge(_ input: ModuleInput, rank: Int) throws -> ModuleResult {
        throw MergeError("method not implemented yet")
    }
}
