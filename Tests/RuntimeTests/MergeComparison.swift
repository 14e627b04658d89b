import Foundation
import MergeEngine
import Testing

/// What `ProcessHarness.expectMergeMatchesInProcess` ran, for the caller's further checks.
struct MergeComparison {
    /// The distributed merge (its log: `ProcessHarness.output(of:)`).
    let merge: Process
    /// Its report, and the in-process reference's.
    let report: MergeReport
    let reference: MergeReport
    /// The reference's adapter bytes.
    let referenceBytes: Data

    /// Every module's quality figures, bit for bit.
    static func figures(_ report: MergeReport) -> [[UInt64?]] {
        report.modules.map { module in
            [module.relativeError.bitPattern, module.svdFloor?.bitPattern, module.relativeErrorStderr?.bitPattern,
             module.svdFloorStderr?.bitPattern, module.qualityEstimated == true ? 1 : 0]
        }
    }
}

extension ProcessHarness {
    /// Merges `job` in process (into `reference/`) and with `workers` local workers (into `out/`, with `options`),
    /// and expects the distributed merge to succeed with the reference's adapter bytes and quality figures.
    @discardableResult
    func expectMergeMatchesInProcess(job: String, workers: Int, options: [String] = [], out: String = "out",
                                     timeout: Duration = .seconds(120),
                                     sourceLocation: SourceLocation = #_sourceLocation) throws -> MergeComparison {
        let referenceBytes = try inProcessReference(job: job)
        let reference = try report(path + "/reference")
        let out = path + "/" + out
        let merge = try launch(["merge", job, "--out", out, "--workers", "\(workers)"] + options)
        #expect(wait(merge, timeout: timeout) == 0, "\(output(of: merge))", sourceLocation: sourceLocation)
        #expect(adapterBytes(out) == referenceBytes, "\(workers) workers", sourceLocation: sourceLocation)
        let report = try report(out)
        #expect(MergeComparison.figures(report) == MergeComparison.figures(reference), sourceLocation: sourceLocation)
        return MergeComparison(merge: merge, report: report, reference: reference, referenceBytes: referenceBytes)
    }
}
