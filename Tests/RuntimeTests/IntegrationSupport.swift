import BrickyardTestSupport
import Foundation
import MergeEngine
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `brickyard` executable (next to the test bundle in .build/<triple>/debug) as child processes,
/// with output captured to files, every wait bounded, and every child killed when the test ends.
final class ProcessHarness: @unchecked Sendable {
    // @unchecked: each test owns its harness and uses it from its own task only.
    let directory: TestDirectory
    private var children: [Process] = []
    private var logCount = 0

    init(_ label: String) throws {
        directory = try TestDirectory(label)
    }

    /// The brickyard binary built with the tests.
    static let executable: String = BrickyardExecutable.path ?? "brickyard"

    var path: String { directory.path }

    /// Starts `brickyard ARGS`; stdout and stderr go to numbered files in the test directory.
    @discardableResult
    func launch(_ arguments: [String], environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_NUM_THREADS"] = "1"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        logCount += 1
        let log = path + "/proc-\(logCount)-\(arguments.first ?? "x").log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        children.append(process)
        return process
    }

    /// Starts a worker against `endpoint` with extra (test) options.
    @discardableResult
    func worker(_ endpoint: String, _ extra: [String] = []) throws -> Process {
        try launch(["worker", "--connect", endpoint] + extra)
    }

    /// Everything a child wrote (for failure messages and checks).
    func output(of process: Process) -> String {
        guard let index = children.firstIndex(where: { $0 === process }) else { return "" }
        let name = (try? FileManager.default.contentsOfDirectory(atPath: path))?.first { $0.hasPrefix("proc-\(index + 1)-") }
        return name.flatMap { try? String(contentsOfFile: path + "/" + $0, encoding: .utf8) } ?? ""
    }

    /// Waits for `process` to exit; kills it and returns nil on timeout.
    func wait(_ process: Process, timeout: Duration = .seconds(60)) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    /// Starts a coordinator on an ephemeral loopback port and returns it with its real endpoint.
    func coordinator(job: String, out: String, _ extra: [String] = []) throws -> (Process, String) {
        let endpointFile = path + "/endpoint-\(UUID().uuidString.prefix(6)).txt"
        let process = try launch(["coordinator", job, "--bind", "tcp://127.0.0.1:*", "--out", out,
                                  "--endpoint-file", endpointFile] + extra)
        var endpoint = ""
        _ = eventually(timeout: .seconds(20)) {
            endpoint = ((try? String(contentsOfFile: endpointFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            return !endpoint.isEmpty || !process.isRunning
        }
        return (process, endpoint)
    }

    func killAll() {
        for child in children where child.isRunning { kill(child.processIdentifier, SIGKILL) }
        for child in children { child.waitUntilExit() }
    }

    /// Kills every child and removes the directory (kept when BRICKYARD_TEST_KEEP is set, for debugging).
    func finish() {
        killAll()
        if ProcessInfo.processInfo.environment["BRICKYARD_TEST_KEEP"] == nil { directory.remove() }
    }

    // MARK: jobs and outputs

    /// A job file over the peft-tiny fixtures in the test's directory (`TestDirectory.writeJob`).
    func writeJob(method: String = "cat", adapters: [String] = PeftTinyFixtures.adapterNames,
                  extra: String = "") throws -> String {
        try directory.writeJob(method: method, adapters: adapters, extra: extra)
    }

    func adapterBytes(_ out: String) -> Data? {
        FileManager.default.contents(atPath: out + "/adapter_model.safetensors")
    }

    func report(_ out: String) throws -> MergeReport {
        let data = try #require(FileManager.default.contents(atPath: out + "/merge-report.json"))
        return try MergeReport.decode(data)
    }

    /// The reference output: the in-process engine.
    func inProcessReference(job: String) throws -> Data {
        let out = path + "/reference"
        let process = try launch(["merge", job, "--out", out, "--in-process"])
        let status = wait(process)
        #expect(status == 0, "in-process merge failed: \(output(of: process))")
        return try #require(adapterBytes(out))
    }

    func recordCount(_ checkpoint: String) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: checkpoint)) ?? []).count { $0.hasSuffix(".rec") }
    }
}
