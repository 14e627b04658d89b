import AdapterIO

/// Inline mode: copies one adapter's two stored factors (as on disk, any dtype) out of its memory-mapped
/// file, so the coordinator holds at most one adapter's factors for one module while streaming a task's inputs.
enum FactorReader {
    static func factors(of info: LoraModuleInfo) throws -> [(factor: UInt32, bytes: [UInt8])] {
        let file: MappedFile
        do {
            file = try MappedFile(path: info.a.path)
        } catch {
            throw CoordinatorError(.io, "\(info.a.path): cannot map input: \(error)")
        }
        return try file.withBytes { raw in
            try [(UInt32(0), info.a), (UInt32(1), info.b)].map { factor, tensor in
                guard tensor.byteOffset >= 0, tensor.byteCount >= 0, tensor.byteOffset + tensor.byteCount <= raw.count else {
                    throw CoordinatorError(.io,
                        "\(tensor.path): bytes \(tensor.byteOffset)..<\(tensor.byteOffset + tensor.byteCount) of \(info.name) lie beyond the file's \(raw.count) bytes")
                }
                return (factor, Array(raw[tensor.byteOffset..<(tensor.byteOffset + tensor.byteCount)]))
            }
        }
    }
}
