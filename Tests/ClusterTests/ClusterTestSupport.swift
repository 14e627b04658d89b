import BrickyardTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runs a tool found on PATH to completion (`CapturedRun.run`).
@discardableResult
func runTool(_ tool: String, _ arguments: [String], environment: [String: String] = [:]) throws -> CapturedRun {
    try CapturedRun.run("/usr/bin/env", [tool] + arguments, environment: environment)
}

/// A long-running child (coordinator, worker) with its output in a log file; killed by `stop()`.
final class Child: @unchecked Sendable {
    // @unchecked: owned by one test.
    let process = Process()
    let log: String

    init(_ command: [String], log: String, environment: [String: String] = [:]) throws {
        self.log = log
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_NUM_THREADS"] = "1"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Exit status, or nil if it did not end within `timeout` (then it is killed).
    func wait(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { stop(); return nil }
        return process.terminationStatus
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// The local Slurm cluster scripts/start-slurm runs (SLURM_CONF from the environment, else its default place).
enum LocalSlurm {
    static let configuration: String? = {
        let candidates = [ProcessInfo.processInfo.environment["SLURM_CONF"],
                          (ProcessInfo.processInfo.environment["BRICKYARD_SLURM_DIR"] ?? "/tmp/brickyard-slurm") + "/slurm.conf"]
        return candidates.compactMap { $0 }.first { FileManager.default.fileExists(atPath: $0) }
    }()

    static var environment: [String: String] { configuration.map { ["SLURM_CONF": $0] } ?? [:] }

    /// scripts/test sets this after starting Slurm: then an unreachable Slurm fails the tests instead of
    /// skipping them.
    static let required = ProcessInfo.processInfo.environment["BRICKYARD_REQUIRE_SLURM"] == "1"

    static let reachable: Bool = {
        guard configuration != nil,
              let ping = try? runTool("scontrol", ["ping"], environment: environment) else { return false }
        return ping.status == 0 && ping.stdout.contains("UP")
    }()

    /// Whether Slurm tests run; prints why not when they are skipped.
    static let enabled: Bool = {
        if reachable || required { return true }
        print("Slurm tests skipped: no Slurm controller answers (start one with scripts/start-slurm; scripts/test does)")
        return false
    }()

    /// Whether any process of job `jobID` (its batch script or a step) still runs on this node: `scontrol
    /// listpids` asks the node's slurmd, exit 0 with a PID table while the job has processes here, 1 once none
    /// remain (independent of where slurmd spools the script).
    static func jobHasProcessesOnThisNode(jobID: String) -> Bool {
        guard let listed = try? runTool("scontrol", ["listpids", jobID], environment: environment) else { return false }
        return listed.status == 0 && listed.stdout.split(separator: "\n").count > 1
    }

    static func jobState(_ id: String) -> String {
        (try? runTool("squeue", ["-h", "-j", id, "-t", "all", "-o", "%T"], environment: environment))?
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }
}

/// `GET url` (`http://HOST:PORT/PATH`) over a plain TCP socket, the way a Prometheus server scrapes: the status
/// code and the body, or nil when nothing answers.
func httpGet(_ url: String, timeoutSeconds: Int = 5) -> (status: Int, body: String)? {
    guard url.hasPrefix("http://") else { return nil }
    let rest = url.dropFirst("http://".count)
    let hostPort = rest.prefix { $0 != "/" }
    let path = rest.dropFirst(hostPort.count)
    guard let colon = hostPort.lastIndex(of: ":") else { return nil }
    let host = String(hostPort[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    let port = String(hostPort[hostPort.index(after: colon)...])
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var found: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, port, &hints, &found) == 0, let info = found else { return nil }
    defer { freeaddrinfo(found) }
    let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    guard connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else { return nil }
    let request = Array("GET \(path.isEmpty ? "/" : path) HTTP/1.1\r\nHost: \(hostPort)\r\nConnection: close\r\n\r\n".utf8)
    guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        response += buffer.prefix(count)
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n"), let status = Int(text.split(separator: " ").dropFirst().first ?? "") else { return nil }
    return (status, String(text[split.upperBound...]))
}
