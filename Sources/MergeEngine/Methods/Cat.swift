/// STUB: replaced by the engine work.
enum CatMerge {
    static func merge(_ input: ModuleInput) throws -> ModuleResult {
        throw MergeError("method not implemented yet")
    }
}
