import BrickyardTestSupport
import Foundation
import MergeEngine
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// lego's `direction: principal` (the default with `reweight: optimal` or `none`) on split modules: the
/// power-iteration rounds run over the blocks on real workers, byte for byte as `merge --in-process`, and a
/// coordinator killed during them resumes with the same bytes. `oversample: 1` keeps these jobs to the direction
/// rounds at k (oversampling's own rounds: `SplitLegoStepsRuntimeTests`).
@Suite(.serialized) struct SplitPrincipalTests {
    static let fast = SplitModuleTests.fast

    @Test("principal directions: a split module's bytes are the same with 1, 2 and 3 workers as in process",
          arguments: [1, 2, 3])
    func identicalAcrossWorkerCounts(workers: Int) throws {
        let h = try ProcessHarness("split-principal-\(workers)")
        defer { h.finish() }
        let job = try SplitModuleTests.splitJob(h, reweight: "optimal", parameters: ["oversample: 1"])
        let merged = try h.expectMergeMatchesInProcess(job: job, workers: workers, options: Self.fast)
        let (merge, report, reference) = (merged.merge, merged.report, merged.referenceBytes)
        SplitModuleTests.expectSplit(report)
        // What ran: at most the default power iterations on every split module (each cluster stops on its own).
        #expect(report.job.options.direction == "principal")
        #expect(report.modules.allSatisfy {
            (1...LegoOptions.defaultPowerIterations).contains($0.powerIterations ?? 0) && $0.direction == "principal"
        })
        #expect(h.output(of: merge).contains("power_iterations="), "\(h.output(of: merge))")
        guard workers == 2 else { return }
        // The rounds change the result: `direction: mean` gives other bytes from the same clustering.
        let meanJob = try SplitModuleTests.splitJob(h, reweight: "optimal", name: "mean", parameters: ["direction: mean", "oversample: 1"])
        let mean = h.path + "/mean"
        let meanMerge = try h.launch(["merge", meanJob, "--out", mean, "--in-process"])
        #expect(h.wait(meanMerge, timeout: .seconds(120)) == 0, "\(h.output(of: meanMerge))")
        #expect(h.adapterBytes(mean) != reference)
        let meanReport = try h.report(mean)
        #expect(meanReport.modules.allSatisfy { $0.powerIterations == nil && $0.direction == "mean" })
        #expect(meanReport.modules.map(\.finalDistance) == report.modules.map(\.finalDistance))
    }

    @Test("reweight none with principal directions: 2 workers give the in-process bytes")
    func noReweighting() throws {
        let h = try ProcessHarness("split-principal-none")
        defer { h.finish() }
        let job = try SplitModuleTests.splitJob(h, reweight: "none", parameters: ["power_iterations: 3"])
        let merged = try h.expectMergeMatchesInProcess(job: job, workers: 2, options: Self.fast)
        #expect(merged.report.modules.allSatisfy { (1...3).contains($0.powerIterations ?? 0) })
    }

    @Test("a coordinator SIGKILLed during the principal-direction rounds resumes there with identical bytes")
    func coordinatorKilledDuringDirectionRounds() throws {
        let h = try ProcessHarness("split-principal-kill")
        defer { h.finish() }
        let job = try SplitModuleTests.splitJob(h, reweight: "optimal", restarts: 1, parameters: ["oversample: 1"])
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out", checkpoint = h.path + "/ckpt"
        let (first, endpoint) = try h.coordinator(job: job, out: out, ["--checkpoint", checkpoint, "--log-level", "debug"] + Self.fast)
        try #require(!endpoint.isEmpty, "\(h.output(of: first))")
        let slow = ["--slow-tasks-ms", "60"]
        let workers = [try h.worker(endpoint, slow), try h.worker(endpoint, slow)]
        // Killed right after a LEFT or RIGHT round was reduced (and checkpointed).
        #expect(eventually(timeout: .seconds(90)) {
            h.output(of: first).contains("kind=principalLeft") || h.output(of: first).contains("kind=principalRight")
                || !first.isRunning
        }, "\(h.output(of: first))")
        kill(first.processIdentifier, SIGKILL)
        _ = h.wait(first, timeout: .seconds(10))
        for worker in workers { kill(worker.processIdentifier, SIGKILL); _ = h.wait(worker, timeout: .seconds(10)) }
        // Track 1 (restarts: 1) holds the final rounds' state: the principal directions' halves.
        let states = ((try? FileManager.default.contentsOfDirectory(atPath: checkpoint)) ?? []).filter {
            $0.hasSuffix("-t1-principal-left.kms") || $0.hasSuffix("-t1-principal-right.kms")
        }
        #expect(!states.isEmpty, "no final-track state in the checkpoint: \(h.output(of: first))")

        let (second, endpoint2) = try h.coordinator(job: job, out: out, ["--checkpoint", checkpoint] + Self.fast)
        try #require(!endpoint2.isEmpty, "\(h.output(of: second))")
        try h.worker(endpoint2)
        try h.worker(endpoint2)
        #expect(h.wait(second, timeout: .seconds(120)) == 0, "\(h.output(of: second))")
        #expect(h.adapterBytes(out) == reference)
        // Some module resumed inside its direction rounds.
        let resumedSteps = h.output(of: second).split(separator: "\n").filter { $0.contains("resuming split module") }.compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("principal_rounds=") }.flatMap { Int($0.dropFirst("principal_rounds=".count)) }
        }
        #expect(resumedSteps.contains { $0 >= 1 }, "\(h.output(of: second))")
        print("split-principal-kill: resumed at principal rounds \(resumedSteps)")
    }
}
