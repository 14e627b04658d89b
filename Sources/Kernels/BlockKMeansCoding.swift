/// Little-endian bytes for the split k-means' partials and checkpointed state. Floats and doubles travel as their
/// bit patterns, so a value read back is the value written (the reduction must not depend on a text round trip).
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func u64(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    public mutating func u32(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    public mutating func int(_ value: Int) { u64(UInt64(bitPattern: Int64(value))) }
    public mutating func double(_ value: Double) { u64(value.bitPattern) }
    public mutating func float(_ value: Float) { u32(value.bitPattern) }

    public mutating func floats(_ values: [Float]) {
        int(values.count)
        bytes.reserveCapacity(bytes.count + 4 * values.count)
        #if _endian(little)
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        for value in values { u32(value.bitPattern) }
        #endif
    }

    public mutating func doubles(_ values: [Double]) {
        int(values.count)
        for value in values { double(value) }
    }

    public mutating func ints(_ values: [Int]) {
        int(values.count)
        for value in values { int(value) }
    }

    public mutating func u64s(_ values: [UInt64]) {
        int(values.count)
        for value in values { u64(value) }
    }

    public mutating func u32s(_ values: [UInt32]) {
        int(values.count)
        bytes.reserveCapacity(bytes.count + 4 * values.count)
        for value in values { u32(value) }
    }

    /// Raw bytes, no count (the caller writes one when needed).
    public mutating func append(_ raw: [UInt8]) { bytes.append(contentsOf: raw) }
}

/// Reads what `ByteWriter` wrote; every read is bounds-checked and every count checked against the bytes left, so
/// a truncated or hostile body is a `KernelShapeError`, never a trap or a huge allocation.
public struct ByteReader: Sendable {
    private let bytes: ArraySlice<UInt8>
    /// Bytes read so far (offset from `bytes.startIndex`).
    private var position = 0
    private let what: String

    public init(_ bytes: [UInt8], what: String) {
        self.bytes = bytes[...]
        self.what = what
    }

    /// Reads a slice in place (e.g. a result chunk's payload inside its received frame): no copy.
    public init(_ bytes: ArraySlice<UInt8>, what: String) {
        self.bytes = bytes
        self.what = what
    }

    public var isAtEnd: Bool { position == bytes.count }
    /// Bytes not read yet.
    public var remaining: Int { bytes.count - position }

    private func fail(_ problem: String) -> KernelShapeError {
        KernelShapeError(kernel: what, problem: problem + " at byte \(position) of \(bytes.count)")
    }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - position else { throw fail("truncated (needs \(count) more bytes)") }
        defer { position += count }
        let start = bytes.startIndex + position
        return bytes[start..<(start + count)]
    }

    public mutating func u64() throws -> UInt64 {
        var value: UInt64 = 0
        for (i, byte) in try take(8).enumerated() { value |= UInt64(byte) << UInt64(8 * i) }
        return value
    }

    public mutating func u32() throws -> UInt32 {
        var value: UInt32 = 0
        for (i, byte) in try take(4).enumerated() { value |= UInt32(byte) << UInt32(8 * i) }
        return value
    }

    public mutating func int() throws -> Int { Int(Int64(bitPattern: try u64())) }

    /// A count of elements of `elementBytes` each, checked against what is left.
    public mutating func count(elementBytes: Int) throws -> Int {
        let value = try int()
        guard value >= 0, value <= (bytes.count - position) / max(1, elementBytes) else {
            throw fail("count \(value) exceeds the bytes left")
        }
        return value
    }

    /// A non-negative integer no larger than `limit`.
    public mutating func bounded(_ limit: Int, _ field: String) throws -> Int {
        let value = try int()
        guard value >= 0, value <= limit else { throw fail("\(field) \(value) is outside 0...\(limit)") }
        return value
    }

    public mutating func double() throws -> Double { Double(bitPattern: try u64()) }
    public mutating func float() throws -> Float { Float(bitPattern: try u32()) }

    public mutating func floats() throws -> [Float] {
        let n = try count(elementBytes: 4)
        let slice = try take(4 * n)
        return [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            slice.withUnsafeBytes { raw in
                #if _endian(little)
                // The bit patterns as they are: one copy straight into the Float storage.
                if n > 0, let source = raw.baseAddress, let target = buffer.baseAddress {
                    UnsafeMutableRawPointer(target).copyMemory(from: source, byteCount: 4 * n)
                }
                #else
                for i in 0..<n {
                    buffer[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
                #endif
            }
            initialized = n
        }
    }

    public mutating func doubles() throws -> [Double] {
        let n = try count(elementBytes: 8)
        return try (0..<n).map { _ in try double() }
    }

    public mutating func ints() throws -> [Int] {
        let n = try count(elementBytes: 8)
        return try (0..<n).map { _ in try int() }
    }

    public mutating func u64s() throws -> [UInt64] {
        let n = try count(elementBytes: 8)
        return try (0..<n).map { _ in try u64() }
    }

    public mutating func u32s() throws -> [UInt32] {
        let n = try count(elementBytes: 4)
        return try (0..<n).map { _ in try u32() }
    }

    /// `count` raw bytes.
    public mutating func raw(count: Int) throws -> ArraySlice<UInt8> { try take(count) }

    public func finish() throws {
        guard isAtEnd else { throw fail("\(bytes.count - position) trailing bytes") }
    }
}

extension BlockPartial {
    static let magic: UInt32 = 0x4b50_4232  // "2BPK" (1BPK: before the Lloyd assignment and the reported row)

    /// The result body of a block task: every field, bit-exact, little-endian.
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u32(Self.magic)
        w.int(kind.rawValue); w.int(unitCount); w.double(cost)
        w.int(units.count)
        for unit in units {
            w.u64(unit.id); w.double(unit.first); w.double(unit.second); w.int(unit.cluster); w.float(unit.sign)
            w.int(unit.index); w.floats(unit.vector)
        }
        w.ints(counts); w.floats(sums); w.doubles(perCenter); w.doubles(perCenterSquares)
        let nearestBytes = nearest?.encoded()
        w.int(nearestBytes == nil ? 0 : 1); w.int(nearestBytes?.count ?? 0)
        w.append(nearestBytes ?? [])
        w.int(assignment == nil ? 0 : 1); w.u32s(assignment ?? [])
        return w.bytes
    }

    /// Parses a body from the wire; anything truncated, trailing or inconsistent throws.
    public static func decode(_ bytes: [UInt8]) throws -> BlockPartial {
        try decode(bytes[...])
    }

    /// Parses a body in place (e.g. inside the received frame), copying each array once into its storage.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws -> BlockPartial {
        var r = ByteReader(bytes, what: "block partial")
        guard try r.u32() == magic else { throw KernelShapeError(kernel: "block partial", problem: "bad magic") }
        guard let kind = BlockRoundKind(rawValue: try r.bounded(16, "kind")) else {
            throw KernelShapeError(kernel: "block partial", problem: "unknown round kind")
        }
        var partial = BlockPartial(kind: kind, unitCount: try r.bounded(Int(Int32.max), "unit count"), cost: try r.double())
        let unitCount = try r.count(elementBytes: 52)
        for _ in 0..<unitCount {
            let id = try r.u64(), first = try r.double(), second = try r.double()
            let cluster = try r.bounded(Int(Int32.max), "cluster"), sign = try r.float()
            let index = try r.bounded(Int(Int32.max), "unit index")
            partial.units.append(ReportedUnit(id: id, first: first, second: second, cluster: cluster, sign: sign,
                                              index: index, vector: try r.floats()))
        }
        partial.counts = try r.ints()
        partial.sums = try r.floats()
        partial.perCenter = try r.doubles()
        partial.perCenterSquares = try r.doubles()
        if try r.bounded(1, "nearest flag") == 1 {
            // Indices are checked against the round's candidates by the driver's `validate`.
            partial.nearest = try NearestCandidates.decode(Array(try r.raw(count: try r.count(elementBytes: 1))),
                                                           candidates: Int(UInt32.max) + 1)
        } else {
            _ = try r.bounded(0, "nearest bytes")
        }
        let hasAssignment = try r.bounded(1, "assignment flag")
        let assignment = try r.u32s()
        guard hasAssignment == 1 || assignment.isEmpty else {
            throw KernelShapeError(kernel: "block partial", problem: "assignment values without the assignment flag")
        }
        partial.assignment = hasAssignment == 1 ? assignment : nil
        try r.finish()
        return partial
    }
}
