/// Sending and receiving protocol messages, framed as proto/brickyard.proto describes: one frame with one
/// Envelope; on a ROUTER the peer identity frame comes first (no empty delimiter frame).
extension ZMQSocket {
    /// Encodes and sends `message`; on a ROUTER, `peer` is the destination identity (required).
    public func send(_ message: WireMessage, to peer: [UInt8]? = nil, dontWait: Bool = false) throws {
        let payload = WireCodec.encode(message)
        if let peer { try send([peer, payload], dontWait: dontWait) } else { try send([payload], dontWait: dontWait) }
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
