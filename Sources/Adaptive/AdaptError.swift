/// A problem with an adapt or eval job's inputs or run: one line naming the file, line, key or peer.
public struct AdaptError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
