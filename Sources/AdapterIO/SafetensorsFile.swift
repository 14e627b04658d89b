/// A safetensors file opened for reading: the file is mapped, the header validated up front, and tensors are
/// converted to Float32 only when asked for.
///
/// Sendable: every stored property is immutable and the mapping is read-only.
public final class SafetensorsFile: Sendable {
    public let path: String
    public let header: SafetensorsHeader
    private let mapping: MappedFile
    private let index: [String: Int]

    public init(path: String) throws {
        self.path = path
        mapping = try MappedFile(path: path)
        header = try mapping.withBytes { try SafetensorsHeader.parse($0, path: path) }
        index = Dictionary(uniqueKeysWithValues: header.tensors.enumerated().map { ($1.name, $0) })
    }

    /// Sorted by name.
    public var tensors: [SafetensorsTensorInfo] { header.tensors }
    public var metadata: [String: String] { header.metadata }
    public var fileSize: Int { mapping.size }

    public func info(_ name: String) throws -> SafetensorsTensorInfo {
        guard let position = index[name] else { throw AdapterIOError(.badArgument, path: path, "no tensor named \(name)") }
        return header.tensors[position]
    }

    /// Where a tensor lives on disk, for readers in other processes (`TensorReader`).
    public func reference(_ name: String) throws -> TensorRef {
        let tensor = try info(name)
        return TensorRef(path: path, dtype: tensor.dtype, shape: tensor.shape,
                         byteOffset: header.dataOffset + tensor.dataRange.lowerBound,
                         byteCount: tensor.dataRange.count, name: name)
    }

    /// The stored bytes of a tensor, valid only inside `body`.
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let tensor = try info(name)
        let start = header.dataOffset + tensor.dataRange.lowerBound
        return try mapping.withBytes { file in
            try body(UnsafeRawBufferPointer(rebasing: file[start..<(start + tensor.dataRange.count)]))
        }
    }

    /// Converts a tensor to Float32 into `destination` (which must hold exactly its element count).
    /// Throws, naming the tensor, if it holds NaN or ±Inf unless `allowNonFinite`.
    public func read(_ name: String, into destination: UnsafeMutableBufferPointer<Float>, allowNonFinite: Bool = false) throws {
        let tensor = try info(name)
        guard destination.count == tensor.elementCount else {
            throw AdapterIOError(.badArgument, path: path, "tensor \(name): buffer holds \(destination.count) floats, tensor has \(tensor.elementCount)")
        }
        let finite = try withRawBytes(name) { FloatConversion.decode($0, dtype: tensor.dtype, into: destination) }
        if !finite && !allowNonFinite {
            try TensorReader.checkFinite(UnsafeBufferPointer(destination), tensor: name, path: path)
        }
    }

    /// A tensor converted to Float32, row-major in its stored shape.
    public func floats(_ name: String, allowNonFinite: Bool = false) throws -> [Float] {
        let count = try info(name).elementCount
        return try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try read(name, into: buffer, allowNonFinite: allowNonFinite)
            initialized = count
        }
    }
}
