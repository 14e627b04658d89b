@testable import Coordinator
import BrickyardTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Prometheus metrics (issue 10 item 5): the exposition served on `--metrics-bind`, scraped during real runs by
/// an HTTP client that parses the text format, and by a real Prometheus server when one is installed.
@Suite struct MetricsEndpointTests {
    @Test(arguments: [
        ("127.0.0.1:9464", "127.0.0.1", "9464"), ("0.0.0.0:0", "0.0.0.0", "0"), ("[::1]:80", "::1", "80"),
        (":9000", "", "9000"), ("localhost:1", "localhost", "1"),
    ])
    func addressesSplitIntoHostAndPort(address: String, host: String, port: String) throws {
        let split = try MetricsEndpoint.split(address)
        #expect(split.host == host && split.port == port)
    }

    @Test(arguments: ["9464", "host:", "host:port", "[::1]9464", "127.0.0.1:70000", ""])
    func badAddressesAreRefused(address: String) {
        #expect(throws: CoordinatorError.self) { try MetricsEndpoint.split(address) }
    }

    @Test func servesTheExpositionAndRefusesEverythingElse() throws {
        let metrics = CoordinatorMetrics()
        metrics.tasks.set(Int64(7))
        metrics.taskSeconds.record(0.3)
        let endpoint = MetricsEndpoint(metrics: metrics, logger: .init(label: "test"))
        try endpoint.start(address: "127.0.0.1:0")
        defer { endpoint.stop() }
        let port = try #require(Int(endpoint.boundAddress.split(separator: ":").last ?? ""))
        let ok = try HTTPProbe.request(port: port, path: "/metrics")
        #expect(ok.status == 200)
        #expect(ok.headers.lowercased().contains("content-type: text/plain; version=0.0.4"))
        let samples = try Exposition.parse(ok.body)
        #expect(samples["brickyard_tasks"] == 7)
        #expect(samples["brickyard_task_seconds_count"] == 1)
        #expect(samples["brickyard_task_seconds_bucket{le=\"0.5\"}"] == 1)
        #expect(samples["brickyard_task_seconds_bucket{le=\"0.25\"}"] == 0)
        #expect(try HTTPProbe.request(port: port, path: "/").status == 404)
        #expect(try HTTPProbe.request(port: port, path: "/metrics", method: "POST").status == 405)
        #expect(try HTTPProbe.raw(port: port, Array("garbage\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 400"))
        // A client that connects and says nothing costs the endpoint at most its read timeout.
        let silent = try HTTPProbe.connect(port: port)
        defer { close(silent) }
        #expect(try HTTPProbe.request(port: port, path: "/metrics").status == 200)
    }
}

/// Scrapes during real runs.
@Suite(.serialized) struct MetricsScrapeTests {
    /// The `metrics.address=HOST:PORT` a coordinator logs once its endpoint listens.
    static func metricsPort(_ log: String) -> Int? {
        log.split(separator: " ").first { $0.hasPrefix("metrics.address=") }
            .flatMap { $0.split(separator: ":").last }.flatMap { Int($0) }
    }

    @Test func scrapeDuringARunShowsProgressWorkersBytesAndCheckpoints() throws {
        let h = try ProcessHarness("metrics")
        defer { h.finish() }
        let job = try h.writeJob()
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out"
        let (coordinator, endpoint) = try h.coordinator(job: job, out: out, ["--metrics-bind", "127.0.0.1:0", "--log-level", "info"]
                                                        + IntegrationTests.fast)
        try #require(!endpoint.isEmpty, "\(h.output(of: coordinator))")
        var port: Int?
        #expect(eventually(timeout: .seconds(10)) { port = Self.metricsPort(h.output(of: coordinator)); return port != nil })
        let metricsPort = try #require(port, "\(h.output(of: coordinator))")
        let modules = try #require(Self.loggedModules(h.output(of: coordinator)))
        let before = try Exposition.parse(try HTTPProbe.request(port: metricsPort, path: "/metrics").body)
        #expect(before["brickyard_tasks"] == modules)
        #expect(before["brickyard_tasks_done"] == 0)
        #expect(before["brickyard_workers_alive"] == 0)
        // Two slow workers: the run lasts a few seconds, long enough to watch it.
        for _ in 0..<2 { try h.worker(endpoint, ["--slow-tasks-ms", "400"]) }
        var during: [String: Double] = [:]
        let watched = eventually(timeout: .seconds(30)) {
            guard let body = try? HTTPProbe.request(port: metricsPort, path: "/metrics").body,
                  let samples = try? Exposition.parse(body) else { return false }
            during = samples
            return (samples["brickyard_tasks_done"] ?? 0) >= 2 && (samples["brickyard_tasks_done"] ?? 0) < modules
        }
        #expect(watched, "no scrape caught the run in progress: \(during)")
        #expect(during["brickyard_workers_alive"] == 2)
        #expect((during["brickyard_bytes_sent_total"] ?? 0) > 0)
        #expect((during["brickyard_bytes_received_total"] ?? 0) > 0)
        #expect(during["brickyard_checkpoint_writes_total"] == during["brickyard_tasks_done"])
        #expect(during["brickyard_task_seconds_count"] == during["brickyard_tasks_done"])
        #expect(during["brickyard_task_seconds_bucket{le=\"+Inf\"}"] == during["brickyard_task_seconds_count"])
        #expect((during["brickyard_task_seconds_sum"] ?? 0) > 0)
        #expect(during["brickyard_task_retries_total"] == 0)
        #expect(h.wait(coordinator) == 0, "\(h.output(of: coordinator))")
        #expect(h.adapterBytes(out) == reference)
    }

    /// The `modules=N` of the coordinator's "listening" line.
    static func loggedModules(_ log: String) -> Double? {
        log.split(separator: "\n").first { $0.contains("coordinator listening") }?
            .split(separator: " ").first { $0.hasPrefix("modules=") }.flatMap { Double($0.dropFirst("modules=".count)) }
    }

    static let prometheus = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A real Prometheus server scrapes the endpoint every second during a run; its query API must then
    /// return the coordinator's series with `up == 1`.
    @Test(.enabled(if: prometheus != nil, "prometheus is not installed (scripts/test installs Debian's prometheus)"))
    func realPrometheusScrapesARun() throws {
        let h = try ProcessHarness("prometheus")
        defer { h.finish() }
        let job = try h.writeJob()
        let (coordinator, endpoint) = try h.coordinator(job: job, out: h.path + "/out", ["--metrics-bind", "127.0.0.1:0", "--log-level", "info"]
                                                        + IntegrationTests.fast)
        try #require(!endpoint.isEmpty, "\(h.output(of: coordinator))")
        var port: Int?
        #expect(eventually(timeout: .seconds(10)) { port = Self.metricsPort(h.output(of: coordinator)); return port != nil })
        let metricsPort = try #require(port)
        let webPort = try HTTPProbe.freePort()
        let config = h.path + "/prometheus.yml"
        try """
        global: {scrape_interval: 1s, evaluation_interval: 1s}
        scrape_configs:
          - job_name: brickyard
            static_configs: [{targets: ["127.0.0.1:\(metricsPort)"]}]
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: try #require(Self.prometheus))
        server.arguments = ["--config.file=\(config)", "--storage.tsdb.path=\(h.path)/tsdb",
                            "--web.listen-address=127.0.0.1:\(webPort)", "--log.level=warn"]
        let log = h.path + "/prometheus.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        server.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        server.standardError = server.standardOutput
        try server.run()
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        // The run is paused (no workers yet) until Prometheus has scraped it once.
        func query(_ expression: String) -> Double? {
            let path = "/api/v1/query?query=" + (expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            guard let reply = try? HTTPProbe.request(port: webPort, path: path), reply.status == 200,
                  let object = try? JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any],
                  let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
                  let value = result.first?["value"] as? [Any], value.count == 2, let text = value[1] as? String else { return nil }
            return Double(text)
        }
        #expect(eventually(timeout: .seconds(60)) { query("up{job=\"brickyard\"}") == 1 },
                "Prometheus never scraped the endpoint: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        #expect(query("brickyard_tasks") == Self.loggedModules(h.output(of: coordinator)))
        for _ in 0..<2 { try h.worker(endpoint, ["--slow-tasks-ms", "700"]) }
        #expect(eventually(timeout: .seconds(60)) { (query("max_over_time(brickyard_workers_alive[1m])") ?? 0) >= 1 && (query("brickyard_tasks_done") ?? 0) >= 1 },
                "Prometheus saw no progress")
        #expect(h.wait(coordinator) == 0, "\(h.output(of: coordinator))")
    }
}

/// The Prometheus text format (0.0.4), strictly: `# HELP`/`# TYPE` comments and `name{labels} value` samples;
/// anything else is an error. Returns samples keyed by `name{labels}` as written.
enum Exposition {
    struct Malformed: Error, CustomStringConvertible { var description: String }

    static func parse(_ text: String) throws -> [String: Double] {
        var samples: [String: Double] = [:]
        var typed: Set<String> = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else {
                    throw Malformed(description: "bad TYPE line: \(line)")
                }
                typed.insert(String(parts[2]))
                continue
            }
            if line.hasPrefix("# HELP ") || line.hasPrefix("#") { continue }
            guard let space = line.lastIndex(of: " ") else { throw Malformed(description: "no value: \(line)") }
            let key = String(line[..<space])
            guard let value = Double(line[line.index(after: space)...]) ?? (line.hasSuffix("+Inf") ? .infinity : nil) else {
                throw Malformed(description: "bad value: \(line)")
            }
            let name = String(key.prefix { $0 != "{" })
            guard let first = name.first, first.isLetter || first == "_" || first == ":",
                  name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }) else {
                throw Malformed(description: "bad metric name: \(line)")
            }
            let family = ["_bucket", "_sum", "_count"].reduce(name) { $0.hasSuffix($1) && !typed.contains($0) ? String($0.dropLast($1.count)) : $0 }
            guard typed.contains(family) else { throw Malformed(description: "sample before its TYPE: \(line)") }
            samples[key] = value
        }
        return samples
    }
}

/// A tiny HTTP/1.1 client over a POSIX socket (loopback only), so the tests read exactly what went over the wire.
enum HTTPProbe {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else {
            close(fd)
            throw Failure(description: "connect to 127.0.0.1:\(port) failed")
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func raw(port: Int, _ request: [UInt8]) throws -> String {
        let fd = try connect(port: port)
        defer { close(fd) }
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            response += buffer[0..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }

    static func request(port: Int, path: String, method: String = "GET") throws -> (status: Int, headers: String, body: String) {
        let text = try raw(port: port, Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8))
        guard let split = text.range(of: "\r\n\r\n") else { throw Failure(description: "no header end in \(text.prefix(200))") }
        let headers = String(text[..<split.lowerBound])
        let statusCode = headers.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (statusCode, headers, String(text[split.upperBound...]))
    }

    /// A loopback port nobody listens on right now (for a server that cannot pick its own).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw Failure(description: "cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
