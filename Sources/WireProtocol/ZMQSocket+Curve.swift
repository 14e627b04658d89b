import CZeroMQ

/// CURVE encryption/authentication options and socket monitoring (how a worker learns why a handshake failed).
extension ZMQSocket {
    /// Server side of CURVE (set before `bind`): every connection must complete a CURVE handshake with this key
    /// pair; ZeroMQ asks the ZAP handler of this context (domain `zapDomain`) whether the client's key may join.
    public func makeCurveServer(_ keys: CurveKeyPair, zapDomain: String) throws {
        try setOption(ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER")
        try setStringOption(ZMQ_CURVE_SECRETKEY, keys.secretKey, "ZMQ_CURVE_SECRETKEY")
        try setStringOption(ZMQ_CURVE_PUBLICKEY, keys.publicKey, "ZMQ_CURVE_PUBLICKEY")
        try setStringOption(ZMQ_ZAP_DOMAIN, zapDomain, "ZMQ_ZAP_DOMAIN")
    }

    /// Client side of CURVE (set before `connect`): talks only to the server holding `serverKey`'s secret.
    public func makeCurveClient(serverKey: String, keys: CurveKeyPair) throws {
        try setStringOption(ZMQ_CURVE_SERVERKEY, serverKey, "ZMQ_CURVE_SERVERKEY")
        try setStringOption(ZMQ_CURVE_PUBLICKEY, keys.publicKey, "ZMQ_CURVE_PUBLICKEY")
        try setStringOption(ZMQ_CURVE_SECRETKEY, keys.secretKey, "ZMQ_CURVE_SECRETKEY")
    }

    /// Starts publishing this socket's connection events to a PAIR socket connected to `endpoint` (inproc://,
    /// unique per socket) and returns that PAIR socket (same owner thread). Read events with `ZMQMonitorEvent`.
    public func monitor(endpoint: String, events: Int32 = ZMQ_EVENT_ALL) throws -> ZMQSocket {
        guard zmq_socket_monitor(try open("zmq_socket_monitor"), endpoint, events) == 0 else {
            throw ZMQError.last("zmq_socket_monitor(\(endpoint))")
        }
        let pair = try ZMQSocket(context: context, kind: .pair, lingerMilliseconds: 0)
        try pair.connect(endpoint)
        return pair
    }

    /// Stops the monitor started by `monitor(endpoint:)` (before closing either socket).
    public func stopMonitor() {
        if let handle = try? open("zmq_socket_monitor") { zmq_socket_monitor(handle, nil, 0) }
    }

    func setStringOption(_ option: Int32, _ value: String, _ name: String) throws {
        let socket = try open("zmq_setsockopt")
        let status = Array(value.utf8).withUnsafeBytes { zmq_setsockopt(socket, option, $0.baseAddress, $0.count) }
        guard status == 0 else { throw ZMQError.last("zmq_setsockopt(\(name))") }
    }
}

/// One event from a socket monitor: the event bit (`ZMQ_EVENT_*`), its value (errno, ZAP status code, fd, ...)
/// and the endpoint concerned.
public struct ZMQMonitorEvent: Sendable, Equatable {
    public var event: Int32
    public var value: UInt32
    public var endpoint: String

    /// nil unless `frames` is a monitor message: [6 bytes: UInt16 event, UInt32 value (little-endian)], [endpoint].
    public init?(_ frames: [[UInt8]]) {
        guard frames.count == 2, frames[0].count == 6 else { return nil }
        let head = frames[0]
        event = Int32(UInt16(head[0]) | UInt16(head[1]) << 8)
        value = UInt32(head[2]) | UInt32(head[3]) << 8 | UInt32(head[4]) << 16 | UInt32(head[5]) << 24
        endpoint = String(decoding: frames[1], as: UTF8.self)
    }

    public static let handshakeSucceeded = ZMQ_EVENT_HANDSHAKE_SUCCEEDED
    /// The ZAP handler refused the peer's credentials; `value` is the ZAP status code (400, 300, 500).
    public static let handshakeFailedAuth = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
    /// A protocol error (e.g. one side speaks CURVE and the other not); `value` is a `ZMQ_PROTOCOL_ERROR_*`.
    public static let handshakeFailedProtocol = ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
    /// The connection broke during the handshake (a CURVE server that cannot decrypt our HELLO: wrong server key).
    public static let handshakeFailedNoDetail = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
}
