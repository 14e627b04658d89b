import BrickyardTestSupport
import AdapterIO
import Foundation
import Kernels
import MergeEngine
import Testing
import WireProtocol
#if canImport(Glibc)
import Glibc
#endif

/// One lego module across workers: modules above the task budget (`max_task_mb`) are split into blocks whose
/// k-means rounds run on real worker processes. Every output is compared byte for byte with `merge --in-process`,
/// which runs the same rounds over the same blocks in one process.
@Suite(.serialized) struct SplitModuleTests {
    static let fast = ["--heartbeat-ms", "200", "--liveness", "5"]

    /// A synthetic pool (12 rank-8 adapters of the tiny shape, q and up modules, 6 shared directions) and a lego job
    /// whose budget splits both modules into 2–3 blocks.
    static func splitJob(_ h: ProcessHarness, reweight: String = "dual", adapters: Int = 12, restarts: Int? = nil,
                         rank: Int = 6, iterations: Int? = nil, name: String = "split-job",
                         parameters: [String] = []) throws -> String {
        let pool = h.path + "/pool"
        if !FileManager.default.fileExists(atPath: pool) {
            let synth = try h.launch(["synth", "--out", pool, "--adapters", "\(adapters)", "--rank", "8", "--shape", "tiny",
                                      "--layers", "1", "--modules", "q,up", "--shared-units", "6", "--seed", "3"])
            #expect(h.wait(synth) == 0, "\(h.output(of: synth))")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: pool).sorted()
        var text = "method: lego\nrank: \(rank)\nseed: 5\nmax_task_mb: 0.03\nparameters:\n  reweight: \(reweight)\n"
        if let restarts { text += "  restarts: \(restarts)\n" }
        if let iterations { text += "  iterations: \(iterations)\n  tolerance: 0\n" }
        for parameter in parameters { text += "  \(parameter)\n" }
        text += "adapters:\n"
        for adapter in names { text += "  - path: \(pool)/\(adapter)\n" }
        let job = h.path + "/\(name).yaml"
        try text.write(toFile: job, atomically: true, encoding: .utf8)
        return job
    }

    static func expectSplit(_ report: MergeReport, distributed: Bool = true) {
        #expect(!report.modules.isEmpty)
        // Quality figures like unsplit modules' (exact or estimated by the same rule).
        #expect(report.modules.allSatisfy { $0.relativeError.isFinite && $0.relativeError > 0 && $0.svdFloor != nil })
        #expect(report.modules.allSatisfy { $0.workerID?.hasPrefix("split:") == distributed })
        #expect(report.modules.allSatisfy { ($0.clusterSizes ?? []).reduce(0, +) == 12 * 8 })
    }

    @Test("a split module's bytes are the same with 1, 2 and 3 workers as in process", arguments: [1, 2, 3])
    func identicalAcrossWorkerCounts(workers: Int) throws {
        let h = try ProcessHarness("split-\(workers)")
        defer { h.finish() }
        let merged = try h.expectMergeMatchesInProcess(job: try Self.splitJob(h), workers: workers, options: Self.fast)
        Self.expectSplit(merged.reference, distributed: false)
        Self.expectSplit(merged.report)
    }

    @Test("estimated quality figures (rank 2, 3 iterations): 2 workers give the in-process figures bit for bit")
    func estimatedFiguresAcrossWorkers() throws {
        let h = try ProcessHarness("split-estimated")
        defer { h.finish() }
        let job = try Self.splitJob(h, rank: 2, iterations: 3, name: "estimated")
        let merged = try h.expectMergeMatchesInProcess(job: job, workers: 2, options: Self.fast)
        #expect(merged.reference.modules.allSatisfy { $0.qualityEstimated == true && ($0.relativeErrorStderr ?? 0) > 0 })
        #expect(h.output(of: merged.merge).contains("estimated ±"), "\(h.output(of: merged.merge))")
    }

    @Test("optimal reweighting runs its statistics round over the blocks and matches in process")
    func optimalReweighting() throws {
        let h = try ProcessHarness("split-optimal")
        defer { h.finish() }
        let job = try Self.splitJob(h, reweight: "optimal")
        try h.expectMergeMatchesInProcess(job: job, workers: 2, options: Self.fast)
        // --max-task-mb overrides the job: a budget above the module leaves it whole (the unsplit lego path).
        let whole = h.path + "/whole"
        let unsplit = try h.launch(["merge", job, "--out", whole, "--in-process", "--max-task-mb", "100"])
        #expect(h.wait(unsplit) == 0, "\(h.output(of: unsplit))")
        #expect(try h.report(whole).modules.allSatisfy { $0.relativeError.isFinite && $0.workerID == "local" })
    }

    @Test("restarts run as rounds side by side: 1 and 2 restarts each equal in process; more restarts never fit worse")
    func restartsMatchInProcess() throws {
        let h = try ProcessHarness("split-restarts")
        defer { h.finish() }
        var objectives: [Int: [Double]] = [:]
        for restarts in [1, 2] {
            let job = try Self.splitJob(h, restarts: restarts, name: "restarts-\(restarts)")
            let reference = try h.inProcessReference(job: job)
            let referenceReport = try h.report(h.path + "/reference")
            try FileManager.default.removeItem(atPath: h.path + "/reference")
            let out = h.path + "/out-\(restarts)"
            let merge = try h.launch(["merge", job, "--out", out, "--workers", "2"] + Self.fast)
            #expect(h.wait(merge, timeout: .seconds(120)) == 0, "\(h.output(of: merge))")
            #expect(h.adapterBytes(out) == reference, "restarts \(restarts)")
            let report = try h.report(out)
            Self.expectSplit(report)
            #expect(report.modules.map(\.finalDistance) == referenceReport.modules.map(\.finalDistance))
            objectives[restarts] = report.modules.map { $0.finalDistance ?? .nan }
        }
        // Restart 0 is the single run, so the best of two is at most its objective, module by module.
        for (one, two) in zip(objectives[1] ?? [], objectives[2] ?? []) { #expect(two <= one) }
    }

    @Test("inline input mode: blocks are streamed to workers, bytes as in process; a worker that lost a block gets it resent")
    func inlineInputMode() throws {
        let h = try ProcessHarness("split-inline")
        defer { h.finish() }
        let job = try Self.splitJob(h, restarts: 2)
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out"
        let merge = try h.launch(["merge", job, "--out", out, "--workers", "2", "--input-mode", "inline"] + Self.fast)
        #expect(h.wait(merge, timeout: .seconds(120)) == 0, "\(h.output(of: merge))")
        #expect(h.adapterBytes(out) == reference)
        Self.expectSplit(try h.report(out))
        #expect((try h.report(out).runtime?.retries ?? -1) == 0)
        // A worker with no block cache holds nothing between rounds: each block task sent without its inputs fails
        // (retryable) and the coordinator resends it with them.
        let bare = h.path + "/bare"
        let (coordinator, endpoint) = try h.coordinator(job: job, out: bare, ["--input-mode", "inline", "--max-attempts", "4"] + Self.fast)
        try #require(!endpoint.isEmpty, "\(h.output(of: coordinator))")
        try h.worker(endpoint, ["--block-cache-mb", "0"])
        #expect(h.wait(coordinator, timeout: .seconds(120)) == 0, "\(h.output(of: coordinator))")
        #expect(h.adapterBytes(bare) == reference)
        #expect((try h.report(bare).runtime?.retries ?? 0) >= 1)
    }

    @Test("a worker SIGKILLed in a block round: the block is computed again (loaded on demand) with identical bytes")
    func workerKilledMidRound() throws {
        let h = try ProcessHarness("split-die")
        defer { h.finish() }
        let job = try Self.splitJob(h)
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out", marker = h.path + "/fault-once"
        let merge = try h.launch(["merge", job, "--out", out, "--workers", "2"] + Self.fast,
                                 environment: ["BRICKYARD_TEST_WORKER_FAULTS": "die-in-task,once=\(marker)"])
        #expect(h.wait(merge, timeout: .seconds(120)) == 0, "\(h.output(of: merge))")
        #expect(FileManager.default.fileExists(atPath: marker))
        #expect(h.adapterBytes(out) == reference)
        #expect((try h.report(out).runtime?.retries ?? 0) >= 1)
    }

    @Test("a coordinator SIGKILLed mid-module resumes at its last checkpointed round with identical bytes")
    func coordinatorKilledMidModuleResumes() throws {
        let h = try ProcessHarness("split-kill")
        defer { h.finish() }
        let job = try Self.splitJob(h)
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out", checkpoint = h.path + "/ckpt"
        let (first, endpoint) = try h.coordinator(job: job, out: out, ["--checkpoint", checkpoint, "--log-level", "debug"] + Self.fast)
        try #require(!endpoint.isEmpty, "\(h.output(of: first))")
        let slow = ["--slow-tasks-ms", "60"]
        let workers = [try h.worker(endpoint, slow), try h.worker(endpoint, slow)]
        func reducedRounds() -> Int {
            h.output(of: first).split(separator: "\n").filter { $0.contains("split module round reduced") }.compactMap { line in
                line.split(separator: " ").first { $0.hasPrefix("round=") }.flatMap { Int($0.dropFirst("round=".count)) }
            }.max() ?? 0
        }
        #expect(eventually(timeout: .seconds(90)) { reducedRounds() >= 5 || !first.isRunning }, "\(h.output(of: first))")
        kill(first.processIdentifier, SIGKILL)
        _ = h.wait(first, timeout: .seconds(10))
        for worker in workers { kill(worker.processIdentifier, SIGKILL); _ = h.wait(worker, timeout: .seconds(10)) }
        let states = ((try? FileManager.default.contentsOfDirectory(atPath: checkpoint)) ?? []).filter { $0.hasSuffix(".kms") }
        #expect(!states.isEmpty, "no k-means state in the checkpoint: the coordinator finished before it was killed")
        #expect(h.recordCount(checkpoint) == 0)

        let (second, endpoint2) = try h.coordinator(job: job, out: out, ["--checkpoint", checkpoint] + Self.fast)
        try #require(!endpoint2.isEmpty, "\(h.output(of: second))")
        try h.worker(endpoint2)
        try h.worker(endpoint2)
        #expect(h.wait(second, timeout: .seconds(120)) == 0, "\(h.output(of: second))")
        #expect(h.adapterBytes(out) == reference)
        let report = try h.report(out)
        let resumed = try #require(report.runtime?.resumedRounds, "\(h.output(of: second))")
        #expect(!resumed.isEmpty && resumed.values.allSatisfy { $0 >= 1 })
        #expect(resumed.values.max() ?? 0 >= 5)
        #expect(h.output(of: second).contains("resuming split module from its last checkpointed round"))
        // Written to stdout for the record: which round each module resumed at.
        print("split-kill: resumed rounds \(resumed.sorted { $0.key < $1.key })")
    }

    @Test("malformed frames and bad block results from a worker are logged and dropped; the job still finishes")
    func badBlockResultsAreDropped() throws {
        let h = try ProcessHarness("split-bad")
        defer { h.finish() }
        let job = try Self.splitJob(h)
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out"
        let (coordinator, endpoint) = try h.coordinator(job: job, out: out, ["--max-attempts", "6"] + Self.fast)
        try #require(!endpoint.isEmpty, "\(h.output(of: coordinator))")

        let context = try ZMQContext()
        let fake = try ZMQSocket.dealer(context: context, identity: Array("fake-worker".utf8), lingerMilliseconds: 0)
        defer { fake.close() }
        try fake.connect(endpoint)
        try fake.send(.hello(Wire.Hello(workerID: "fake", version: BrickyardVersion.build, cores: 1, blasThreads: 1,
                                        pid: 1, hostname: "test")))
        /// The next block task (answering heartbeats meanwhile).
        func nextBlockTask() throws -> Wire.KMeansBlockTask? {
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                guard let frames = try fake.receive(timeoutMilliseconds: 50), frames.count == 1 else { continue }
                switch try WireCodec.decode(frames[0]).message {
                case .heartbeat(let sequence): try fake.send(.heartbeat(sequence: sequence))
                case .kmeansBlockTask(let task): return task
                default: continue
                }
            }
            return nil
        }
        func answer(_ task: Wire.KMeansBlockTask, body: [UInt8]) throws {
            let crc = CRC32C.checksum(body[...])
            try fake.send(.resultChunk(Wire.ResultChunk(taskID: task.task.taskID, attempt: task.task.attempt, sequence: 0,
                                                        total: 1, payload: body, crc32c: crc)))
            try fake.send(.taskDone(Wire.TaskDone(taskID: task.task.taskID, attempt: task.task.attempt, outRank: 0,
                                                  resultBytes: UInt64(body.count), resultCRC32C: crc, statsJSON: "{}",
                                                  seconds: 0.1)))
        }
        let first = try #require(try nextBlockTask(), "\(h.output(of: coordinator))")
        #expect(first.task.kind == .kmeansFirstCenter && first.task.blockCount >= 2)
        try fake.send([[0xff, 0x00, 0x13, 0x37]])                           // not an envelope
        try answer(first, body: Array("not a partial".utf8))                   // garbage body
        let second = try #require(try nextBlockTask())
        let wrongKind = BlockPartial(kind: .lloyd, unitCount: 1, counts: [1], sums: [Float](repeating: 0, count: 1),
                                     perCenter: [0])
        try answer(second, body: wrongKind.encoded())                          // well formed, wrong round
        let third = try #require(try nextBlockTask())
        let tooMany = BlockPartial(kind: .firstCenter, unitCount: 1_000_000, units: [])
        try answer(third, body: tooMany.encoded())                             // inconsistent counts
        try fake.send(.disconnect(reason: "fake worker leaving"))

        try h.worker(endpoint)
        #expect(h.wait(coordinator, timeout: .seconds(120)) == 0, "\(h.output(of: coordinator))")
        #expect(h.adapterBytes(out) == reference)
        let log = h.output(of: coordinator)
        #expect(log.contains("dropped malformed message"))
        #expect(log.components(separatedBy: "result rejected").count - 1 >= 3)
        #expect((try h.report(out).runtime?.retries ?? 0) >= 3)
    }
}
