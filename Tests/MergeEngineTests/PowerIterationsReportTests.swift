import BrickyardTestSupport
import Foundation
import Kernels
@testable import MergeEngine
import Testing

/// The report's per-module `power_iterations` gives the power iterations lego ran (the most any cluster ran before
/// its stop at ≤ 1e-5 movement), not the job's cap, on split modules and their unsplit twins alike.
@Suite struct PowerIterationsReportTests {
    @Test("power_iterations reports the iterations run: a cap at that count gives the same bytes, a lower cap is reported as such")
    func iterationsRun() throws {
        let scratch = try TestDirectory("power-iterations-report")
        // oversample 1: the only power iterations are the final ones the report speaks of.
        let plan = try SplitQualityTests.plan(scratch, rank: 4, parameters: ["power_iterations": .int(300),
                                                                             "oversample": .int(1)], report: .minimal)
        for module in plan.modules {
            for split in [true, false] {
                var merged = module
                if !split { merged.blocks = nil }
                func merge(cap: Int) throws -> ModuleResult {
                    var spec = plan.spec
                    spec.lego.powerIterations = cap
                    return try LocalMerge.mergeModule(merged, spec: spec)
                }
                let result = try merge(cap: 300)
                let ran = try #require(result.stats.powerIterations, "\(module.name) split \(split)")
                // The stop ended every cluster long before the cap.
                #expect((1..<300).contains(ran), "\(module.name) split \(split): \(ran)")
                let atCount = try merge(cap: ran)
                #expect(atCount.stats.powerIterations == ran)
                #expect(atCount.b.map(\.bitPattern) == result.b.map(\.bitPattern)
                        && atCount.a.map(\.bitPattern) == result.a.map(\.bitPattern), "\(module.name) split \(split)")
                if ran > 1 {
                    let lower = try merge(cap: ran - 1)
                    #expect(lower.stats.powerIterations == ran - 1, "\(module.name) split \(split)")
                }
            }
        }
    }
}
