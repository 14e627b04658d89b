/// STUB: replaced by the engine work.
enum LegoMerge {
    static func merge(_ input: ModuleInput, rank: Int, options: LegoOptions, seed: UInt64) throws -> ModuleResult {
        throw MergeError("method not implemented yet")
    }
}
