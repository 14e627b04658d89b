/// Identity of one unit of work: a module, and a block of it. Today every task is a whole module
/// (block 0 of 1); the block index lets one module's work be split later without changing the scheduler
/// or the checkpoint layout.
public struct TaskKey: Hashable, Sendable, CustomStringConvertible, Codable {
    public var module: String
    public var block: Int

    public init(module: String, block: Int = 0) {
        self.module = module
        self.block = block
    }

    public var description: String { block == 0 ? module : "\(module)#\(block)" }
}
