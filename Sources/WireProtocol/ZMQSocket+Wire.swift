/// Sending and receiving protocol messages, framed as proto/brickyard.proto describes: one frame with one
/// Envelope; on a ROUTER the peer identity frame comes first (no empty delimiter frame).
extension ZMQSocket {
    /// Encodes and sends `message`; on a ROUTER, `peer` is the destination identity (required). The envelope is
    /// packed straight into the ZeroMQ message's buffer (one copy of the bulk bytes, none of the envelope). Returns
    /// the envelope's size.
    @discardableResult
    public func send(_ message: WireMessage, to peer: [UInt8]? = nil, dontWait: Bool = false,
                     protocolVersion: UInt32 = Wire.protocolVersion) throws -> Int {
        try WireCodec.pack(message, protocolVersion: protocolVersion) { size, write in
            try send(prefix: peer.map { [$0] } ?? [], lastFrameBytes: size, dontWait: dontWait) { write($0) }
            return size
        }
    }
}

/// One message as a ROUTER received it, before decoding (decoding can fail; the identity is needed to log it).
public struct RoutedFrames: Sendable, Equatable {
    public var peer: [UInt8]
    public var payload: [UInt8]

    /// nil unless `frames` is exactly [identity, payload] (anything else is a malformed peer message).
    public init?(_ frames: [[UInt8]]) {
        guard frames.count == 2 else { return nil }
        peer = frames[0]
        payload = frames[1]
    }
}
