import Foundation

/// One tensor's entry in a safetensors header, after validation.
public struct SafetensorsTensorInfo: Sendable, Hashable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Byte range relative to the start of the data section.
    public var dataRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// The parsed, fully validated header of a safetensors file: nothing here refers to bytes that are not in
/// the file, so data access afterwards needs no further checks.
public struct SafetensorsHeader: Sendable {
    /// Sorted by name.
    public var tensors: [SafetensorsTensorInfo]
    public var metadata: [String: String]
    /// Absolute offset of the data section (8 + header length).
    public var dataOffset: Int

    /// Parses and validates the header at the start of `bytes` (the whole file).
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> SafetensorsHeader {
        guard bytes.count >= 8 else {
            throw AdapterIOError(.truncated, path: path, "truncated: \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        let declared = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard declared <= UInt64(bytes.count - 8) else {
            throw AdapterIOError(.truncated, path: path, "header length \(declared) exceeds the \(bytes.count - 8) bytes after it (truncated or not safetensors)")
        }
        // The reference implementation refuses headers over 100 MB; so do we, before allocating for one.
        guard declared <= 100_000_000 else {
            throw AdapterIOError(.badHeader, path: path, "header length \(declared) is over the 100 MB limit")
        }
        let headerLength = Int(declared)
        let dataOffset = 8 + headerLength
        let dataSize = bytes.count - dataOffset
        let headerBytes = Data(UnsafeRawBufferPointer(rebasing: bytes[8..<dataOffset]))
        guard String(data: headerBytes, encoding: .utf8) != nil else {
            throw AdapterIOError(.badHeader, path: path, "header is not UTF-8")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: headerBytes, options: [])
        } catch {
            throw AdapterIOError(.badHeader, path: path, "header is not valid JSON")
        }
        guard let entries = object as? [String: Any] else {
            throw AdapterIOError(.badHeader, path: path, "header is not a JSON object")
        }

        var metadata: [String: String] = [:]
        var tensors: [SafetensorsTensorInfo] = []
        for (name, value) in entries {
            if name == "__metadata__" {
                metadata = try parseMetadata(value, path: path)
                continue
            }
            tensors.append(try parseTensor(name: name, value, dataSize: dataSize, path: path))
        }
        tensors.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        try checkNoOverlap(tensors, path: path)
        return SafetensorsHeader(tensors: tensors, metadata: metadata, dataOffset: dataOffset)
    }

    private static func parseMetadata(_ value: Any, path: String) throws -> [String: String] {
        guard let dictionary = value as? [String: Any] else {
            throw AdapterIOError(.badHeader, path: path, "__metadata__ is not an object")
        }
        var metadata: [String: String] = [:]
        for (key, item) in dictionary {
            guard let text = item as? String else {
                throw AdapterIOError(.badHeader, path: path, "__metadata__.\(key) is not a string")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func parseTensor(name: String, _ value: Any, dataSize: Int, path: String) throws -> SafetensorsTensorInfo {
        guard let entry = value as? [String: Any] else {
            throw AdapterIOError(.badHeader, path: path, "tensor \(name): entry is not an object")
        }
        guard let dtypeName = entry["dtype"] as? String else {
            throw AdapterIOError(.badHeader, path: path, "tensor \(name): missing dtype")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw AdapterIOError(.unknownDType, path: path, "tensor \(name): unsupported dtype \(dtypeName) (expected F32, F16, BF16 or F64)")
        }
        guard let shapeValues = entry["shape"] as? [Any], let shape = integers(shapeValues), shape.allSatisfy({ $0 >= 0 }) else {
            throw AdapterIOError(.badHeader, path: path, "tensor \(name): shape is not a list of non-negative integers")
        }
        guard let offsetValues = entry["data_offsets"] as? [Any], let offsets = integers(offsetValues), offsets.count == 2 else {
            throw AdapterIOError(.badHeader, path: path, "tensor \(name): data_offsets is not a pair of integers")
        }
        let (start, end) = (offsets[0], offsets[1])
        guard start >= 0, start <= end, end <= dataSize else {
            throw AdapterIOError(.badTensorLayout, path: path, "tensor \(name): byte range [\(start), \(end)) lies outside the \(dataSize)-byte data section")
        }
        var elements = 1
        for dimension in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw AdapterIOError(.badTensorLayout, path: path, "tensor \(name): shape \(shape) is too large") }
            elements = product
        }
        let (byteCount, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, byteCount == end - start else {
            throw AdapterIOError(.badTensorLayout, path: path, "tensor \(name): shape \(shape) of \(dtypeName) needs \(elements) × \(dtype.byteSize) bytes but its range holds \(end - start)")
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, dataRange: start..<end)
    }

    /// JSON numbers as exact integers; `as? Int` refuses fractions and out-of-range values.
    private static func integers(_ values: [Any]) -> [Int]? {
        var result: [Int] = []
        result.reserveCapacity(values.count)
        for value in values {
            guard !(value is String), let integer = value as? Int else { return nil }
            result.append(integer)
        }
        return result
    }

    private static func checkNoOverlap(_ tensors: [SafetensorsTensorInfo], path: String) throws {
        let byStart = tensors.filter { !$0.dataRange.isEmpty }.sorted { $0.dataRange.lowerBound < $1.dataRange.lowerBound }
        for (previous, next) in zip(byStart, byStart.dropFirst()) where next.dataRange.lowerBound < previous.dataRange.upperBound {
            throw AdapterIOError(.badTensorLayout, path: path, "tensors \(previous.name) and \(next.name) have overlapping byte ranges")
        }
    }
}

