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

    public init(path: String, dtype: DType, shape: [Int], byteOffset: Int, byteCount: Int) {
        self.path = path
        self.dtype = dtype
        self.shape = shape
        self.byteOffset = byteOffset
        self.byteCount = byteCount
    }

    public var elementCount: Int { shape.reduce(1, *) }
}
