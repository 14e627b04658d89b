/// Where one tensor's bytes live on disk: enough for any process that can read the file to load it
/// without parsing the header again (the coordinator sends these to workers in shared mode).
public struct TensorRef: Sendable, Codable, Hashable {
    /// Path of the .safetensors file.
    public var path: String
    public var dtype: DType
    public var shape: [Int]
    /// Absolute offset of the first byte within the file (header included).
    public var byteOffset: Int
    public var byteCount: Int
    /// The tensor's key in the file, for error messages (nil when unknown).
    public var name: String?

    public init(path: String, dtype: DType, shape: [Int], byteOffset: Int, byteCount: Int, name: String? = nil) {
        self.path = path
        self.dtype = dtype
        self.shape = shape
        self.byteOffset = byteOffset
        self.byteCount = byteCount
        self.name = name
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// The key if known, else the offset: something a user can find in the file.
    public var displayName: String { name ?? "at byte \(byteOffset)" }
}
