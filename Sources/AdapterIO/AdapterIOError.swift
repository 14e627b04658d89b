/// Why reading or writing a safetensors file or a PEFT adapter failed. `description` is one line naming the
/// file (and the tensor or key when there is one) and the problem, ready for `brickyard: <description>`.
public struct AdapterIOError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A stable category, so callers and tests can branch on the kind of failure without parsing text.
    public enum Code: String, Sendable, Equatable {
        case io
        case truncated
        case badHeader
        case unknownDType
        case badTensorLayout
        case nonFinite
        case badConfig
        case missingConfig
        case unsupported
        case shapeMismatch
        case rankMismatch
        case badArgument
    }

    public var code: Code
    /// The file or directory concerned.
    public var path: String
    public var problem: String

    public init(_ code: Code, path: String, _ problem: String) {
        self.code = code
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
}
