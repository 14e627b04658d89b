import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 responder for Prometheus scrapes: `GET /metrics` (and `HEAD`) returns the exposition
/// text; every other path is 404, every other method 405; each connection carries one request and is closed.
///
/// Why not swift-nio's NIOHTTP1: the endpoint serves one scraper every few seconds, a job the coordinator's
/// process needs no event loop for; NIO would add several minutes to every clean (CI) build on two cores. This
/// is one thread, blocking POSIX sockets, a 2 s read timeout, an 8 KiB request limit and no keep-alive: a slow
/// or hostile client costs at most one thread-blocked 2 s and cannot make it allocate more than 8 KiB.
///
/// Thread ownership: the listening socket and every connection belong to the serving thread; `stop()` only sets
/// a flag and waits for that thread.
public final class MetricsEndpoint: @unchecked Sendable {
    private let metrics: CoordinatorMetrics
    private let logger: Logger
    private let lock = NSLock()
    private var stopRequested = false
    private var listener: Int32 = -1
    private let exited = DispatchSemaphore(value: 0)
    private var started = false
    /// The address actually bound, `HOST:PORT` (port resolved when 0 was asked for).
    public private(set) var boundAddress = ""

    public init(metrics: CoordinatorMetrics, logger: Logger) {
        self.metrics = metrics
        self.logger = logger
    }

    /// Binds `address` (`HOST:PORT`, `[IPv6]:PORT`; port 0 picks a free one) and starts serving.
    public func start(address: String) throws {
        let (host, port) = try Self.split(address)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var results: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host.isEmpty ? nil : host, port, &hints, &results)
        guard status == 0, let first = results else {
            throw CoordinatorError(.transport, "--metrics-bind \(address): cannot resolve: \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(results) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), first.pointee.ai_protocol)
        guard fd >= 0 else { throw CoordinatorError(.transport, "--metrics-bind \(address): socket: \(Self.errnoText())") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, listen(fd, 16) == 0 else {
            let text = Self.errnoText()
            close(fd)
            throw CoordinatorError(.transport, "--metrics-bind \(address): cannot listen: \(text)")
        }
        listener = fd
        boundAddress = Self.localAddress(fd) ?? address
        started = true
        let thread = Thread { [self] in
            serve()
            close(listener)
            exited.signal()
        }
        thread.name = "brickyard-metrics"
        thread.start()
        logger.info("metrics listening", metadata: ["metrics.address": "\(boundAddress)", "path": "/metrics"])
    }

    /// Stops serving and closes the socket (idempotent).
    public func stop() {
        let wait: Bool = lock.withLock {
            defer { stopRequested = true }
            return started && !stopRequested
        }
        if wait { exited.wait() }
    }

    private var isStopping: Bool { lock.withLock { stopRequested } }

    private func serve() {
        while !isStopping {
            var pollItem = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&pollItem, 1, 200) > 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            respond(on: connection)
            close(connection)
        }
    }

    private func respond(on connection: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while request.count < 8192 {
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            request.append(contentsOf: buffer[0..<count])
            if Self.headerEnd(request) != nil { break }
        }
        guard Self.headerEnd(request) != nil else {
            send(connection, status: "400 Bad Request", body: Array("incomplete or oversized request\n".utf8))
            return
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            send(connection, status: "400 Bad Request", body: Array("malformed request line\n".utf8))
            return
        }
        let method = parts[0], path = parts[1].split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        guard method == "GET" || method == "HEAD" else {
            send(connection, status: "405 Method Not Allowed", body: Array("only GET and HEAD\n".utf8), extra: "Allow: GET, HEAD\r\n")
            return
        }
        guard path == "/metrics" else {
            send(connection, status: "404 Not Found", body: Array("metrics are at /metrics\n".utf8))
            return
        }
        send(connection, status: "200 OK", body: metrics.exposition(), contentType: "text/plain; version=0.0.4; charset=utf-8",
             headOnly: method == "HEAD")
    }

    private func send(_ connection: Int32, status: String, body: [UInt8], contentType: String = "text/plain; charset=utf-8",
                      extra: String = "", headOnly: Bool = false) {
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\(extra)Connection: close\r\n\r\n"
        var bytes = Array(head.utf8)
        if !headOnly { bytes += body }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return }
            offset += written
        }
    }

    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4) where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }

    /// `HOST:PORT`, `[V6]:PORT` or `:PORT` (all interfaces) → (host, port).
    static func split(_ address: String) throws -> (host: String, port: String) {
        let bad = CoordinatorError(.transport, "--metrics-bind \(address): expected HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464, 0.0.0.0:0)")
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]"), address[address.index(after: close)...].hasPrefix(":") else { throw bad }
            let port = String(address[address.index(close, offsetBy: 2)...])
            guard !port.isEmpty, port.allSatisfy(\.isNumber) else { throw bad }
            return (String(address[address.index(after: address.startIndex)..<close]), port)
        }
        guard let colon = address.lastIndex(of: ":") else { throw bad }
        let port = String(address[address.index(after: colon)...])
        guard !port.isEmpty, port.allSatisfy(\.isNumber), Int(port).map({ $0 <= 65535 }) == true else { throw bad }
        return (String(address[..<colon]), port)
    }

    private static func localAddress(_ fd: Int32) -> String? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard status == 0 else { return nil }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let named = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), &service, socklen_t(service.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard named == 0 else { return nil }
        let hostText = String(cString: host), serviceText = String(cString: service)
        return hostText.contains(":") ? "[\(hostText)]:\(serviceText)" : "\(hostText):\(serviceText)"
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
