import BrickyardTestSupport
import Foundation
import MergeEngine
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// lego's default steps around the clustering on split modules (`oversample`: the k-means at 2k and the selection
/// rounds; `refit`: rounds of block products), on real workers: byte for byte as `merge --in-process` with any
/// worker count, and a coordinator killed inside the selection or the refit rounds resumes there with the same bytes.
@Suite(.serialized) struct SplitLegoStepsRuntimeTests {
    static let fast = SplitModuleTests.fast

    @Test("refit: a split module's bytes are the same with 1, 2 and 3 workers as in process", arguments: [1, 2, 3])
    func identicalAcrossWorkerCounts(workers: Int) throws {
        let h = try ProcessHarness("split-steps-\(workers)")
        defer { h.finish() }
        let job = try SplitModuleTests.splitJob(h, reweight: "optimal", restarts: 1, parameters: ["refit: 2"])
        let merged = try h.expectMergeMatchesInProcess(job: job, workers: workers, options: Self.fast)
        let report = merged.report
        SplitModuleTests.expectSplit(report)
        #expect(report.modules.allSatisfy { $0.refit == 2 && $0.oversample == 2 },
                "\(report.modules.map(\.refit)) \(report.modules.map(\.oversample))")
        #expect(report.modules.allSatisfy { $0.outputRank == 6 })
        #expect(h.output(of: merged.merge).contains("refit_rounds=2"), "\(h.output(of: merged.merge))")
    }

    @Test("a coordinator SIGKILLed during the selection or the refit rounds resumes there with identical bytes",
          arguments: ["selection", "refit"])
    func coordinatorKilledDuringTheNewRounds(phase: String) throws {
        let h = try ProcessHarness("split-steps-kill-\(phase)")
        defer { h.finish() }
        // Three refit rounds (six block rounds) per module, one power iteration: the refit rounds are a large share.
        let job = try SplitModuleTests.splitJob(h, reweight: "optimal", restarts: 1,
                                                parameters: phase == "refit" ? ["refit: 3", "power_iterations: 1"] : [])
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out", checkpoint = h.path + "/ckpt"
        let (first, endpoint) = try h.coordinator(job: job, out: out, ["--checkpoint", checkpoint, "--log-level", "debug"] + Self.fast)
        try #require(!endpoint.isEmpty, "\(h.output(of: first))")
        let slow = ["--slow-tasks-ms", "60"]
        let workers = [try h.worker(endpoint, slow), try h.worker(endpoint, slow)]
        // Killed right after a refit round, or a selection round (the first principal-direction rounds of an
        // oversampled module are the fine clusters'), was reduced and checkpointed.
        let marks = phase == "refit" ? ["kind=refitLeft", "kind=refitRight"] : ["kind=principalLeft"]
        #expect(eventually(timeout: .seconds(90)) {
            marks.contains { h.output(of: first).contains($0) } || !first.isRunning
        }, "\(h.output(of: first))")
        kill(first.processIdentifier, SIGKILL)
        _ = h.wait(first, timeout: .seconds(10))
        for worker in workers { kill(worker.processIdentifier, SIGKILL); _ = h.wait(worker, timeout: .seconds(10)) }

        let (second, endpoint2) = try h.coordinator(job: job, out: out, ["--checkpoint", checkpoint] + Self.fast)
        try #require(!endpoint2.isEmpty, "\(h.output(of: second))")
        try h.worker(endpoint2)
        try h.worker(endpoint2)
        #expect(h.wait(second, timeout: .seconds(120)) == 0, "\(h.output(of: second))")
        #expect(h.adapterBytes(out) == reference)
        // Some module resumed inside those rounds.
        let field = phase == "refit" ? "refit_rounds=" : "selection_rounds="
        let resumed = h.output(of: second).split(separator: "\n").filter { $0.contains("resuming split module") }.compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix(field) }.flatMap { Int($0.dropFirst(field.count)) }
        }
        #expect(resumed.contains { $0 >= 1 }, "\(h.output(of: second))")
        print("split-steps-kill: resumed at \(field) \(resumed)")
    }
}
