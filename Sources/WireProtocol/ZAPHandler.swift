import Foundation
import Logging

/// ZeroMQ's authentication handler (ZAP, RFC 27) for CURVE: a thread owning a REP socket bound to
/// `inproc://zeromq.zap.01` in the coordinator's context. For each connection that completes the CURVE handshake
/// ZeroMQ asks it whether the client's public key may join; it answers 200 for the allowed keys and 400 for
/// every other key or mechanism, and logs each refusal with the key and address.
///
/// libzmq fails *open*: with no handler bound it accepts every CURVE client. So the coordinator starts this
/// handler, proves it answers (`probe`) before binding its ROUTER, and stops serving if it ever stops running:
/// `isRunning` turns false before the handler's socket closes and never turns true again, and the coordinator
/// checks it before handling each message, so no message of a peer admitted without the handler is handled.
///
/// Thread ownership: the REP socket is created, used and closed by the handler thread only; other threads
/// touch only the lock-protected state, hence `@unchecked Sendable`.
public final class ZAPHandler: @unchecked Sendable {
    public static let endpoint = "inproc://zeromq.zap.01"

    public let domain: String
    private let context: ZMQContext
    private let allowed: Set<String>
    private let logger: Logger
    private let lock = NSLock()
    private var running = false
    private var stopRequested = false
    private var refusals = 0
    private let exited = DispatchSemaphore(value: 0)
    private var thread: Thread?

    public init(context: ZMQContext, allowedKeys: Set<String>, domain: String, logger: Logger) {
        self.context = context
        self.allowed = allowedKeys
        self.domain = domain
        self.logger = logger
    }

    /// Starts the thread and returns once its socket is bound (throws if binding failed, e.g. another handler
    /// already owns the endpoint in this context).
    public func start() throws {
        let ready = DispatchSemaphore(value: 0)
        let bindError = LockedBox<(any Error)?>(nil)
        let thread = Thread { [self] in
            let socket: ZMQSocket
            do {
                socket = try ZMQSocket(context: context, kind: .reply, lingerMilliseconds: 0)
                try socket.bind(Self.endpoint)
            } catch {
                bindError.value = error
                ready.signal()
                exited.signal()
                return
            }
            lock.withLock { running = true }
            ready.signal()
            serve(socket)
            // Not running from here on, *before* the socket closes: once the endpoint is gone libzmq admits every
            // CURVE key, and the coordinator must see `isRunning == false` before it handles any such peer.
            lock.withLock { running = false }
            socket.close()
            exited.signal()
        }
        thread.name = "brickyard-zap"
        self.thread = thread
        thread.start()
        ready.wait()
        if let error = bindError.value { throw error }
    }

    /// Whether the handler thread is serving.
    public var isRunning: Bool { lock.withLock { running } }

    /// Peers refused so far.
    public var refusalCount: Int { lock.withLock { refusals } }

    /// Stops the thread and waits for it to close its socket (idempotent).
    public func stop() {
        let wasStarted: Bool = lock.withLock {
            let started = thread != nil && !stopRequested
            stopRequested = true
            return started
        }
        if wasStarted { exited.wait() }
        // The thread's closure holds `self`, and `self` the thread: drop the thread so the handler, and with it the
        // context, can be freed. Until the context is terminated (`zmq_ctx_term`), nothing waits for the I/O
        // thread to flush queued messages, so a coordinator's final Disconnect could be lost at exit.
        lock.withLock { thread = nil }
    }

    /// Sends one ZAP request to whatever handler is bound in `context` and waits up to `timeoutMilliseconds` for a
    /// well-formed reply. Throws when none comes: the caller must not bind a CURVE socket (libzmq would accept
    /// every key).
    public static func probe(context: ZMQContext, timeoutMilliseconds: Int = 2000) throws {
        let socket = try ZMQSocket(context: context, kind: .request, lingerMilliseconds: 0)
        defer { socket.close() }
        try socket.connect(endpoint)
        let requestID = Array("probe-\(UInt32.random(in: 0...UInt32.max))".utf8)
        try socket.send([Array("1.0".utf8), requestID, Array("brickyard-probe".utf8), Array("127.0.0.1".utf8), [],
                         Array("NULL".utf8)], dontWait: true)
        guard let reply = try socket.receive(timeoutMilliseconds: timeoutMilliseconds) else {
            throw ZAPHandlerError("no ZAP handler answered within \(timeoutMilliseconds) ms; refusing to start a CURVE socket that would accept every key")
        }
        guard reply.count == 6, reply[0] == Array("1.0".utf8), reply[1] == requestID else {
            throw ZAPHandlerError("the ZAP handler answered with a malformed reply; refusing to start")
        }
    }

    // MARK: - Serving

    private func serve(_ socket: ZMQSocket) {
        while !lock.withLock({ stopRequested }) {
            let frames: [[UInt8]]
            do {
                guard let received = try socket.receive(timeoutMilliseconds: 100) else { continue }
                frames = received
            } catch {
                logger.error("ZAP handler failed; stopping (the coordinator will refuse to serve)", metadata: ["error": "\(error)"])
                return
            }
            let reply = answer(frames)
            do {
                try socket.send(reply)
            } catch {
                logger.error("ZAP handler cannot reply; stopping", metadata: ["error": "\(error)"])
                return
            }
        }
    }

    /// The reply to one request: [version, request id, status code, status text, user id, metadata].
    func answer(_ frames: [[UInt8]]) -> [[UInt8]] {
        func reply(_ requestID: [UInt8], _ status: String, _ text: String, user: String = "") -> [[UInt8]] {
            [Array("1.0".utf8), requestID, Array(status.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        guard frames.count >= 6, frames[0] == Array("1.0".utf8) else {
            logger.warning("malformed ZAP request refused", metadata: ["frames": "\(frames.count)"])
            return reply(frames.count > 1 ? frames[1] : [], "500", "malformed ZAP request")
        }
        let requestID = frames[1]
        let requestDomain = String(decoding: frames[2], as: UTF8.self)
        let address = String(decoding: frames[3], as: UTF8.self)
        let mechanism = String(decoding: frames[5], as: UTF8.self)
        if requestDomain == "brickyard-probe" { return reply(requestID, "400", "probe") }
        guard mechanism == "CURVE", frames.count == 7, let key = CurveKeyFiles.z85(frames[6]) else {
            countRefusal()
            logger.warning("refused a peer without CURVE credentials", metadata: ["peer.address": "\(address)", "mechanism": "\(mechanism)"])
            return reply(requestID, "400", "CURVE required")
        }
        guard requestDomain == domain, allowed.contains(key) else {
            countRefusal()
            logger.warning("refused a worker with an unknown CURVE key", metadata: [
                "peer.address": "\(address)", "peer.key": "\(key)", "domain": "\(requestDomain)"])
            return reply(requestID, "400", "unknown CURVE key \(key)")
        }
        logger.debug("admitted a CURVE key", metadata: ["peer.address": "\(address)", "peer.key": "\(key)"])
        return reply(requestID, "200", "OK", user: key)
    }

    private func countRefusal() { lock.withLock { refusals += 1 } }
}

/// The ZAP handler could not be started or proven to run.
public struct ZAPHandlerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A value shared between two threads under a lock.
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
