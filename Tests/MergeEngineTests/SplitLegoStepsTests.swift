import BrickyardTestSupport
import Foundation
import Kernels
@testable import MergeEngine
import Testing

/// lego's default steps on split modules (refit; docs/distributed-kmeans.md): a split module merges like its unsplit
/// twin. Exact relative errors (`report: exact`) on the tiny pool of `SplitQualityTests` (12 rank-8 adapters, 6 shared
/// directions, 96 units per module, 2–3 blocks).
@Suite struct SplitLegoStepsTests {
    static func errors(_ parameters: [String: ParameterValue], rank: Int = 6,
                       scratch: TestDirectory) throws -> (split: [Double], unsplit: [Double], results: [ModuleResult]) {
        let plan = try SplitQualityTests.plan(scratch, rank: rank, parameters: parameters, report: .exact)
        var split: [Double] = [], unsplit: [Double] = [], results: [ModuleResult] = []
        for module in plan.modules {
            let result = try LocalMerge.mergeModule(module, spec: plan.spec)
            var whole = module
            whole.blocks = nil
            split.append(result.stats.relativeError)
            unsplit.append(try LocalMerge.mergeModule(whole, spec: plan.spec).stats.relativeError)
            results.append(result)
        }
        return (split, unsplit, results)
    }

    @Test("refit on split modules: runs by default, lowers the error, and comes within a small factor of unsplit lego",
          arguments: [2, 4, 6])
    func refitClosesTheGap(rank: Int) throws {
        let scratch = try TestDirectory("split-lego-refit-\(rank)")
        let withRefit = try Self.errors([:], rank: rank, scratch: scratch)
        let without = try Self.errors(["refit": .int(0)], rank: rank, scratch: scratch)
        print("split-lego-refit rank \(rank): split \(withRefit.split), split refit 0 \(without.split), unsplit \(withRefit.unsplit)")
        #expect(withRefit.results.allSatisfy { $0.stats.refit == LegoOptions.defaultRefit })
        #expect(without.results.allSatisfy { $0.stats.refit == 0 })
        for m in withRefit.split.indices {
            #expect(withRefit.split[m] < without.split[m], "module \(m): \(withRefit.split[m]) vs \(without.split[m])")
            #expect(withRefit.split[m] <= 1.1 * withRefit.unsplit[m],
                    "module \(m): split \(withRefit.split[m]), unsplit \(withRefit.unsplit[m])")
        }
        // Refit only continues `optimal`'s least-squares fit: with `dual` it does not run (as unsplit).
        let dual = try Self.errors(["reweight": .string("dual")], rank: rank, scratch: scratch)
        #expect(dual.results.allSatisfy { $0.stats.refit == 0 })
    }
}
