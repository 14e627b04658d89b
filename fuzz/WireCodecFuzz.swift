import WireProtocol

/// libFuzzer target: `WireCodec.decode` (protobuf-c unpacking plus Brickyard's validation) on arbitrary bytes
/// must return a message or throw `WireError`, never crash, trap or touch memory it does not own
/// (AddressSanitizer watches the C side too). A decoded message must re-encode to bytes that decode to the same
/// encoding (compared as bytes, so NaN fields compare equal).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWireCodec(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let decoded = try? WireCodec.decode(bytes) else { return 0 }
    let encoded = WireCodec.encode(decoded.message, protocolVersion: decoded.version)
    guard let back = try? WireCodec.decode(encoded) else { preconditionFailure("a decoded message does not decode after re-encoding") }
    precondition(back.version == decoded.version, "round trip changed the protocol version")
    precondition(WireCodec.encode(back.message, protocolVersion: back.version) == encoded, "round trip changed the message")
    return 0
}
