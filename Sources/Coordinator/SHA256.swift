import Crypto

/// SHA-256 for checkpoint record checksums and the job content hash, computed by swift-crypto (BoringSSL's
/// implementation on Linux). This thin wrapper keeps the byte-array API the coordinator and its tests use.
public struct SHA256 {
    private var hasher = Crypto.SHA256()

    public init() {}

    public mutating func update<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let done: Void? = bytes.withContiguousStorageIfAvailable { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        if done == nil { hasher.update(data: Array(bytes)) }
    }

    public mutating func update(_ string: String) { update(Array(string.utf8)) }

    /// Bytes in place (e.g. a mapped file), never copied.
    public mutating func update(raw bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }

    public mutating func finalize() -> [UInt8] { Array(hasher.finalize()) }

    public static func hash<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    public static func hex(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        var text = ""
        text.reserveCapacity(digest.count * 2)
        for byte in digest {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return text
    }
}
