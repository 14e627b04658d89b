import BrickyardTestSupport
import AdapterIO
import Foundation
import MergeEngine
import Testing
import WireProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The distributed runtime end to end: the real `brickyard` binary, real processes and real sockets.
/// Every output is compared byte for byte with the in-process engine.
@Suite(.serialized) struct IntegrationTests {
    static let fast = ["--heartbeat-ms", "200", "--liveness", "3"]
    /// The workers' test-only fault injection variable (see Worker's `WorkerFaults`).
    static let faults = "BRICKYARD_TEST_WORKER_FAULTS"

    @Test(arguments: [1, 3])
    func mergeWithLocalWorkersEqualsInProcess(workers: Int) throws {
        let h = try ProcessHarness("merge-\(workers)")
        defer { h.finish() }
        let job = try h.writeJob()
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out"
        // Default heartbeats (1 s × 3): a loaded test machine must not cause spurious retries here.
        let merge = try h.launch(["merge", job, "--out", out, "--workers", "\(workers)"])
        #expect(h.wait(merge) == 0, "\(h.output(of: merge))")
        #expect(h.adapterBytes(out) == reference)
        let report = try h.report(out)
        #expect(report.runtime?.computedModules == report.modules.count)
        #expect(report.runtime?.resumedModules == 0)
        #expect(report.modules.allSatisfy { $0.workerID?.hasPrefix("local-") == true && ($0.attempts ?? 0) >= 1 && $0.seconds != nil })
    }

    @Test(arguments: ["lego", "svd", "ties", "dare_ties"])
    func seededMethodsAreIdenticalAcrossProcesses(method: String) throws {
        let h = try ProcessHarness("method-\(method)")
        defer { h.finish() }
        let job = try h.writeJob(method: method, extra: "rank: 4\nseed: 7\n")
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out"
        let merge = try h.launch(["merge", job, "--out", out, "--workers", "2"] + Self.fast)
        #expect(h.wait(merge) == 0, "\(h.output(of: merge))")
        #expect(h.adapterBytes(out) == reference)
    }

    @Test(arguments: ["shared", "inline"])
    func coordinatorWithThreeSeparateWorkersOverTCP(inputMode: String) throws {
        let h = try ProcessHarness("tcp-\(inputMode)")
        defer { h.finish() }
        let job = try h.writeJob()
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out"
        let (coordinator, endpoint) = try h.coordinator(job: job, out: out, ["--input-mode", inputMode,
                                                                             "--input-chunk-bytes", "1024"] + Self.fast)
        try #require(!endpoint.isEmpty, "\(h.output(of: coordinator))")
        for _ in 0..<3 { try h.worker(endpoint) }
        #expect(h.wait(coordinator) == 0, "\(h.output(of: coordinator))")
        #expect(h.adapterBytes(out) == reference)
        let workers = Set(try h.report(out).modules.compactMap(\.workerID))
        #expect(!workers.isEmpty)
        // Inline tasks carry the tensor bytes; shared tasks only paths and offsets.
        let log = h.output(of: coordinator)
        let perTask = log.split(separator: " ").first { $0.hasPrefix("bytes.per.task=") }
            .flatMap { Int($0.dropFirst("bytes.per.task=".count)) }
        let bytes = try #require(perTask, "\(log)")
        #expect(inputMode == "inline" ? bytes > 4096 : bytes < 4096)
    }

    @Test func workerKilledMidTaskIsRetried() throws {
        let h = try ProcessHarness("die")
        defer { h.finish() }
        let job = try h.writeJob()
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out"
        let (coordinator, endpoint) = try h.coordinator(job: job, out: out, Self.fast)
        try #require(!endpoint.isEmpty)
        let doomed = try h.launch(["worker", "--connect", endpoint],
                                  environment: [Self.faults: "die-in-task"])
        #expect(eventually { !doomed.isRunning })
        #expect(doomed.terminationReason == .uncaughtSignal && doomed.terminationStatus == SIGKILL)
        try h.worker(endpoint)
        #expect(h.wait(coordinator) == 0, "\(h.output(of: coordinator))")
        #expect(h.adapterBytes(out) == reference)
        let report = try h.report(out)
        #expect((report.runtime?.retries ?? 0) >= 1)
        #expect(report.modules.contains { ($0.attempts ?? 0) >= 2 })
    }

    @Test func mergeRespawnsALocalWorkerThatDied() throws {
        // The only worker SIGKILLs itself mid-task: the merge must start a replacement to finish.
        let log = try Self.expectMergeRecovers("respawn", workers: 1, fault: "die-in-task")
        #expect(log.contains("starting a replacement"))
    }

    @Test func hangingWorkerIsDetectedAndItsTaskReassigned() throws {
        let log = try Self.expectMergeRecovers("hang", workers: 2, fault: "hang-after-tasks=1")
        #expect(log.contains("missed its heartbeats"))
        // The hung process is killed and a replacement started.
        #expect(log.contains("killing it") && log.contains("starting a replacement"))
    }

    /// Runs `merge` with one local worker misbehaving once (`fault`), and expects it to finish anyway with the
    /// in-process engine's bytes and a retry in the report. Returns the merge's log.
    static func expectMergeRecovers(_ label: String, workers: Int, fault: String) throws -> String {
        let h = try ProcessHarness(label)
        defer { h.finish() }
        let job = try h.writeJob()
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out"
        let marker = h.path + "/fault-once"
        let merge = try h.launch(["merge", job, "--out", out, "--workers", "\(workers)"] + fast,
                                 environment: [faults: "\(fault),once=\(marker)"])
        #expect(h.wait(merge) == 0, "\(h.output(of: merge))")
        #expect(FileManager.default.fileExists(atPath: marker))
        #expect(h.adapterBytes(out) == reference)
        #expect((try h.report(out).runtime?.retries ?? 0) >= 1)
        return h.output(of: merge)
    }

    /// A merge killed with SIGKILL cannot stop its local workers; they must notice they were orphaned and leave
    /// (not keep reconnecting to a coordinator that is gone). Its endpoint directory is cleaned by the next merge.
    /// Both merges get this test's own TMPDIR: in the shared one, any other merge on the machine (another test, another
    /// developer's run) also removes the dead merge's directory, and a leftover of theirs is none of this test's business.
    @Test func localWorkersLeaveWhenTheMergeIsKilled() throws {
        let h = try ProcessHarness("orphans")
        defer { h.finish() }
        let job = try h.writeJob()
        let temporary = h.path + "/t/"
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        let merge = try h.launch(["merge", job, "--out", h.path + "/out", "--workers", "2"] + Self.fast,
                                 environment: [Self.faults: "slow-tasks=5000", "TMPDIR": temporary])
        // The local workers connect to the merge's private endpoint, named after its pid.
        let marker = "brickyard-merge-\(merge.processIdentifier)-"
        func workers() -> [Int32] { Self.processes { $0.contains(" worker ") && $0.contains(temporary + marker) } }
        #expect(eventually(timeout: .seconds(60)) { workers().count == 2 })
        kill(merge.processIdentifier, SIGKILL)
        _ = h.wait(merge, timeout: .seconds(5))
        // They check their parent every 200 ms; a loaded machine may take seconds to run that check.
        #expect(eventually(timeout: .seconds(30)) { workers().isEmpty },
                "orphaned workers: \(workers().map { Self.status(of: $0) })\n\(h.output(of: merge))")
        for pid in workers() { kill(pid, SIGKILL) }
        // The killed merge's endpoint directory is left behind; the next merge removes it.
        func leftovers() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? []).filter { $0.hasPrefix(marker) }
        }
        #expect(!leftovers().isEmpty)
        let next = try h.launch(["merge", job, "--out", h.path + "/out", "--workers", "1"] + Self.fast,
                                environment: ["TMPDIR": temporary])
        #expect(h.wait(next, timeout: .seconds(300)) == 0, "\(h.output(of: next))")
        #expect(leftovers().isEmpty)
    }

    /// State and parent of a process, from /proc/PID/status (for failure messages).
    static func status(of pid: Int32) -> String {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let fields = text.split(separator: "\n").filter { $0.hasPrefix("State") || $0.hasPrefix("PPid") }
        return "\(pid) " + fields.joined(separator: " ")
    }

    /// Pids of processes whose command line (arguments joined by spaces) satisfies `matches`.
    static func processes(_ matches: (String) -> Bool) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry),
                  let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
            let line = String(decoding: data.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
            return matches(line) ? pid : nil
        }
    }

    @Test func coordinatorKilledMidJobResumesFromCheckpoint() throws {
        let h = try ProcessHarness("resume")
        defer { h.finish() }
        let job = try h.writeJob()
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out"
        let checkpoint = h.path + "/ckpt"
        let (first, endpoint) = try h.coordinator(job: job, out: out, ["--checkpoint", checkpoint])
        try #require(!endpoint.isEmpty)
        // This worker finishes three modules, then goes silent: the job stalls with exactly three records.
        let stalled = try h.launch(["worker", "--connect", endpoint],
                                   environment: [Self.faults: "hang-after-tasks=3"])
        #expect(eventually { h.recordCount(checkpoint) == 3 })
        kill(first.processIdentifier, SIGKILL)
        _ = h.wait(first, timeout: .seconds(5))
        kill(stalled.processIdentifier, SIGKILL)
        #expect(!FileManager.default.fileExists(atPath: out + "/adapter_model.safetensors"))

        let (second, endpoint2) = try h.coordinator(job: job, out: out, ["--checkpoint", checkpoint])
        try #require(!endpoint2.isEmpty)
        try h.worker(endpoint2)
        #expect(h.wait(second) == 0, "\(h.output(of: second))")
        #expect(h.adapterBytes(out) == reference)
        let report = try h.report(out)
        #expect(report.runtime?.resumedModules == 3)
        #expect(report.runtime?.computedModules == report.modules.count - 3)
    }

    @Test func truncatedCheckpointRecordIsRecomputed() throws {
        let h = try ProcessHarness("truncate")
        defer { h.finish() }
        let job = try h.writeJob()
        let checkpoint = h.path + "/ckpt"
        let first = h.path + "/first"
        let run1 = try h.launch(["merge", job, "--out", first, "--workers", "1", "--checkpoint", checkpoint] + Self.fast)
        #expect(h.wait(run1) == 0, "\(h.output(of: run1))")
        let records = try FileManager.default.contentsOfDirectory(atPath: checkpoint).filter { $0.hasSuffix(".rec") }.sorted()
        let victim = checkpoint + "/" + (try #require(records.dropFirst(2).first))
        let bytes = try #require(FileManager.default.contents(atPath: victim))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: victim))

        let second = h.path + "/second"
        let run2 = try h.launch(["merge", job, "--out", second, "--workers", "1", "--checkpoint", checkpoint] + Self.fast)
        #expect(h.wait(run2) == 0, "\(h.output(of: run2))")
        #expect(h.adapterBytes(second) == h.adapterBytes(first))
        let report = try h.report(second)
        #expect(report.runtime?.resumedModules == records.count - 1)
        #expect(report.runtime?.computedModules == 1)
        #expect(h.output(of: run2).contains("checkpoint record rejected"))
    }

    @Test func alwaysFailingTaskFailsTheJobNamingTheModule() throws {
        let h = try ProcessHarness("fail")
        defer { h.finish() }
        let job = try h.writeJob()
        let out = h.path + "/out"
        let merge = try h.launch(["merge", job, "--out", out, "--workers", "2", "--max-attempts", "3"] + Self.fast,
                                 environment: [Self.faults: "fail-tasks"])
        let status = h.wait(merge)
        #expect(status == 1)
        let text = h.output(of: merge)
        #expect(text.contains("failed after 3 attempt(s)"), "\(text)")
        #expect(text.contains("base_model.model.model.layers.0"), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func checkpointOfAnotherJobIsRefused() throws {
        let h = try ProcessHarness("mismatch")
        defer { h.finish() }
        let checkpoint = h.path + "/ckpt"
        let jobA = try h.writeJob(adapters: ["a_r8", "b_r4"])
        let jobB = try h.writeJob(adapters: ["a_r8", "c_rslora"])
        let run1 = try h.launch(["merge", jobA, "--out", h.path + "/a", "--workers", "1", "--checkpoint", checkpoint] + Self.fast)
        #expect(h.wait(run1) == 0, "\(h.output(of: run1))")
        let run2 = try h.launch(["merge", jobB, "--out", h.path + "/b", "--workers", "1", "--checkpoint", checkpoint] + Self.fast)
        #expect(h.wait(run2) == 65)
        #expect(h.output(of: run2).contains("belongs to a different job"))
    }

    @Test func sigtermStopsWithTheRequeueExitCode() throws {
        let h = try ProcessHarness("sigterm")
        defer { h.finish() }
        let job = try h.writeJob()
        let checkpoint = h.path + "/ckpt"
        let (coordinator, endpoint) = try h.coordinator(job: job, out: h.path + "/out", ["--checkpoint", checkpoint] + Self.fast)
        try #require(!endpoint.isEmpty)
        kill(coordinator.processIdentifier, SIGTERM)
        #expect(h.wait(coordinator, timeout: .seconds(10)) == 75)
        #expect(FileManager.default.fileExists(atPath: checkpoint + "/manifest.json"))
    }

    @Test func hostilePeersDoNotDisturbARunningJob() throws {
        let h = try ProcessHarness("hostile")
        defer { h.finish() }
        let job = try h.writeJob()
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out"
        let (coordinator, endpoint) = try h.coordinator(job: job, out: out, Self.fast)
        try #require(!endpoint.isEmpty)
        // One worker that stalls after two tasks; the job stays open while the intruders talk.
        try h.launch(["worker", "--connect", endpoint], environment: [Self.faults: "hang-after-tasks=2"])

        let context = try ZMQContext()
        let garbage = try ZMQSocket.dealer(context: context, identity: Array("intruder-garbage".utf8))
        try garbage.connect(endpoint)
        try garbage.send([[0xff, 0x00, 0x13, 0x37, 0x42]])
        try garbage.send([Array("not protobuf at all".utf8), [1, 2, 3]])

        // Larger than any legitimate message: ZeroMQ disconnects this peer before buffering it.
        let huge = try ZMQSocket.dealer(context: context, identity: Array("intruder-huge".utf8))
        try huge.connect(endpoint)
        try huge.send([[UInt8](repeating: 0x5a, count: 6 << 20)])

        let oldVersion = try ZMQSocket.dealer(context: context, identity: Array("intruder-version".utf8))
        try oldVersion.connect(endpoint)
        let hello = Wire.Hello(workerID: "old", version: "0.1.0", cores: 1, blasThreads: 1, pid: 1, hostname: "x")
        try oldVersion.send([WireCodec.encode(.hello(hello), protocolVersion: Wire.protocolVersion + 7)])
        let answer = try oldVersion.receive(timeoutMilliseconds: 5000)
        let reply = try answer.map { try WireCodec.decode(try #require($0.first)).message }
        guard case .reject(let reason)? = reply else {
            Issue.record("expected a reject, got \(String(describing: reply))")
            garbage.close(); huge.close(); oldVersion.close()
            return
        }
        #expect(reason.contains("protocol version"))

        // The right protocol, but a build of another output revision (bare "0.1.0": kernels with other bytes).
        let otherBuild = try ZMQSocket.dealer(context: context, identity: Array("intruder-build".utf8))
        defer { otherBuild.close() }
        try otherBuild.connect(endpoint)
        try otherBuild.send([WireCodec.encode(.hello(Wire.Hello(workerID: "other-build", version: BrickyardVersion.string,
                                                                cores: 1, blasThreads: 1, pid: 3, hostname: "x")))])
        let buildAnswer = try otherBuild.receive(timeoutMilliseconds: 5000)
        let buildReply = try buildAnswer.map { try WireCodec.decode(try #require($0.first)).message }
        if case .reject(let reason)? = buildReply {
            #expect(reason.contains("differs from coordinator version \(BrickyardVersion.build)"), "\(reason)")
        } else {
            Issue.record("expected a reject of the other build, got \(String(describing: buildReply))")
        }

        // A welcomed peer that claims results for a task it was never given.
        let liar = try ZMQSocket.dealer(context: context, identity: Array("intruder-liar".utf8))
        try liar.connect(endpoint)
        let liarHello = Wire.Hello(workerID: "liar", version: BrickyardVersion.build, cores: 1, blasThreads: 1, pid: 2, hostname: "x")
        try liar.send(.hello(liarHello))
        var welcomed = false
        var task: Wire.Task?
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline && task == nil {
            guard let frames = try liar.receive(timeoutMilliseconds: 200), let frame = frames.first,
                  let message = try? WireCodec.decode(frame).message else { continue }
            if case .welcome = message { welcomed = true }
            if case .task(let received) = message { task = received }
        }
        #expect(welcomed)
        let held = task?.taskID ?? 0
        let forged: [UInt8] = Array(repeating: 7, count: 64)
        for taskID in [held &+ 1, held &+ 2] {
            try liar.send(.resultChunk(Wire.ResultChunk(taskID: taskID, attempt: 1, sequence: 0, total: 1, payload: forged,
                                                        crc32c: CRC32C.checksum(forged))))
            try liar.send(.taskDone(Wire.TaskDone(taskID: taskID, attempt: 1, outRank: 1, resultBytes: 64,
                                                  resultCRC32C: CRC32C.checksum(forged), statsJSON: "{}", seconds: 0)))
        }
        // Now leave: the task the liar held goes back to the queue; an honest worker finishes the job.
        try liar.send(.disconnect(reason: "test intruder leaving"))
        garbage.close(); huge.close(); oldVersion.close(); liar.close()

        try h.worker(endpoint)
        #expect(h.wait(coordinator) == 0, "\(h.output(of: coordinator))")
        #expect(h.adapterBytes(out) == reference)
        let log = h.output(of: coordinator)
        #expect(log.contains("dropped malformed message") || log.contains("unexpected frame count"))
        #expect(log.contains("wrong protocol version"))
        #expect(log.contains("does not hold"))
    }
}
