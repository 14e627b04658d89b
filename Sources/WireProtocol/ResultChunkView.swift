/// A `ResultChunk` whose payload is a slice of the frame it arrived in, so the bytes a worker sends are not copied
/// on their way to the checksum and the decoder (`WireCodec.resultChunkView`). The bulk of a split module's
/// traffic is result chunks: on a 960-adapter MLP module 1.2 GB of partials per module reach the coordinator.
public struct ResultChunkView: Sendable {
    public var taskID: UInt64
    public var attempt: UInt32
    public var sequence: UInt32
    public var total: UInt32
    public var payload: ArraySlice<UInt8>
    public var crc32c: UInt32

    public init(_ chunk: Wire.ResultChunk) {
        taskID = chunk.taskID; attempt = chunk.attempt; sequence = chunk.sequence; total = chunk.total
        payload = chunk.payload[...]; crc32c = chunk.crc32c
    }

    init(taskID: UInt64, attempt: UInt32, sequence: UInt32, total: UInt32, payload: ArraySlice<UInt8>, crc32c: UInt32) {
        self.taskID = taskID; self.attempt = attempt; self.sequence = sequence; self.total = total
        self.payload = payload; self.crc32c = crc32c
    }
}

extension WireCodec {
    /// Reads `frame` in place if it is an Envelope holding exactly a `result_chunk`, each field at most once and no
    /// other field, with valid chunk numbering; nil for anything else, which the caller hands to `decode` (the one
    /// full decoder, and the one that explains what is wrong). The payload is a slice of `frame`.
    public static func resultChunkView(_ frame: [UInt8]) -> (version: UInt32, chunk: ResultChunkView)? {
        var reader = ProtobufFieldReader(frame[...])
        var version: UInt32 = 0
        var body: ArraySlice<UInt8>?
        var seen = Set<UInt64>()
        while !reader.isAtEnd {
            guard let (field, wireType) = reader.key(), seen.insert(field).inserted else { return nil }
            switch (field, wireType) {
            case (1, 0):
                guard let value = reader.varint(), let small = UInt32(exactly: value) else { return nil }
                version = small
            case (16, 2):
                guard let bytes = reader.lengthDelimited() else { return nil }
                body = bytes
            default:
                return nil
            }
        }
        guard let body else { return nil }
        var fields = ProtobufFieldReader(body)
        var values: [UInt64: UInt64] = [:]
        var payload = body[body.startIndex..<body.startIndex]
        seen.removeAll()
        while !fields.isAtEnd {
            guard let (field, wireType) = fields.key(), seen.insert(field).inserted else { return nil }
            switch (field, wireType) {
            case (1, 0), (2, 0), (3, 0), (4, 0), (6, 0):
                guard let value = fields.varint() else { return nil }
                guard field == 1 || value <= UInt64(UInt32.max) else { return nil }
                values[field] = value
            case (5, 2):
                guard let bytes = fields.lengthDelimited() else { return nil }
                payload = bytes
            default:
                return nil
            }
        }
        let sequence = UInt32(values[3] ?? 0), total = UInt32(values[4] ?? 0)
        guard total > 0, sequence < total else { return nil }
        return (version, ResultChunkView(taskID: values[1] ?? 0, attempt: UInt32(values[2] ?? 0), sequence: sequence,
                                         total: total, payload: payload, crc32c: UInt32(values[6] ?? 0)))
    }
}

/// The protobuf wire format's keys, varints and length-delimited fields, read from a slice without copying
/// (only what `resultChunkView` needs; every read is bounds-checked and returns nil on malformed input).
struct ProtobufFieldReader {
    private let bytes: ArraySlice<UInt8>
    private var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        index = bytes.startIndex
    }

    var isAtEnd: Bool { index == bytes.endIndex }

    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        for shift in stride(from: UInt64(0), to: 70, by: 7) {
            guard index < bytes.endIndex, shift < 64 else { return nil }
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 {
                // The tenth byte may only hold the top bit.
                return shift == 63 && byte > 1 ? nil : value
            }
        }
        return nil
    }

    /// (field number, wire type); nil for field 0 or a malformed key.
    mutating func key() -> (field: UInt64, wireType: UInt64)? {
        guard let key = varint(), key >> 3 > 0 else { return nil }
        return (key >> 3, key & 7)
    }

    mutating func lengthDelimited() -> ArraySlice<UInt8>? {
        guard let length = varint(), length <= UInt64(bytes.endIndex - index) else { return nil }
        let start = index
        index += Int(length)
        return bytes[start..<index]
    }
}
