import AdapterIO
import BrickyardTestSupport
import Foundation
import Testing
@testable import MergeEngine

/// merge-report.json says what lego ran on each module: `balance` on every lego module (0 where the ranks fit T),
/// `balance_rounds` where it is > 0, and `refit` counts only rounds against T (0 on a balanced module); the job's
/// options list `small_pool`, `refit`, `balance` and `balance_rounds` where they apply.
@Suite struct LegoReportTests {
    /// Adapters of a synthetic tiny pool, `count` of rank `rank`, written under `directory`.
    static func adapters(_ count: Int, rank: Int, in directory: String, seed: UInt64) throws -> [AdapterEntry] {
        let pool = try SyntheticPool(shape: .tiny, adapterCount: count, rank: rank, layers: 1, modules: ["q", "v"],
                                     dtype: .f32, seed: seed)
        _ = try pool.write(to: directory)
        return try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
            .map { AdapterEntry(path: directory + "/" + $0) }
    }

    static func merge(_ adapters: [AdapterEntry], parameters: [String: ParameterValue], into out: String) throws
        -> (report: MergeReport, json: String) {
        let job = JobSpec(method: .lego, rank: 4, parameters: parameters, adapters: adapters, sourcePath: "r.yaml")
        let report = try LocalMerge.run(plan: try Planner.plan(job: job), outputDirectory: out)
        return (report, try String(contentsOfFile: out + "/merge-report.json", encoding: .utf8))
    }

    /// 2 adapters of rank 8 at rank 4: 16 units, below the oversample gate (4·2·4 = 32), so the modules select
    /// units and balance (defaults: 0.5, 4 rounds against T̃, no rounds against T).
    @Test func balancedModulesReportTheirBalanceAndNoRefitAgainstT() throws {
        let scratch = try TestDirectory("lego-report-balanced")
        let pool = try Self.adapters(2, rank: 8, in: scratch.file("pool"), seed: 3)
        let (report, json) = try Self.merge(pool, parameters: [:], into: scratch.file("out"))
        #expect(report.modules.count == 2)
        for module in report.modules {
            #expect(module.balance == LegoOptions.defaultBalance)
            #expect(module.balanceRounds == LegoOptions.defaultBalanceRounds)
            #expect(module.refit == 0)
        }
        #expect(json.contains("\"balance_rounds\" : 4"))
        #expect(report.job.options.balance == 0.5 && report.job.options.balanceRounds == 4)
        #expect(report.job.options.refit == 1 && report.job.options.smallPool == "select")
        // `balance: 0`: the rounds are `refit`'s, against T.
        let plain = try Self.merge(pool, parameters: ["balance": .double(0)], into: scratch.file("plain")).report
        for module in plain.modules {
            #expect(module.balance == 0 && module.balanceRounds == nil && module.refit == LegoOptions.defaultRefit)
        }
    }

    /// 8 adapters of rank 8 at rank 4: 64 units, past the gate: k-means at 2k, no balance, `refit` rounds against T.
    @Test func modulesPastTheGateReportBalanceZero() throws {
        let scratch = try TestDirectory("lego-report-gate")
        let pool = try Self.adapters(8, rank: 8, in: scratch.file("pool"), seed: 4)
        let (report, json) = try Self.merge(pool, parameters: ["refit": .int(2)], into: scratch.file("out"))
        for module in report.modules {
            #expect(module.oversample == 2)
            #expect(module.balance == 0 && module.balanceRounds == nil && module.refit == 2)
        }
        #expect(json.contains("\"balance\" : 0"))
    }

    /// The job's options list only what applies: no refit or balance without `reweight: optimal`, no balance with
    /// `small_pool: kmeans`, no `small_pool` without oversampling.
    @Test func jobOptionsListWhatApplies() throws {
        func options(_ parameters: [String: ParameterValue]) throws -> MergeReport.Options {
            let job = JobSpec(method: .lego, rank: 4, parameters: parameters, adapters: [], sourcePath: "j.yaml")
            return MergeReport.Options(try MergeSpec.resolve(job: job, largestInputRank: 4))
        }
        let dual = try options(["reweight": .string("dual")])
        #expect(dual.refit == nil && dual.balance == nil && dual.balanceRounds == nil && dual.smallPool == nil)
        let kmeans = try options(["small_pool": .string("kmeans")])
        #expect(kmeans.smallPool == "kmeans" && kmeans.refit == 1 && kmeans.balance == nil)
        let noOversample = try options(["oversample": .int(1), "balance": .double(1)])
        #expect(noOversample.smallPool == nil && noOversample.balance == nil && noOversample.refit == 1)
        let set = try options(["balance": .double(1), "balance_rounds": .int(2), "refit": .int(3)])
        #expect(set.balance == 1 && set.balanceRounds == 2 && set.refit == 3 && set.smallPool == "select")
        let svd = JobSpec(method: .svd, rank: 4, parameters: [:], adapters: [], sourcePath: "j.yaml")
        let svdOptions = MergeReport.Options(try MergeSpec.resolve(job: svd, largestInputRank: 4))
        #expect(svdOptions.refit == nil && svdOptions.balance == nil && svdOptions.smallPool == nil)
    }
}
