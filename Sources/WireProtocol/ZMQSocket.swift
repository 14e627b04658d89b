import CZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// One ZeroMQ socket. Keeps its `ZMQContext` alive (see there), sets a short `ZMQ_LINGER` so closing never
/// hangs on a dead peer, and moves whole multipart messages through `zmq_msg_t` (never a fixed buffer, which
/// would truncate).
///
/// Single owner: ZeroMQ sockets are not thread-safe, so one thread creates, uses and closes a socket. The class
/// is deliberately not `Sendable`; code that needs another thread's work hands results to the owner thread.
public final class ZMQSocket {
    /// The socket patterns Brickyard uses.
    public enum Kind: Sendable {
        /// Coordinator side: addresses peers by identity; every received message starts with the identity frame.
        case router
        /// Worker side: one connection, no identity or delimiter frames.
        case dealer
        /// The ZAP handler's side of ZeroMQ's authentication protocol (request → reply, in order).
        case reply
        /// Asks a ZAP handler (the coordinator's start-up probe).
        case request
        /// Receives a socket monitor's events.
        case pair

        var raw: Int32 {
            switch self {
            case .router: ZMQ_ROUTER
            case .dealer: ZMQ_DEALER
            case .reply: ZMQ_REP
            case .request: ZMQ_REQ
            case .pair: ZMQ_PAIR
            }
        }
    }

    public let context: ZMQContext
    public let kind: Kind
    private var handle: UnsafeMutableRawPointer?

    /// Creates a socket with `ZMQ_LINGER` = `lingerMilliseconds` (short: a few queued messages such as a final
    /// Disconnect still get out, but a vanished peer never blocks close or context termination for long).
    public init(context: ZMQContext, kind: Kind, lingerMilliseconds: Int32 = 200) throws {
        guard let handle = zmq_socket(context.handle, kind.raw) else { throw ZMQError.last("zmq_socket") }
        self.context = context
        self.kind = kind
        self.handle = handle
        try setOption(ZMQ_LINGER, lingerMilliseconds, "ZMQ_LINGER")
    }

    /// A ROUTER with `ZMQ_ROUTER_MANDATORY`, so a send to an unknown or departed peer fails with
    /// `ZMQError.Kind.hostUnreachable` instead of being dropped silently.
    public static func router(context: ZMQContext, lingerMilliseconds: Int32 = 200) throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, kind: .router, lingerMilliseconds: lingerMilliseconds)
        try socket.setOption(ZMQ_ROUTER_MANDATORY, 1, "ZMQ_ROUTER_MANDATORY")
        return socket
    }

    /// A DEALER with routing identity `identity` (empty: ZeroMQ picks one).
    public static func dealer(context: ZMQContext, identity: [UInt8] = [], lingerMilliseconds: Int32 = 200) throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, kind: .dealer, lingerMilliseconds: lingerMilliseconds)
        if !identity.isEmpty { try socket.setIdentity(identity) }
        return socket
    }

    deinit { close() }

    /// Closes the socket (idempotent). Pending outgoing messages get `ZMQ_LINGER` to leave.
    public func close() {
        if let handle {
            zmq_close(handle)
            self.handle = nil
        }
    }

    public var isClosed: Bool { handle == nil }

    // MARK: - Endpoints

    public func bind(_ endpoint: String) throws {
        guard zmq_bind(try open("zmq_bind"), endpoint) == 0 else { throw ZMQError.last("zmq_bind(\(endpoint))") }
    }

    public func connect(_ endpoint: String) throws {
        guard zmq_connect(try open("zmq_connect"), endpoint) == 0 else { throw ZMQError.last("zmq_connect(\(endpoint))") }
    }

    /// The endpoint last bound, with the real port after binding `tcp://127.0.0.1:*` (`ZMQ_LAST_ENDPOINT`).
    public func lastEndpoint() throws -> String {
        var buffer = [CChar](repeating: 0, count: 1024)
        var length = buffer.count
        let socket = try open("zmq_getsockopt")
        let status = buffer.withUnsafeMutableBytes { zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, $0.baseAddress, &length) }
        guard status == 0 else { throw ZMQError.last("zmq_getsockopt(ZMQ_LAST_ENDPOINT)") }
        buffer[buffer.count - 1] = 0
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: - Options

    /// Routing identity of this socket as its ROUTER peer sees it (set before `connect`; 1...255 bytes).
    public func setIdentity(_ identity: [UInt8]) throws {
        let socket = try open("zmq_setsockopt")
        let status = identity.withUnsafeBytes { zmq_setsockopt(socket, ZMQ_ROUTING_ID, $0.baseAddress, $0.count) }
        guard status == 0 else { throw ZMQError.last("zmq_setsockopt(ZMQ_ROUTING_ID)") }
    }

    /// Messages queued per peer before sends block or fail (default 1000).
    public func setSendHighWaterMark(_ messages: Int32) throws { try setOption(ZMQ_SNDHWM, messages, "ZMQ_SNDHWM") }
    public func setReceiveHighWaterMark(_ messages: Int32) throws { try setOption(ZMQ_RCVHWM, messages, "ZMQ_RCVHWM") }
    public func setLinger(milliseconds: Int32) throws { try setOption(ZMQ_LINGER, milliseconds, "ZMQ_LINGER") }
    /// A blocking send gives up with `.wouldBlock` after this long (-1: wait forever).
    public func setSendTimeout(milliseconds: Int32) throws { try setOption(ZMQ_SNDTIMEO, milliseconds, "ZMQ_SNDTIMEO") }
    /// A blocking receive gives up with `.wouldBlock` after this long (-1: wait forever).
    public func setReceiveTimeout(milliseconds: Int32) throws { try setOption(ZMQ_RCVTIMEO, milliseconds, "ZMQ_RCVTIMEO") }
    /// Queue messages only to completed connections (a DEALER then cannot pile up messages for a dead peer).
    public func setImmediate(_ enabled: Bool) throws { try setOption(ZMQ_IMMEDIATE, enabled ? 1 : 0, "ZMQ_IMMEDIATE") }

    /// Peers sending a larger frame are disconnected by ZeroMQ before the bytes reach Brickyard.
    public func setMaxMessageSize(_ bytes: Int64) throws {
        var value = bytes
        guard zmq_setsockopt(try open("zmq_setsockopt"), ZMQ_MAXMSGSIZE, &value, MemoryLayout<Int64>.size) == 0 else {
            throw ZMQError.last("zmq_setsockopt(ZMQ_MAXMSGSIZE)")
        }
    }

    func setOption(_ option: Int32, _ value: Int32, _ name: String) throws {
        var value = value
        guard zmq_setsockopt(try open("zmq_setsockopt"), option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQError.last("zmq_setsockopt(\(name))")
        }
    }

    // MARK: - Messages

    /// Sends `frames` as one multipart message (atomically: all frames or none reach the peer). On a ROUTER the
    /// first frame is the peer identity. `dontWait`: fail with `.wouldBlock` instead of blocking on a full pipe.
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws {
        let socket = try open("zmq_msg_send")
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
            if index < frames.count - 1 { flags |= ZMQ_SNDMORE }
            var message = zmq_msg_t()
            guard zmq_msg_init_size(&message, frame.count) == 0 else { throw ZMQError.last("zmq_msg_init_size(\(frame.count))") }
            if !frame.isEmpty, let data = zmq_msg_data(&message) {
                frame.withUnsafeBytes { source in
                    if let base = source.baseAddress { data.copyMemory(from: base, byteCount: source.count) }
                }
            }
            while true {
                if zmq_msg_send(&message, socket, flags) >= 0 { break }
                let error = ZMQError.last("zmq_msg_send")
                // Later frames of a message must not be lost to a signal: retry. The first frame is retried too,
                // since nothing has been queued yet.
                if error.kind == .interrupted { continue }
                zmq_msg_close(&message)
                throw error
            }
        }
    }

    /// Sends `prefix` frames then one frame of `lastFrameBytes` that `fill` writes straight into the ZeroMQ
    /// message's buffer (it returns the bytes written, which must be all of them), as one multipart message.
    public func send(prefix: [[UInt8]], lastFrameBytes: Int, dontWait: Bool = false,
                     fill: (UnsafeMutablePointer<UInt8>) -> Int) throws {
        let socket = try open("zmq_msg_send")
        var last = zmq_msg_t()
        guard zmq_msg_init_size(&last, lastFrameBytes) == 0 else { throw ZMQError.last("zmq_msg_init_size(\(lastFrameBytes))") }
        if lastFrameBytes > 0, let data = zmq_msg_data(&last) {
            let written = fill(data.assumingMemoryBound(to: UInt8.self))
            guard written == lastFrameBytes else {
                zmq_msg_close(&last)
                throw ZMQError(code: EINVAL, operation: "packing \(lastFrameBytes) bytes wrote \(written)")
            }
        }
        for frame in prefix {
            var message = zmq_msg_t()
            guard zmq_msg_init_size(&message, frame.count) == 0 else {
                zmq_msg_close(&last)
                throw ZMQError.last("zmq_msg_init_size(\(frame.count))")
            }
            if !frame.isEmpty, let data = zmq_msg_data(&message) {
                frame.withUnsafeBytes { source in
                    if let base = source.baseAddress { data.copyMemory(from: base, byteCount: source.count) }
                }
            }
            do {
                try sendFrame(&message, socket: socket, flags: (dontWait ? ZMQ_DONTWAIT : 0) | ZMQ_SNDMORE)
            } catch {
                zmq_msg_close(&last)
                throw error
            }
        }
        try sendFrame(&last, socket: socket, flags: dontWait ? ZMQ_DONTWAIT : 0)
    }

    /// Sends one initialised frame (ZeroMQ owns it afterwards); closes it on failure. Retries a signal's EINTR:
    /// later frames of a message must not be lost to a signal, and nothing is queued before the first succeeds.
    private func sendFrame(_ message: inout zmq_msg_t, socket: UnsafeMutableRawPointer, flags: Int32) throws {
        while true {
            if zmq_msg_send(&message, socket, flags) >= 0 { return }
            let error = ZMQError.last("zmq_msg_send")
            if error.kind == .interrupted { continue }
            zmq_msg_close(&message)
            throw error
        }
    }

    /// Receives one whole multipart message, blocking (up to `ZMQ_RCVTIMEO`) until one arrives.
    /// With `dontWait`, returns nil when nothing is queued. A hostile message with more than `maxFrames` frames
    /// is drained and comes back as `maxFrames + 1` frames (the excess replaced by one empty frame), a shape no
    /// protocol message has, so callers drop it by its frame count without holding the excess in memory.
    public func receive(dontWait: Bool = false, maxFrames: Int = 16) throws -> [[UInt8]]? {
        let socket = try open("zmq_msg_recv")
        var frames: [[UInt8]] = []
        var overflowed = false
        while true {
            var message = zmq_msg_t()
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            // Only the first frame may be absent; once it arrived the rest of the message is already queued.
            let flags: Int32 = (dontWait && frames.isEmpty) ? ZMQ_DONTWAIT : 0
            if zmq_msg_recv(&message, socket, flags) < 0 {
                let error = ZMQError.last("zmq_msg_recv")
                if error.kind == .interrupted && !frames.isEmpty { continue }
                if error.kind == .wouldBlock && frames.isEmpty && dontWait { return nil }
                throw error
            }
            let size = zmq_msg_size(&message)
            if frames.count >= maxFrames {
                if !overflowed { frames.append([]) }
                overflowed = true
            } else if size > 0, let data = zmq_msg_data(&message) {
                frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            } else {
                frames.append([])
            }
            if zmq_msg_more(&message) == 0 { return frames }
        }
    }

    /// Waits up to `timeoutMilliseconds` for a message; nil on timeout or when a signal interrupts the wait.
    public func receive(timeoutMilliseconds: Int) throws -> [[UInt8]]? {
        let ready = try ZMQPoll.readable([self], timeoutMilliseconds: timeoutMilliseconds)
        guard ready.first == true else { return nil }
        return try receive(dontWait: true)
    }

    func open(_ operation: String) throws -> UnsafeMutableRawPointer {
        guard let handle else { throw ZMQError(code: ENOTSOCK, operation: "\(operation) on a closed socket") }
        return handle
    }
}

/// `zmq_poll` over several sockets and, optionally, plain file descriptors (e.g. a `WakeSignal` another thread
/// writes to when it has news, so the owner of the sockets wakes at once instead of on its next timeout).
public enum ZMQPoll {
    /// Waits up to `timeoutMilliseconds` (-1: forever, 0: just check) until at least one socket has a message or
    /// one descriptor is readable. Returns one flag per socket, then one per descriptor, in order. A signal ends
    /// the wait early with every flag false, so callers' loops get to check their stop flags.
    public static func readable(_ sockets: [ZMQSocket], fileDescriptors: [Int32] = [],
                                timeoutMilliseconds: Int) throws -> [Bool] {
        var items = try sockets.map { socket in
            zmq_pollitem_t(socket: try socket.open("zmq_poll"), fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        }
        items += fileDescriptors.map { zmq_pollitem_t(socket: nil, fd: $0, events: Int16(ZMQ_POLLIN), revents: 0) }
        let count = items.count
        let status = items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, Int32(count), timeoutMilliseconds) }
        if status < 0 {
            let error = ZMQError.last("zmq_poll")
            if error.kind == .interrupted { return Array(repeating: false, count: count) }
            throw error
        }
        return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }
}
