import BrickyardTestSupport
@testable import Coordinator
import Foundation
import Logging
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `LocalWorkerPool.stopAll` on workers that have not yet installed their stop handler: a merge stopped in the
/// first moments of its workers' lives (the worker that "ended by signal" in `CleanStopTests`). A worker starts
/// with SIGTERM's default action; the pool must wait until it catches the signal, never end it by the signal.
@Suite struct LocalWorkerPoolStopTests {
    @Test("workers stopped while still starting up leave with status 0, not by the signal")
    func stopDuringWorkerStartup() throws {
        let directory = try TestDirectory("pool-stop")
        defer { directory.remove() }
        // A slow start on demand: a shell (SIGTERM at its default action) sleeps, then becomes `brickyard worker`
        // (2 s: the stop below lands inside it even when a loaded machine stalls this thread).
        let wrapper = directory.path + "/slow-worker"
        try "#!/bin/sh\nsleep 2\nexec '\(ProcessHarness.executable)' \"$@\"\n"
            .write(toFile: wrapper, atomically: true, encoding: .utf8)
        #expect(chmod(wrapper, 0o755) == 0)
        let capture = LogCapture()
        let logger = Logger(label: "pool-stop-test") { _ in capture }
        // Nobody listens at the endpoint: the workers only start, try to connect and are stopped.
        let pool = LocalWorkerPool(configuration: .init(executable: wrapper, endpoint: "ipc://\(directory.path)/nobody",
                                                        count: 2, maxRespawns: 0),
                                   logger: logger)
        try pool.start()
        // The stop lands while every worker still has the default action (or the test proves nothing).
        let starting = pool.processIdentifiers.map { SignalDisposition.handles(SIGTERM, pid: $0) }
        #expect(starting == [false, false], "dispositions at the stop: \(starting)")
        pool.stopAll(grace: .seconds(60))
        let endings = capture.entries.filter { $0.message == "local worker ended" }
        #expect(endings.count == 2, "\(capture.entries)")
        for ending in endings {
            #expect(ending.metadata["ended.by"] == "exit" && ending.metadata["status"] == "0", "\(ending)")
        }
    }

    @Test("SigCgt and SigIgn decide; a status without them is unknown",
          arguments: [("SigIgn:\t0000000000000000\nSigCgt:\t0000000000004000\n", true),
                      ("SigIgn:\t0000000000004000\nSigCgt:\t0000000000000000\n", true),
                      ("SigIgn:\t0000000000000002\nSigCgt:\t0000000180000000\n", false),
                      ("SigIgn:\t0000000000000000\n", nil),
                      ("SigIgn:\tzz\nSigCgt:\t0000000000004000\n", nil)] as [(String, Bool?)])
    func parsesStatus(status: String, expected: Bool?) {
        #expect(SignalDisposition.handles(SIGTERM, status: status) == expected)
    }

    @Test("a live process: default action, then ignored")
    func liveDispositions() throws {
        func start(_ script: String) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", script]
            try process.run()
            return process
        }
        let plain = try start("exec sleep 30")
        let ignoring = try start("trap '' TERM; exec sleep 30")
        defer {
            for process in [plain, ignoring] { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        }
        // Both end as `sleep`; the second inherits the ignored SIGTERM through exec.
        #expect(eventually(timeout: .seconds(20)) { Self.command(plain) == "sleep" && Self.command(ignoring) == "sleep" })
        #expect(SignalDisposition.handles(SIGTERM, pid: plain.processIdentifier) == false)
        #expect(SignalDisposition.handles(SIGTERM, pid: ignoring.processIdentifier) == true)
        #expect(SignalDisposition.handles(SIGTERM, pid: -1) == nil)
    }

    static func command(_ process: Process) -> String? {
        (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Keeps every log entry (message and metadata) for the test to inspect.
final class LogCapture: LogHandler, @unchecked Sendable {
    // @unchecked: `entries` is guarded by `lock`; the LogHandler properties are set before use only.
    struct Entry: CustomStringConvertible {
        let message: String
        let metadata: [String: String]
        var description: String { "\(message) \(metadata)" }
    }

    private let lock = NSLock()
    private var stored: [Entry] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    var entries: [Entry] { lock.withLock { stored } }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
             function: String, line: UInt) {
        let merged = self.metadata.merging(metadata ?? [:]) { $1 }.mapValues { "\($0)" }
        lock.withLock { stored.append(Entry(message: "\(message)", metadata: merged)) }
    }
}
