import CSIMD

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and gRPC: the checksum of
/// result and input chunks on the wire and of checkpoint records. The SSE 4.2 crc32 instruction where the CPU has
/// it (CSIMD, about 8 bytes a cycle: results of hundreds of MB are checksummed several times on their way to the
/// output), else table-driven, slicing by 8 bytes; both give the same value.
public struct CRC32C: Sendable {
    /// Whether `update` uses the crc32 instruction on this machine.
    public static let hardware = brickyard_crc32c_hardware() == 1

    private static let polynomial: UInt32 = 0x82F6_3B78
    /// tables[k][b]: CRC of byte b followed by k zero bytes; tables[0] is the classic byte table.
    private static let tables: [[UInt32]] = {
        var tables = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ polynomial : crc >> 1 }
            tables[0][byte] = crc
        }
        for k in 1..<8 {
            for byte in 0..<256 {
                let previous = tables[k - 1][byte]
                tables[k][byte] = (previous >> 8) ^ tables[0][Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    private var state: UInt32 = 0xFFFF_FFFF

    public init() {}

    /// The checksum of everything passed to `update` so far.
    public var value: UInt32 { state ^ 0xFFFF_FFFF }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        if Self.hardware, let base = bytes.baseAddress {
            state = brickyard_crc32c_update(state, base, bytes.count)
        } else {
            updateByTable(bytes)
        }
    }

    /// The portable path (also what tests compare the instruction against).
    mutating func updateByTable(_ bytes: UnsafeRawBufferPointer) {
        var crc = state
        var index = 0
        let count = bytes.count
        Self.tables.withUnsafeBufferPointer { tables in
            let t0 = tables[0], t1 = tables[1], t2 = tables[2], t3 = tables[3]
            let t4 = tables[4], t5 = tables[5], t6 = tables[6], t7 = tables[7]
            while count - index >= 8 {
                let low = crc ^ (UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8
                    | UInt32(bytes[index + 2]) << 16 | UInt32(bytes[index + 3]) << 24)
                crc = t7[Int(low & 0xFF)] ^ t6[Int((low >> 8) & 0xFF)] ^ t5[Int((low >> 16) & 0xFF)] ^ t4[Int(low >> 24)]
                    ^ t3[Int(bytes[index + 4])] ^ t2[Int(bytes[index + 5])] ^ t1[Int(bytes[index + 6])] ^ t0[Int(bytes[index + 7])]
                index += 8
            }
            while index < count {
                crc = (crc >> 8) ^ t0[Int((crc ^ UInt32(bytes[index])) & 0xFF)]
                index += 1
            }
        }
        state = crc
    }

    public mutating func update(_ bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBytes { update($0) }
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// CRC-32C of `bytes` in one call.
    public static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        checksum(bytes[...])
    }

    /// The CRC-32C of `a` followed by `b`, from `crcA` = CRC-32C(a), `crcB` = CRC-32C(b) and b's length, without
    /// reading the bytes again (zlib's `crc32_combine`: appending `lengthB` zero bytes is a linear map on the CRC,
    /// applied by repeated squaring of its GF(2) matrix). Lets a receiver check a whole body's announced CRC from the
    /// CRCs it already checked chunk by chunk.
    public static func combine(_ crcA: UInt32, _ crcB: UInt32, lengthB: Int) -> UInt32 {
        guard lengthB > 0 else { return crcA }
        func times(_ matrix: [UInt32], _ vector: UInt32) -> UInt32 {
            var sum: UInt32 = 0, vector = vector, row = 0
            while vector != 0 {
                if vector & 1 != 0 { sum ^= matrix[row] }
                vector >>= 1
                row += 1
            }
            return sum
        }
        func square(_ matrix: [UInt32]) -> [UInt32] { matrix.map { times(matrix, $0) } }
        // The operator for one zero bit, then two, then four; each turn of the loop doubles it.
        var odd = [polynomial] + (0..<31).map { UInt32(1) << UInt32($0) }
        var even = square(odd)
        odd = square(even)
        var crc = crcA, length = lengthB
        repeat {
            even = square(odd)
            if length & 1 != 0 { crc = times(even, crc) }
            length >>= 1
            if length == 0 { break }
            odd = square(even)
            if length & 1 != 0 { crc = times(odd, crc) }
            length >>= 1
        } while length != 0
        return crc ^ crcB
    }
}
