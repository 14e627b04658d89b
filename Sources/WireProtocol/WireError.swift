/// Why bytes received from a peer are not a valid protocol message, or a valid message asks for something
/// impossible. Receivers log these (with the peer's identity) and drop the message; they never crash on them.
public struct WireError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of problem, for callers that react differently (e.g. count malformed frames per peer).
    public enum Code: String, Sendable, Equatable {
        /// protobuf-c could not parse the bytes.
        case malformed
        /// A well-formed envelope without a body.
        case missingBody
        /// A field holds a value outside its domain (unknown enum value, sequence ≥ total, bad UTF-8, ...).
        case invalidField
        /// A size or count beyond what Brickyard accepts.
        case tooLarge
        /// Chunks disagree with each other or with the message they belong to (crc, total, length).
        case inconsistent
    }

    public var code: Code
    /// One line naming the message/field and what is wrong.
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "wire \(code.rawValue): \(detail)" }
}
