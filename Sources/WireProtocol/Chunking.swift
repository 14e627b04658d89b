/// Splits a body (a task's result, or one input factor in inline mode) into numbered chunks of bounded size,
/// each with its CRC-32C, so no single ZeroMQ message carries a whole module.
public enum Chunking {
    /// Default upper bound of a chunk's payload (4 MiB).
    public static let defaultChunkBytes = 4 << 20

    /// Byte ranges covering `byteCount` bytes in pieces of at most `maxChunkBytes` (treated as ≥ 1, and raised
    /// only if the count would not fit the protocol's 32-bit `total`).
    /// An empty body is one empty chunk, so every body has `total ≥ 1` and a receiver can see it complete.
    public static func ranges(byteCount: Int, maxChunkBytes: Int) -> [Range<Int>] {
        let size = max(maxChunkBytes, 1, byteCount / Int(UInt32.max) + 1)
        guard byteCount > 0 else { return [0..<0] }
        return stride(from: 0, to: byteCount, by: size).map { $0..<min($0 + size, byteCount) }
    }

    public static func resultChunks(of body: [UInt8], taskID: UInt64, attempt: UInt32, maxChunkBytes: Int) -> [Wire.ResultChunk] {
        let ranges = ranges(byteCount: body.count, maxChunkBytes: maxChunkBytes)
        return ranges.enumerated().map { sequence, range in
            Wire.ResultChunk(taskID: taskID, attempt: attempt, sequence: UInt32(sequence), total: UInt32(ranges.count),
                             payload: Array(body[range]), crc32c: CRC32C.checksum(body[range]))
        }
    }

    /// Inline mode: the chunks of input `inputIndex`'s factor `factor` (0 = A, 1 = B) as stored on disk.
    public static func inputChunks(of bytes: [UInt8], taskID: UInt64, attempt: UInt32, inputIndex: UInt32, factor: UInt32,
                                   maxChunkBytes: Int) -> [Wire.InputChunk] {
        let ranges = ranges(byteCount: bytes.count, maxChunkBytes: maxChunkBytes)
        return ranges.enumerated().map { sequence, range in
            Wire.InputChunk(taskID: taskID, attempt: attempt, inputIndex: inputIndex, factor: factor,
                            sequence: UInt32(sequence), total: UInt32(ranges.count), payload: Array(bytes[range]),
                            crc32c: CRC32C.checksum(bytes[range]))
        }
    }
}

/// Rebuilds one body from its chunks, in any arrival order. Checks each chunk's CRC and that every chunk agrees
/// on `total`; drops repeats of a sequence number idempotently (a retried send or a duplicated message);
/// refuses bodies beyond `maxTotalBytes`.
public struct ChunkReassembler: Sendable {
    /// What `add` did with a chunk.
    public enum Outcome: Sendable, Equatable {
        /// Stored; more chunks are missing.
        case accepted
        /// This sequence number was already stored; the chunk was dropped.
        case duplicate
        /// Stored, and now every chunk is present.
        case complete
    }

    public let maxTotalBytes: Int
    public private(set) var total: UInt32?
    public private(set) var receivedBytes = 0
    /// Payloads as they arrived (slices of their frames, not copied) and each one's checked CRC-32C.
    private var payloads: [UInt32: (bytes: ArraySlice<UInt8>, crc32c: UInt32)] = [:]

    public init(maxTotalBytes: Int) {
        self.maxTotalBytes = maxTotalBytes
    }

    public var receivedCount: Int { payloads.count }
    public var isComplete: Bool { total.map { payloads.count == Int($0) } ?? false }

    public mutating func add(sequence: UInt32, total: UInt32, payload: [UInt8], crc32c: UInt32) throws -> Outcome {
        try add(sequence: sequence, total: total, payload: payload[...], crc32c: crc32c)
    }

    /// Adds a chunk whose payload is kept as the slice it is (e.g. of the frame it arrived in): no copy.
    public mutating func add(sequence: UInt32, total: UInt32, payload: ArraySlice<UInt8>, crc32c: UInt32) throws -> Outcome {
        guard total > 0, sequence < total else {
            throw WireError(.invalidField, "chunk \(sequence) of \(total) is out of range")
        }
        if let known = self.total, known != total {
            throw WireError(.inconsistent, "chunk \(sequence) says total \(total) but earlier chunks said \(known)")
        }
        let actual = CRC32C.checksum(payload)
        guard actual == crc32c else {
            throw WireError(.inconsistent, "chunk \(sequence) of \(total): crc32c \(hex(actual)) does not match \(hex(crc32c))")
        }
        self.total = total
        if payloads[sequence] != nil { return .duplicate }
        guard receivedBytes + payload.count <= maxTotalBytes else {
            throw WireError(.tooLarge, "chunks exceed the \(maxTotalBytes)-byte limit at chunk \(sequence) of \(total)")
        }
        payloads[sequence] = (payload, crc32c)
        receivedBytes += payload.count
        return isComplete ? .complete : .accepted
    }

    public mutating func add(_ chunk: Wire.ResultChunk) throws -> Outcome {
        try add(sequence: chunk.sequence, total: chunk.total, payload: chunk.payload, crc32c: chunk.crc32c)
    }

    public mutating func add(_ chunk: ResultChunkView) throws -> Outcome {
        try add(sequence: chunk.sequence, total: chunk.total, payload: chunk.payload, crc32c: chunk.crc32c)
    }

    public mutating func add(_ chunk: Wire.InputChunk) throws -> Outcome {
        try add(sequence: chunk.sequence, total: chunk.total, payload: chunk.payload, crc32c: chunk.crc32c)
    }

    /// The body: payloads in sequence order. Throws if chunks are missing.
    public func assembled() throws -> [UInt8] {
        guard let total, isComplete else {
            throw WireError(.inconsistent, "body incomplete: \(payloads.count) of \(total.map(String.init) ?? "?") chunks")
        }
        var body: [UInt8] = []
        body.reserveCapacity(receivedBytes)
        for sequence in 0..<total { body += payloads[sequence]?.bytes ?? [] }
        return body
    }

    /// The body checked against the length and CRC its sender announced, read as little as possible: a body of
    /// one chunk is that chunk's slice (no copy), and the body's CRC is combined from the chunks' CRCs, checked
    /// when they arrived (`CRC32C.combine`), instead of reading the bytes again.
    public func assembledSlice(expectedBytes: UInt64, expectedCRC32C: UInt32) throws -> ArraySlice<UInt8> {
        guard let total, isComplete else {
            throw WireError(.inconsistent, "body incomplete: \(payloads.count) of \(total.map(String.init) ?? "?") chunks")
        }
        guard UInt64(receivedBytes) == expectedBytes else {
            throw WireError(.inconsistent, "body has \(receivedBytes) bytes, sender announced \(expectedBytes)")
        }
        var crc = CRC32C().value
        for sequence in 0..<total {
            guard let chunk = payloads[sequence] else { throw WireError(.inconsistent, "chunk \(sequence) missing") }
            crc = sequence == 0 ? chunk.crc32c : CRC32C.combine(crc, chunk.crc32c, lengthB: chunk.bytes.count)
        }
        guard crc == expectedCRC32C else {
            throw WireError(.inconsistent, "body crc32c \(hex(crc)) does not match announced \(hex(expectedCRC32C))")
        }
        if total == 1, let only = payloads[0] { return only.bytes }
        return try assembled()[...]
    }

    /// The body, checked against the length and CRC its sender announced (e.g. `TaskDone`).
    public func assembled(expectedBytes: UInt64, expectedCRC32C: UInt32) throws -> [UInt8] {
        let body = try assembled()
        guard UInt64(body.count) == expectedBytes else {
            throw WireError(.inconsistent, "body has \(body.count) bytes, sender announced \(expectedBytes)")
        }
        let crc = CRC32C.checksum(body)
        guard crc == expectedCRC32C else {
            throw WireError(.inconsistent, "body crc32c \(hex(crc)) does not match announced \(hex(expectedCRC32C))")
        }
        return body
    }
}

private func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
