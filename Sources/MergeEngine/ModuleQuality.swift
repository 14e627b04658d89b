/// STUB: fills relative error against T and the SVD floor (engine work replaces this).
enum ModuleQuality {
    static func fillStats(_ result: inout ModuleResult, input: ModuleInput) throws {}
}
