import BrickyardTestSupport
import Coordinator
import Foundation
import Testing
import WireProtocol
import Worker
#if canImport(Glibc)
import Glibc
#endif

/// CURVE encryption and authentication (issue 10 item 3): key files, and real coordinators and workers over
/// loopback TCP with allowed, unknown and mismatched keys.
@Suite struct CurveKeyFileTests {
    @Test func generatedKeyFilesHaveTheDocumentedFormatAndModes() throws {
        let dir = try TestDirectory("keys")
        defer { dir.remove() }
        let keys = dir.path + "/k"
        let run = try BrickyardExecutableRun(["keys", "generate", keys, "--name", "node-1"])
        #expect(run.status == 0, "\(run.stderr)")
        for (suffix, mode) in [(".secret", 0o600), (".public", 0o644)] {
            let path = keys + "/node-1" + suffix
            var info = stat()
            #expect(stat(path, &info) == 0)
            #expect(Int(info.st_mode & 0o777) == mode, "\(path)")
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.hasSuffix("\n") && CurveKeyFiles.isZ85Key(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        var info = stat()
        #expect(stat(keys, &info) == 0 && info.st_mode & 0o777 == 0o700)
        // The public file is the secret's public key.
        let pair = try CurveKeyFiles.readSecret(path: keys + "/node-1.secret")
        #expect(try CurveKeyFiles.readPublic(path: keys + "/node-1.public") == pair.publicKey)
        #expect(try CurveKeyFiles.readAllowed(directory: keys) == [pair.publicKey])
        // No silent overwrite; --force replaces with a new pair.
        let again = try BrickyardExecutableRun(["keys", "generate", keys, "--name", "node-1"])
        #expect(again.status != 0 && again.stderr.contains("already exists"))
        #expect(try BrickyardExecutableRun(["keys", "generate", keys, "--name", "node-1", "--force"]).status == 0)
        #expect(try CurveKeyFiles.readSecret(path: keys + "/node-1.secret") != pair)
    }

    @Test func unusableKeyFilesAreRefusedNamingTheFile() throws {
        let dir = try TestDirectory("badkeys")
        defer { dir.remove() }
        let pair = try CurveKeyPair.generate()
        try CurveKeyFiles.write(pair, directory: dir.path, name: "ok")
        // A secret others can read.
        chmod(dir.path + "/ok.secret", 0o644)
        #expect(throws: CurveKeyError.self) { try CurveKeyFiles.readSecret(path: dir.path + "/ok.secret") }
        // Not a key.
        try "hello\n".write(toFile: dir.path + "/bad.public", atomically: true, encoding: .utf8)
        do {
            _ = try CurveKeyFiles.readPublic(path: dir.path + "/bad.public")
            Issue.record("a malformed key was accepted")
        } catch {
            #expect("\(error)".contains("bad.public"))
        }
        // An allow directory with no keys admits nobody: refused as a configuration error.
        let empty = dir.path + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        #expect(throws: CurveKeyError.self) { try CurveKeyFiles.readAllowed(directory: empty) }
        #expect(throws: CurveKeyError.self) { try CurveKeyFiles.write(pair, directory: dir.path, name: "../x") }
        // Comments and blank lines are ignored.
        try "# coordinator\n\n\(pair.publicKey)\n".write(toFile: dir.path + "/c.public", atomically: true, encoding: .utf8)
        #expect(try CurveKeyFiles.readPublic(path: dir.path + "/c.public") == pair.publicKey)
    }

    @Test(arguments: [
        ("ipc:///tmp/x.sock", true), ("tcp://127.0.0.1:5555", true), ("tcp://127.0.0.1:*", true),
        ("tcp://localhost:5555", true), ("tcp://[::1]:5555", true), ("tcp://0.0.0.0:5555", false),
        ("tcp://10.200.0.1:5555", false), ("tcp://eth0:5555", false), ("tcp://[::]:5555", false),
    ])
    func endpointScope(endpoint: String, local: Bool) {
        #expect(EndpointScope.isLocal(endpoint) == local)
    }
}

/// The `brickyard` binary run to completion (short commands).
func BrickyardExecutableRun(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: ProcessHarness.executable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

@Suite(.serialized) struct CurveIntegrationTests {
    /// Keys for one test: the coordinator's pair, an allowed worker pair (in `allow`) and an intruder's pair.
    struct Keys {
        let coordinatorSecret: String, coordinatorPublic: String
        let allow: String, workerSecret: String
        let intruderSecret: String, intruderPublic: String

        init(_ h: ProcessHarness) throws {
            let root = h.path + "/keys"
            for (dir, name) in [("coordinator", "coordinator"), ("workers", "worker"), ("other", "intruder")] {
                let run = try BrickyardExecutableRun(["keys", "generate", "\(root)/\(dir)", "--name", name])
                #expect(run.status == 0, "\(run.stderr)")
            }
            coordinatorSecret = root + "/coordinator/coordinator.secret"
            coordinatorPublic = root + "/coordinator/coordinator.public"
            allow = root + "/workers"
            workerSecret = root + "/workers/worker.secret"
            intruderSecret = root + "/other/intruder.secret"
            intruderPublic = root + "/other/intruder.public"
        }

        var coordinatorFlags: [String] { ["--curve-secret", coordinatorSecret, "--allow", allow] }
        var workerFlags: [String] { ["--curve-server-key", coordinatorPublic, "--curve-secret", workerSecret] }
    }

    @Test func allowedKeyJoinsAndTheBytesAreIdentical() throws {
        let h = try ProcessHarness("curve-ok")
        defer { h.finish() }
        let keys = try Keys(h)
        let job = try h.writeJob()
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out"
        let (coordinator, endpoint) = try h.coordinator(job: job, out: out, keys.coordinatorFlags + IntegrationTests.fast)
        try #require(!endpoint.isEmpty, "\(h.output(of: coordinator))")
        // Bounded reconnects: on a loaded machine the first worker may finish the job before the second starts.
        let bounded = ["--reconnect-max-ms", "500", "--max-failed-connections", "10"]
        let workers = try (0..<2).map { _ in try h.worker(endpoint, keys.workerFlags + bounded) }
        #expect(h.wait(coordinator) == 0, "\(h.output(of: coordinator))")
        #expect(h.adapterBytes(out) == reference)
        #expect(h.output(of: coordinator).contains("CURVE on"))
        var welcomed = 0
        for worker in workers {
            let status = h.wait(worker, timeout: .seconds(30))
            let joined = h.output(of: worker).contains("welcomed")
            if joined { welcomed += 1 }
            // A worker that joined is dismissed (0); one that came too late finds nobody and gives up (3).
            #expect(status == (joined ? WorkerExit.success : WorkerExit.coordinatorUnreachable), "\(h.output(of: worker))")
        }
        #expect(welcomed >= 1)
    }

    @Test func unknownWorkerKeyIsRefusedAndSaysWhy() throws {
        let h = try ProcessHarness("curve-unknown")
        defer { h.finish() }
        let keys = try Keys(h)
        let (coordinator, endpoint) = try h.coordinator(job: try h.writeJob(), out: h.path + "/out", keys.coordinatorFlags)
        try #require(!endpoint.isEmpty, "\(h.output(of: coordinator))")
        let intruder = try h.worker(endpoint, ["--curve-server-key", keys.coordinatorPublic, "--curve-secret", keys.intruderSecret])
        #expect(h.wait(intruder, timeout: .seconds(20)) == WorkerExit.curveRefused, "\(h.output(of: intruder))")
        let intruderKey = try CurveKeyFiles.readPublic(path: keys.intruderPublic)
        #expect(h.output(of: intruder).contains("refused this worker's CURVE key"))
        #expect(h.output(of: intruder).contains(intruderKey))
        #expect(eventually(timeout: .seconds(5)) { h.output(of: coordinator).contains("refused a worker with an unknown CURVE key") })
        // Nothing was handed out: the coordinator is still waiting for a worker with all modules to do.
        #expect(coordinator.isRunning)
        #expect(!h.output(of: coordinator).contains("worker joined"))
    }

    @Test func wrongServerKeyIsRefused() throws {
        let h = try ProcessHarness("curve-server")
        defer { h.finish() }
        let keys = try Keys(h)
        let (coordinator, endpoint) = try h.coordinator(job: try h.writeJob(), out: h.path + "/out", keys.coordinatorFlags)
        try #require(!endpoint.isEmpty, "\(h.output(of: coordinator))")
        // An allowed worker key, but it expects another server (a man in the middle, or a stale key file).
        let worker = try h.worker(endpoint, ["--curve-server-key", keys.intruderPublic, "--curve-secret", keys.workerSecret])
        #expect(h.wait(worker, timeout: .seconds(20)) == WorkerExit.curveRefused, "\(h.output(of: worker))")
        #expect(h.output(of: worker).contains("check that --curve-server-key is the coordinator's public key"))
        #expect(!h.output(of: coordinator).contains("worker joined"))
    }

    @Test func plaintextWorkerCannotJoinACurveCoordinator() throws {
        let h = try ProcessHarness("curve-plain")
        defer { h.finish() }
        let keys = try Keys(h)
        let (coordinator, endpoint) = try h.coordinator(job: try h.writeJob(), out: h.path + "/out", keys.coordinatorFlags)
        try #require(!endpoint.isEmpty, "\(h.output(of: coordinator))")
        let worker = try h.worker(endpoint)
        #expect(h.wait(worker, timeout: .seconds(20)) == WorkerExit.curveRefused, "\(h.output(of: worker))")
        #expect(h.output(of: worker).contains("the coordinator may require CURVE"))
        #expect(!h.output(of: coordinator).contains("worker joined"))
    }

    @Test func missingZAPHandlerRefusesToStart() throws {
        let h = try ProcessHarness("curve-nozap")
        defer { h.finish() }
        let keys = try Keys(h)
        let coordinator = try h.launch(["coordinator", try h.writeJob(), "--bind", "tcp://127.0.0.1:*", "--out", h.path + "/out",
                                        "--no-zap-handler"] + keys.coordinatorFlags)
        #expect(h.wait(coordinator, timeout: .seconds(20)) == 1)
        #expect(h.output(of: coordinator).contains("no ZAP handler answered"), "\(h.output(of: coordinator))")
        #expect(!h.output(of: coordinator).contains("coordinator listening"))
        #expect(!FileManager.default.fileExists(atPath: h.path + "/out"))
    }

    /// The ZAP handler dies mid-run (a test-only flag stops it once 2 modules are done). Fail closed: the
    /// coordinator stops serving at once, tells its workers to leave, exits 1 naming the reason and writes no
    /// output; what was finished stays checkpointed, and a rerun with a working handler resumes to the same bytes.
    @Test func zapHandlerDyingMidRunFailsClosedAndTheRerunResumes() throws {
        let h = try ProcessHarness("curve-zapdies")
        defer { h.finish() }
        let keys = try Keys(h)
        let job = try h.writeJob()
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out", checkpoint = h.path + "/checkpoint"
        // A generous liveness (20 s: a loaded machine can starve either side for seconds): a worker that took a late
        // heartbeat for a dead coordinator would reconnect, and with the handler stopped its new handshake can never
        // complete, so it would miss the Disconnect under test. A worker never told to leave stays silent for those
        // 20 s, so the 20 s wait for its exit below still fails.
        let common = keys.coordinatorFlags + ["--heartbeat-ms", "200", "--liveness", "100", "--checkpoint", checkpoint, "--log-level", "info"]
        let (coordinator, endpoint) = try h.coordinator(job: job, out: out, common + ["--test-stop-zap-after", "2"])
        try #require(!endpoint.isEmpty, "\(h.output(of: coordinator))")
        let worker = try h.launch(["worker", "--connect", endpoint] + keys.workerFlags,
                                  environment: [IntegrationTests.faults: "slow-tasks=300"])
        #expect(h.wait(coordinator, timeout: .seconds(90)) == 1, "\(h.output(of: coordinator))")
        let log = h.output(of: coordinator)
        #expect(log.contains("the ZAP authentication handler stopped; refusing to serve workers without it"), "\(log)")
        #expect(h.adapterBytes(out) == nil)
        let finished = h.recordCount(checkpoint)
        #expect(finished >= 2, "\(log)")
        // Its workers were told to leave (exit 0), not left to reconnect.
        #expect(h.wait(worker, timeout: .seconds(20)) == WorkerExit.success, "\(h.output(of: worker))")
        #expect(h.output(of: worker).contains("authentication handler stopped"), "\(h.output(of: worker))")

        let (rerun, again) = try h.coordinator(job: job, out: out, common)
        try #require(!again.isEmpty, "\(h.output(of: rerun))")
        try h.worker(again, keys.workerFlags)
        #expect(h.wait(rerun, timeout: .seconds(300)) == 0, "\(h.output(of: rerun))")
        #expect(h.adapterBytes(out) == reference)
        #expect(h.output(of: rerun).contains("resuming from checkpoint"), "\(h.output(of: rerun))")
        #expect(try h.report(out).runtime?.resumedModules == finished)
    }

    @Test func plaintextOnAPublicAddressWarnsLoudly() throws {
        let h = try ProcessHarness("curve-warn")
        defer { h.finish() }
        let job = try h.writeJob()
        let exposed = try h.launch(["coordinator", job, "--bind", "tcp://0.0.0.0:*", "--out", h.path + "/out1", "--log-level", "info"])
        #expect(eventually(timeout: .seconds(20)) { h.output(of: exposed).contains("coordinator listening") }, "\(h.output(of: exposed))")
        #expect(h.output(of: exposed).contains("WITHOUT encryption or authentication"))
        kill(exposed.processIdentifier, SIGTERM)
        #expect(h.wait(exposed, timeout: .seconds(10)) == 75)
        // Loopback is fine without CURVE: no warning.
        let (local, endpoint) = try h.coordinator(job: job, out: h.path + "/out2", ["--log-level", "info"])
        try #require(!endpoint.isEmpty)
        kill(local.processIdentifier, SIGTERM)
        #expect(h.wait(local, timeout: .seconds(10)) == 75)
        #expect(!h.output(of: local).contains("WITHOUT encryption"))
    }
}
