import BrickyardTestSupport
import Foundation
import Testing

/// The table `brickyard merge` prints: figures that were not measured must not read as measured.
@Suite struct MergeSummaryTests {
    @Test(arguments: [("minimal", true), ("exact", false)])
    func relativeErrorIsShownOnlyWhenMeasured(report: String, omitted: Bool) throws {
        let scratch = try TestDirectory("summary-\(report)")
        let job = scratch.file("job.yaml")
        try "method: svd\nrank: 4\nreport: \(report)\nadapters:\n  - path: \(PeftTinyFixtures.adapter("a_r8"))\n  - path: \(PeftTinyFixtures.adapter("a_r8"))\n"
            .write(toFile: job, atomically: true, encoding: .utf8)
        let run = try BrickyardExecutable.run(["merge", job, "--out", scratch.file("out"), "--in-process"])
        #expect(run.status == 0, "\(run.stderr)")
        let summary = run.stdout + run.stderr
        #expect(summary.contains("not measured (report: minimal)") == omitted, "\(summary)")
        #expect(summary.contains("mean relative error") == !omitted, "\(summary)")
    }
}
