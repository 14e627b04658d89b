import MergeEngine

/// What one finished task leaves in the checkpoint: who computed it and the shape and stats of the result.
public struct CheckpointRecordHeader: Codable, Sendable, Equatable {
    public var module: String
    public var block: Int
    public var rank: Int
    public var outFeatures: Int
    public var inFeatures: Int
    /// Length of the result body that follows the header (B' then A', float32 little-endian).
    public var bodyBytes: Int
    public var stats: ModuleStats
    public var workerID: String
    public var attempts: Int
    public var seconds: Double

    public init(module: String, block: Int, rank: Int, outFeatures: Int, inFeatures: Int, bodyBytes: Int,
                stats: ModuleStats, workerID: String, attempts: Int, seconds: Double) {
        self.module = module; self.block = block; self.rank = rank
        self.outFeatures = outFeatures; self.inFeatures = inFeatures; self.bodyBytes = bodyBytes
        self.stats = stats; self.workerID = workerID; self.attempts = attempts; self.seconds = seconds
    }

    public var key: TaskKey { TaskKey(module: module, block: block) }

    /// Bytes a float32 body of this shape must have.
    public var expectedBodyBytes: Int { 4 * (outFeatures * rank + rank * inFeatures) }
}

/// One checkpoint record file:
/// `"BYREC001"` · header length (UInt32 LE) · header JSON · body · SHA-256 of everything before it (32 bytes).
/// The trailing digest makes a truncated or bit-flipped file detectable before anything in it is trusted.
public struct CheckpointRecord: Sendable {
    public static let magic: [UInt8] = Array("BYREC001".utf8)
    public var header: CheckpointRecordHeader
    public var body: [UInt8]

    public init(header: CheckpointRecordHeader, body: [UInt8]) {
        self.header = header
        self.body = body
    }

    public func encoded() throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.magic.count + 4 + 512 + body.count + 32)
        try write { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Hands the record's bytes to `append` in order (magic, header, body, digest) without concatenating them, so
    /// a large body is written from where it lies, hashed on the way.
    public func write(_ append: (UnsafeRawBufferPointer) throws -> Void) throws {
        let headerJSON = try CanonicalJSON.encode(header)
        var prefix = Self.magic
        appendLittleEndian(UInt32(headerJSON.count), to: &prefix)
        prefix.append(contentsOf: headerJSON)
        var hasher = SHA256()
        prefix.withUnsafeBytes { hasher.update(raw: $0) }
        body.withUnsafeBytes { hasher.update(raw: $0) }
        let digest = hasher.finalize()
        try prefix.withUnsafeBytes(append)
        try body.withUnsafeBytes(append)
        try digest.withUnsafeBytes(append)
    }

    /// Parses and verifies a record read from `path` (used only in error messages).
    public static func decode(_ bytes: [UInt8], path: String) throws -> CheckpointRecord {
        try bytes.withUnsafeBytes { raw in
            let (header, body) = try verify(raw, path: path)
            return CheckpointRecord(header: header, body: Array(raw[body]))
        }
    }

    /// Verifies a record in place (e.g. mapped from its file): the digest over everything before it, then the
    /// header; returns the header and the body's byte range within `bytes`.
    public static func verify(_ bytes: UnsafeRawBufferPointer, path: String) throws -> (header: CheckpointRecordHeader, body: Range<Int>) {
        let minimum = magic.count + 4 + 32
        guard bytes.count >= minimum else {
            throw CoordinatorError(.corruptRecord, "\(path): truncated checkpoint record (\(bytes.count) bytes)")
        }
        guard Array(bytes[0..<magic.count]) == magic else {
            throw CoordinatorError(.corruptRecord, "\(path): not a checkpoint record (bad magic)")
        }
        let digestStart = bytes.count - 32
        var hasher = SHA256()
        hasher.update(raw: UnsafeRawBufferPointer(rebasing: bytes[0..<digestStart]))
        guard hasher.finalize() == Array(bytes[digestStart...]) else {
            throw CoordinatorError(.corruptRecord, "\(path): checksum mismatch (truncated or corrupted record)")
        }
        var headerLength = 0
        for i in 0..<4 { headerLength |= Int(bytes[magic.count + i]) << (8 * i) }
        let headerStart = magic.count + 4
        guard headerLength <= digestStart - headerStart else {
            throw CoordinatorError(.corruptRecord, "\(path): header length \(headerLength) exceeds the record")
        }
        let header: CheckpointRecordHeader
        do {
            header = try CanonicalJSON.decode(CheckpointRecordHeader.self, Array(bytes[headerStart..<(headerStart + headerLength)]))
        } catch {
            throw CoordinatorError(.corruptRecord, "\(path): unreadable record header: \(error)")
        }
        let body = (headerStart + headerLength)..<digestStart
        guard body.count == header.bodyBytes, body.count == header.expectedBodyBytes else {
            throw CoordinatorError(.corruptRecord,
                "\(path): body is \(body.count) bytes, header says \(header.bodyBytes), shape [\(header.outFeatures)x\(header.rank)]+[\(header.rank)x\(header.inFeatures)] needs \(header.expectedBodyBytes)")
        }
        return (header, body)
    }

    private func appendLittleEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))) }
    }
}
