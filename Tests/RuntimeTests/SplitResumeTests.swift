import BrickyardTestSupport
import Foundation
import MergeEngine
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Resuming split modules from the sectioned k-means checkpoint (`KMeansStateFiles.swift`) when a file is damaged:
/// the coordinator refuses it with one warning naming the file, starts that module's rounds over, resumes the others,
/// and the output is byte for byte the in-process one.
@Suite(.serialized) struct SplitResumeTests {
    @Test("a truncated k-means state file is refused with a clear message; that module's rounds restart, bytes identical")
    func truncatedStateRestartsTheModule() throws {
        let h = try ProcessHarness("split-resume-damaged")
        defer { h.finish() }
        let job = try SplitModuleTests.splitJob(h, reweight: "optimal")
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out", checkpoint = h.path + "/ckpt"
        let (first, endpoint) = try h.coordinator(job: job, out: out,
                                                  ["--checkpoint", checkpoint, "--log-level", "debug"] + SplitModuleTests.fast)
        try #require(!endpoint.isEmpty, "\(h.output(of: first))")
        let slow = ["--slow-tasks-ms", "60"]
        let workers = [try h.worker(endpoint, slow), try h.worker(endpoint, slow)]
        func reducedRounds() -> Int {
            h.output(of: first).split(separator: "\n").filter { $0.contains("split module round reduced") }.compactMap { line in
                line.split(separator: " ").first { $0.hasPrefix("round=") }.flatMap { Int($0.dropFirst("round=".count)) }
            }.max() ?? 0
        }
        #expect(eventually(timeout: .seconds(90)) { reducedRounds() >= 8 || !first.isRunning }, "\(h.output(of: first))")
        kill(first.processIdentifier, SIGKILL)
        _ = h.wait(first, timeout: .seconds(10))
        for worker in workers { kill(worker.processIdentifier, SIGKILL); _ = h.wait(worker, timeout: .seconds(10)) }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: checkpoint)) ?? []).sorted()
        // Restart 0's run section of the first module with k-means state: cut in half.
        let damaged = try #require(files.first { $0.hasSuffix("-t0-run.kms") }, "no k-means state: \(files)")
        let path = checkpoint + "/" + damaged
        let bytes = try #require(FileManager.default.contents(atPath: path))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))

        let (second, endpoint2) = try h.coordinator(job: job, out: out, ["--checkpoint", checkpoint] + SplitModuleTests.fast)
        try #require(!endpoint2.isEmpty, "\(h.output(of: second))")
        try h.worker(endpoint2)
        try h.worker(endpoint2)
        #expect(h.wait(second, timeout: .seconds(120)) == 0, "\(h.output(of: second))")
        #expect(h.adapterBytes(out) == reference)
        // One warning naming the file and what is wrong; that module started over, the others resumed.
        let lines = h.output(of: second).split(separator: "\n")
        let refused = lines.filter { $0.contains("k-means state refused; the module's rounds start over") }
        try #require(refused.count == 1, "\(h.output(of: second))")
        #expect(refused[0].contains(damaged) && refused[0].contains("damaged or truncated"), "\(refused[0])")
        let module = try #require(refused[0].split(separator: " ").first { $0.hasPrefix("module=") }?
            .dropFirst("module=".count))
        let report = try h.report(out)
        let resumed = report.runtime?.resumedRounds ?? [:]
        #expect(resumed[String(module)] == nil, "\(resumed)")
        print("split-resume-damaged: refused \(damaged) (module \(module)); resumed rounds \(resumed.sorted { $0.key < $1.key })")
    }
}
