/// A worker connection as the ROUTER socket names it (its routing identity frame).
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Printable form for logs: the identity as text when it is printable ASCII, hex otherwise.
    public var description: String {
        if !bytes.isEmpty, bytes.allSatisfy({ $0 >= 0x21 && $0 < 0x7f }) { return String(decoding: bytes, as: UTF8.self) }
        return "0x" + SHA256.hex(bytes)
    }
}
