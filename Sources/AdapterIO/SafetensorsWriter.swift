#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A tensor to be written: its key, stored element type and shape.
public struct TensorDeclaration: Sendable, Hashable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]

    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    public var elementCount: Int { shape.reduce(1, *) }
}

/// Streams a safetensors file to disk: every tensor is declared up front (so the header and every offset are
/// known), then each tensor's Float32 data is converted and written at its offset, in any order, one at a time,
/// so a large adapter never has to be in memory at once. `finish()` makes the file appear atomically; a writer
/// dropped without `finish()` removes its temporary file.
///
/// Layout matches the reference implementation: compact JSON header with `__metadata__` first, padded with
/// spaces to a multiple of 8 bytes; tensors in sorted key order with contiguous offsets.
public final class SafetensorsWriter {
    public let path: String
    private let temporaryPath: String
    private var fd: Int32
    private let dataOffset: Int
    private var slots: [String: (declaration: TensorDeclaration, offset: Int)] = [:]
    private var written: Set<String> = []
    private var finished = false

    public init(path: String, tensors: [TensorDeclaration], metadata: [String: String] = [:]) throws {
        self.path = path
        let sorted = tensors.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.name == next.name {
            throw AdapterIOError(.badArgument, path: path, "tensor \(next.name) declared twice")
        }
        var header = "{"
        var entries: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.keys.sorted().map { "\(JSONText.quote($0)):\(JSONText.quote(metadata[$0] ?? ""))" }
            entries.append("\"__metadata__\":{\(fields.joined(separator: ","))}")
        }
        var offset = 0
        var slots: [String: (TensorDeclaration, Int)] = [:]
        for tensor in sorted {
            guard tensor.shape.allSatisfy({ $0 >= 0 }) else {
                throw AdapterIOError(.badArgument, path: path, "tensor \(tensor.name): negative dimension in \(tensor.shape)")
            }
            let size = tensor.elementCount * tensor.dtype.byteSize
            entries.append("\(JSONText.quote(tensor.name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + size)]}")
            slots[tensor.name] = (tensor, offset)
            offset += size
        }
        header += entries.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        headerBytes += [UInt8](repeating: 0x20, count: (8 - headerBytes.count % 8) % 8)
        var prefix = [UInt8](repeating: 0, count: 8)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { prefix = Array($0) }

        self.slots = slots
        dataOffset = 8 + headerBytes.count
        temporaryPath = AtomicFile.temporaryPath(for: path)
        fd = try AtomicFile.openForWriting(temporaryPath)
        do {
            try (prefix + headerBytes).withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, at: 0, path: temporaryPath) }
            // Reserve the full size now so tensors written out of order leave no doubt about the final length.
            guard ftruncate(fd, off_t(dataOffset + offset)) == 0 else {
                throw AdapterIOError(.io, path: temporaryPath, "cannot size file: \(SystemError.text())")
            }
        } catch {
            abandon()
            throw error
        }
    }

    deinit { if !finished { abandon() } }

    /// Converts `values` to the declared dtype and writes them at the tensor's offset.
    public func write(_ name: String, _ values: UnsafeBufferPointer<Float>) throws {
        guard let slot = slots[name] else { throw AdapterIOError(.badArgument, path: path, "tensor \(name) was not declared") }
        guard !written.contains(name) else { throw AdapterIOError(.badArgument, path: path, "tensor \(name) written twice") }
        guard values.count == slot.declaration.elementCount else {
            throw AdapterIOError(.badArgument, path: path, "tensor \(name): \(values.count) values given, shape \(slot.declaration.shape) needs \(slot.declaration.elementCount)")
        }
        // Convert in bounded chunks so a huge tensor needs no second full-size buffer.
        let chunkElements = 1 << 20
        let byteSize = slot.declaration.dtype.byteSize
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: min(values.count, chunkElements) * byteSize + 1, alignment: 16)
        defer { buffer.deallocate() }
        var start = 0
        while start < values.count {
            let end = min(start + chunkElements, values.count)
            let bytes = (end - start) * byteSize
            FloatConversion.encode(UnsafeBufferPointer(rebasing: values[start..<end]), as: slot.declaration.dtype, into: buffer)
            try AtomicFile.writeAll(fd: fd, UnsafeRawBufferPointer(rebasing: buffer[0..<bytes]),
                                    at: dataOffset + slot.offset + start * byteSize, path: temporaryPath)
            start = end
        }
        written.insert(name)
    }

    /// Writes a tensor given as little-endian Float32 bytes at any alignment (for example a slice of a mapped
    /// checkpoint record): an F32 tensor is written from them directly, with no copy in this process; other dtypes
    /// are converted in bounded chunks.
    public func write(_ name: String, float32Bytes bytes: UnsafeRawBufferPointer) throws {
        guard let slot = slots[name] else { throw AdapterIOError(.badArgument, path: path, "tensor \(name) was not declared") }
        guard !written.contains(name) else { throw AdapterIOError(.badArgument, path: path, "tensor \(name) written twice") }
        guard bytes.count == 4 * slot.declaration.elementCount else {
            throw AdapterIOError(.badArgument, path: path, "tensor \(name): \(bytes.count) bytes given, shape \(slot.declaration.shape) of F32 needs \(4 * slot.declaration.elementCount)")
        }
        #if _endian(little)
        if slot.declaration.dtype == .f32 {
            try AtomicFile.writeAll(fd: fd, bytes, at: dataOffset + slot.offset, path: temporaryPath)
            written.insert(name)
            return
        }
        #endif
        let chunkElements = 1 << 18
        let count = slot.declaration.elementCount
        let byteSize = slot.declaration.dtype.byteSize
        let floats = UnsafeMutableBufferPointer<Float>.allocate(capacity: min(count, chunkElements) + 1)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: (min(count, chunkElements) + 1) * byteSize, alignment: 16)
        defer { floats.deallocate(); buffer.deallocate() }
        var start = 0
        while start < count {
            let end = min(start + chunkElements, count)
            FloatConversion.decode(UnsafeRawBufferPointer(rebasing: bytes[(4 * start)..<(4 * end)]), dtype: .f32,
                                   into: UnsafeMutableBufferPointer(rebasing: floats[0..<(end - start)]))
            FloatConversion.encode(UnsafeBufferPointer(rebasing: floats[0..<(end - start)]), as: slot.declaration.dtype,
                                   into: buffer)
            try AtomicFile.writeAll(fd: fd, UnsafeRawBufferPointer(rebasing: buffer[0..<((end - start) * byteSize)]),
                                    at: dataOffset + slot.offset + start * byteSize, path: temporaryPath)
            start = end
        }
        written.insert(name)
    }

    public func write(_ name: String, _ values: [Float]) throws {
        try values.withUnsafeBufferPointer { try write(name, $0) }
    }

    /// Checks every declared tensor was written, then fsyncs and renames into place.
    public func finish() throws {
        guard !finished else { return }
        let missing = slots.keys.filter { !written.contains($0) }.sorted()
        guard missing.isEmpty else {
            throw AdapterIOError(.badArgument, path: path, "tensor \(missing[0]) was declared but never written (\(missing.count) missing)")
        }
        do {
            try AtomicFile.sync(fd: fd, path: temporaryPath)
        } catch {
            abandon()
            throw error
        }
        close(fd)
        fd = -1
        finished = true
        try AtomicFile.commit(temporary: temporaryPath, to: path)
    }

    private func abandon() {
        if fd >= 0 { close(fd) }
        fd = -1
        unlink(temporaryPath)
        finished = true
    }

    /// One-shot form: writes every tensor from memory.
    public static func write(path: String, tensors: [(declaration: TensorDeclaration, values: [Float])],
                             metadata: [String: String] = [:]) throws {
        let writer = try SafetensorsWriter(path: path, tensors: tensors.map(\.declaration), metadata: metadata)
        for tensor in tensors { try writer.write(tensor.declaration.name, tensor.values) }
        try writer.finish()
    }
}

/// Minimal JSON string quoting for headers we generate (keys and metadata are arbitrary UTF-8).
enum JSONText {
    static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
