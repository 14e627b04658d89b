#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads single tensors located by a `TensorRef` without parsing the file's header again (workers get the
/// references from the coordinator, which validated the header).
public enum TensorReader {
    /// Loads and converts the referenced tensor. The range is re-checked against the file's current size so a
    /// file replaced since planning gives an error, not garbage.
    public static func readFloats(_ ref: TensorRef, allowNonFinite: Bool = false) throws -> [Float] {
        guard ref.byteOffset >= 0, ref.byteCount == ref.elementCount * ref.dtype.byteSize else {
            throw AdapterIOError(.badArgument, path: ref.path, "tensor \(ref.displayName): reference does not match shape \(ref.shape) of \(ref.dtype.rawValue)")
        }
        let fd = open(ref.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AdapterIOError(.io, path: ref.path, "cannot open: \(SystemError.text())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw AdapterIOError(.io, path: ref.path, "cannot stat: \(SystemError.text())") }
        guard ref.byteOffset + ref.byteCount <= Int(info.st_size) else {
            throw AdapterIOError(.truncated, path: ref.path, "tensor \(ref.displayName): bytes [\(ref.byteOffset), \(ref.byteOffset + ref.byteCount)) are past the end of the \(info.st_size)-byte file")
        }
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: max(ref.byteCount, 1), alignment: 16)
        defer { raw.deallocate() }
        guard let base = raw.baseAddress else { throw AdapterIOError(.io, path: ref.path, "out of memory") }
        var done = 0
        while done < ref.byteCount {
            let got = pread(fd, base + done, ref.byteCount - done, off_t(ref.byteOffset + done))
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else {
                throw AdapterIOError(.io, path: ref.path, "tensor \(ref.displayName): read failed: \(got == 0 ? "unexpected end of file" : SystemError.text())")
            }
            done += got
        }
        let (values, finite) = FloatConversion.decodeChecked(UnsafeRawBufferPointer(rebasing: raw[0..<ref.byteCount]), dtype: ref.dtype)
        if !finite && !allowNonFinite {
            try values.withUnsafeBufferPointer { try checkFinite($0, tensor: ref.displayName, path: ref.path) }
        }
        return values
    }

    /// Decodes bytes received inline (the coordinator sent the tensor's stored bytes).
    public static func decodeInline(_ bytes: UnsafeRawBufferPointer, dtype: DType, shape: [Int], tensor: String,
                                    source: String, allowNonFinite: Bool = false) throws -> [Float] {
        let count = shape.reduce(1, *)
        guard bytes.count == count * dtype.byteSize else {
            throw AdapterIOError(.badArgument, path: source, "tensor \(tensor): \(bytes.count) bytes do not hold shape \(shape) of \(dtype.rawValue)")
        }
        let (values, finite) = FloatConversion.decodeChecked(bytes, dtype: dtype)
        if !finite && !allowNonFinite {
            try values.withUnsafeBufferPointer { try checkFinite($0, tensor: tensor, path: source) }
        }
        return values
    }

    /// Throws `.nonFinite` naming the tensor and the first bad element.
    public static func checkFinite(_ values: UnsafeBufferPointer<Float>, tensor: String, path: String) throws {
        if let bad = FloatConversion.firstNonFinite(values) {
            throw AdapterIOError(.nonFinite, path: path, "tensor \(tensor): element \(bad) is \(values[bad]) (NaN/Inf not allowed)")
        }
    }
}
