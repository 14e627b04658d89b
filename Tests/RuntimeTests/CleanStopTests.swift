import BrickyardTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Stops at random moments (issue 10 item 0): a worker asked to stop in the middle of a task, or a merge killed
/// in its first seconds, must leave every worker exiting with its documented status: no signal exit, no crash
/// report, and the rerun's output is byte-identical to the in-process engine's.
/// Nested in the serialized `IntegrationTests`: forty merges and their workers, one test at a time.
extension IntegrationTests {
@Suite struct CleanStopTests {
    static let trials = 20

    /// What a crashing process leaves on stderr (Swift's runtime backtracer, fatalError, glibc aborts).
    static let crashMarkers = ["Fatal error", "crashed", "Backtrace", "Segmentation", "SIGSEGV", "SIGBUS", "SIGABRT",
                               "Aborted", "core dumped"]

    static func crashReport(in log: String) -> String? {
        crashMarkers.first { log.contains($0) }
    }

    /// A pool of llama-sized q/k/v/o modules whose lego tasks spend their time inside OpenBLAS (6 adapters:
    /// ~0.1–0.3 s per task; 16 adapters: ~1 s), so a random moment of a task usually lands in a kernel call.
    static func writePool(_ h: ProcessHarness, adapters: Int, layers: Int) throws -> String {
        let pool = h.path + "/pool"
        let synth = try h.launch(["synth", "--out", pool, "--adapters", "\(adapters)", "--rank", "16", "--shape", "llama3-8b",
                                  "--layers", "\(layers)", "--modules", "q,k,v,o", "--dtype", "bf16", "--shared-units", "8"])
        #expect(h.wait(synth) == 0, "\(h.output(of: synth))")
        let adapters = try FileManager.default.contentsOfDirectory(atPath: pool).sorted()
        let job = h.path + "/job.yaml"
        // `oversample: 1`: the task lengths above (lego's default oversamples the 16-adapter pool: twice the work).
        var text = "method: lego\nrank: 16\nseed: 11\nparameters: {oversample: 1}\nadapters:\n"
        for name in adapters { text += "  - path: \(pool)/\(name)\n" }
        try text.write(toFile: job, atomically: true, encoding: .utf8)
        return job
    }

    @Test func workersStoppedBySigtermMidTaskExitCleanly() throws {
        let h = try ProcessHarness("stop-worker")
        defer { h.finish() }
        let job = try Self.writePool(h, adapters: 16, layers: 4)
        let reference = try Self.reference(h, job: job)
        let out = h.path + "/out"
        let (coordinator, endpoint) = try h.coordinator(job: job, out: out, ["--checkpoint", h.path + "/ckpt",
                                                                             "--max-attempts", "100"] + IntegrationTests.fast)
        try #require(!endpoint.isEmpty, "\(h.output(of: coordinator))")
        var random = SystemRandomNumberGenerator()
        var inTask = 0
        for trial in 0..<Self.trials {
            let worker = try h.worker(endpoint)
            // Wait for a task to start computing, then stop at a random moment of it (tasks last ~1 s).
            let started = eventually(timeout: .seconds(120)) {
                h.output(of: worker).contains("task received") || !worker.isRunning
            }
            guard started, worker.isRunning else {
                // The job finished before this trial (every module done by earlier workers' leftovers).
                Issue.record("trial \(trial): worker never received a task: \(h.output(of: worker))")
                break
            }
            Thread.sleep(forTimeInterval: Double.random(in: 0...0.3, using: &random))
            if !h.output(of: worker).contains("task done") { inTask += 1 }
            kill(worker.processIdentifier, SIGTERM)
            let status = h.wait(worker, timeout: .seconds(20))
            let log = h.output(of: worker)
            #expect(worker.terminationReason == .exit, "trial \(trial): ended by a signal\n\(log)")
            #expect(status == 0, "trial \(trial): status \(String(describing: status))\n\(log)")
            #expect(Self.crashReport(in: log) == nil, "trial \(trial): crash report\n\(log)")
            #expect(log.contains("worker exiting"), "trial \(trial)\n\(log)")
        }
        // Most trials must really have stopped a computation, or the test proves nothing.
        #expect(inTask >= Self.trials / 2, "only \(inTask) of \(Self.trials) stops landed inside a task")
        // One uninterrupted worker finishes the job: the bytes are the in-process engine's. (16 one-second tasks:
        // minutes at a load of 20 on two cores, hence the in-process reference's bound.)
        try h.worker(endpoint)
        #expect(h.wait(coordinator, timeout: .seconds(600)) == 0, "\(h.output(of: coordinator))")
        #expect(h.adapterBytes(out) == reference)
    }

    @Test func mergesKilledInTheirFirstSecondsLeaveCleanWorkers() throws {
        let h = try ProcessHarness("stop-merge")
        defer { h.finish() }
        let job = try Self.writePool(h, adapters: 6, layers: 3)
        let reference = try Self.reference(h, job: job)
        var random = SystemRandomNumberGenerator()
        let checkpoint = h.path + "/ckpt"
        let signals: [Int32] = [SIGTERM, SIGKILL, SIGINT]
        var workersSeen = 0
        for trial in 0..<Self.trials {
            let number = signals[trial % signals.count]
            // A fresh checkpoint each time, so every trial starts from nothing; the last one is resumed below.
            try? FileManager.default.removeItem(atPath: checkpoint)
            let merge = try h.launch(["merge", job, "--out", h.path + "/out-\(trial)", "--workers", "2",
                                      "--checkpoint", checkpoint, "--log-level", "info"] + IntegrationTests.fast)
            Thread.sleep(forTimeInterval: Double.random(in: 0...2.5, using: &random))
            kill(merge.processIdentifier, number)
            // Resend like a supervisor would: a merge that inherited an ignored SIGTERM/SIGINT from the test
            // runner and is still starting (no handler yet) does not see the first one. Workers are not signalled
            // by the test: what they do is the merge's stop (or their parent's death).
            let resend = eventually(timeout: .seconds(5)) { !merge.isRunning }
            if !resend && number != SIGKILL {
                _ = eventually(timeout: .seconds(30)) {
                    kill(merge.processIdentifier, number)
                    Thread.sleep(forTimeInterval: 0.5)
                    return !merge.isRunning
                }
            }
            let status = h.wait(merge, timeout: .seconds(30))
            // The merge's workers write to the same log; wait until every one it started has written its last line
            // (after SIGKILL they notice their parent is gone within 200 ms).
            var log = ""
            var started: [String] = []
            let settled = eventually(timeout: .seconds(20)) {
                log = h.output(of: merge)
                started = Self.values(of: "worker.id", inLinesContaining: "local worker started", log)
                let exited = Set(Self.values(of: "worker.id", inLinesContaining: "worker exiting", log))
                return started.allSatisfy(exited.contains)
            }
            workersSeen += started.count
            #expect(settled, "trial \(trial) (signal \(number)): a worker did not exit\n\(log)")
            #expect(Self.crashReport(in: log) == nil, "trial \(trial) (signal \(number)): crash report\n\(log)")
            let statuses = Self.values(of: "status", inLinesContaining: "worker exiting", log)
            #expect(statuses.allSatisfy { $0 == "0" }, "trial \(trial): worker statuses \(statuses)\n\(log)")
            #expect(!log.contains("ended.by=signal"), "trial \(trial): a worker ended by a signal\n\(log)")
            switch number {
            case SIGKILL:
                // Killed, or finished before the signal arrived.
                #expect(merge.terminationReason == .uncaughtSignal || status == 0, "trial \(trial): merge status \(String(describing: status))\n\(log)")
            default:
                // Stopped (75), or finished before the signal arrived (0).
                #expect(status == 75 || status == 0, "trial \(trial): merge status \(String(describing: status))\n\(log)")
            }
        }
        #expect(workersSeen >= Self.trials, "only \(workersSeen) local workers were started over \(Self.trials) trials")
        // The rerun resumes the last trial's checkpoint and writes the engine's bytes.
        let out = h.path + "/out-final"
        let rerun = try h.launch(["merge", job, "--out", out, "--workers", "2", "--checkpoint", checkpoint] + IntegrationTests.fast)
        #expect(h.wait(rerun, timeout: .seconds(600)) == 0, "\(h.output(of: rerun))")
        #expect(h.adapterBytes(out) == reference)
    }

    /// The in-process engine's bytes (a loaded machine needs more than the harness's default minute).
    static func reference(_ h: ProcessHarness, job: String) throws -> Data {
        let out = h.path + "/reference"
        let process = try h.launch(["merge", job, "--out", out, "--in-process"])
        #expect(h.wait(process, timeout: .seconds(600)) == 0, "in-process merge failed: \(h.output(of: process))")
        return try #require(h.adapterBytes(out))
    }

    /// The values of `key=` in the log lines that contain `marker` (swift-log's `key=value` metadata).
    static func values(of key: String, inLinesContaining marker: String, _ log: String) -> [String] {
        log.split(separator: "\n").filter { $0.contains(marker) }.compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
    }
}
}
