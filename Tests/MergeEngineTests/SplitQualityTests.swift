import BrickyardTestSupport
import AdapterIO
import Foundation
import Kernels
@testable import MergeEngine
import Testing

/// Split lego modules report their relative error and SVD floor like unsplit modules: exact or estimated by the
/// same rule, `report: exact | minimal` honoured. The reference is the unsplit modules' own quality code
/// (`ModuleQuality`, `report: exact`: dense routes on the module's stacked input) applied to the split result.
@Suite struct SplitQualityTests {
    /// 12 rank-8 adapters of the tiny shape (q 64×64, up 128×64), 6 shared directions: 96 units per module.
    static func plan(_ scratch: TestDirectory, rank: Int, parameters: [String: ParameterValue],
                     report: ReportLevel? = nil) throws -> MergePlan {
        let pool = scratch.file("pool")
        if !FileManager.default.fileExists(atPath: pool) {
            _ = try SyntheticPool(adapterCount: 12, rank: 8, layers: 1, modules: ["q", "up"], dtype: .f32, seed: 3,
                                  sharedUnits: 6).write(to: pool)
        }
        let paths = try FileManager.default.contentsOfDirectory(atPath: pool).sorted().map { pool + "/" + $0 }
        var job = JobSpec(method: .lego, rank: rank, seed: 5, parameters: parameters,
                          adapters: paths.map { AdapterEntry(path: $0) }, sourcePath: "split-quality.yaml")
        job.maxTaskMB = 0.03
        job.report = report
        let plan = try Planner.plan(job: job)
        #expect(plan.modules.count == 2 && plan.modules.allSatisfy { ($0.blocks?.count ?? 0) >= 2 })
        return plan
    }

    /// The split module, its unsplit twin, and the exact figures of the split result's own factors.
    static func merge(_ module: ModulePlan, spec: MergeSpec) throws -> (split: ModuleResult, unsplit: ModuleResult,
                                                                        reference: ModuleStats) {
        let split = try LocalMerge.mergeModule(module, spec: spec)
        var whole = module
        whole.blocks = nil
        let unsplit = try LocalMerge.mergeModule(whole, spec: spec)
        var reference = split
        reference.stats = ModuleStats(relativeError: .nan)
        try ModuleQuality.fillStats(&reference, input: try module.loadInput(), seed: module.seed, report: .exact)
        return (split, unsplit, reference.stats)
    }

    @Test("exact by the rule: error and floor equal the dense figures to 1e-6; the floor equals the unsplit module's")
    func exactFigures() throws {
        let scratch = try TestDirectory("split-quality-exact")
        // tolerance 0: both paths run all 30 iterations, so the rule sees the same modelled flops. Rank 4 < the 6
        // shared directions keeps the floor well above Float cancellation (a floor near 1e-3 is only good to ~1e-4
        // on any Float route: floor² is a difference of ‖T‖² and the captured energy).
        let plan = try Self.plan(scratch, rank: 4, parameters: ["iterations": .int(30), "tolerance": .double(0)])
        for module in plan.modules {
            let (split, unsplit, reference) = try Self.merge(module, spec: plan.spec)
            #expect(split.rank == 4 && unsplit.rank == 4)
            #expect((reference.svdFloor ?? 0) > 0.05)
            #expect(split.stats.qualityEstimated == nil && unsplit.stats.qualityEstimated == nil)
            #expect(abs(split.stats.relativeError - reference.relativeError) <= 1e-6,
                    "\(module.name): \(split.stats.relativeError) vs \(reference.relativeError)")
            let floor = try #require(split.stats.svdFloor), expected = try #require(reference.svdFloor)
            #expect(abs(floor - expected) <= 1e-6, "\(module.name): floor \(floor) vs \(expected)")
            #expect(abs(floor - (unsplit.stats.svdFloor ?? .nan)) <= 1e-6, "\(module.name): unsplit \(unsplit.stats)")
            #expect(split.stats.relativeError > floor)
        }
    }

    @Test("estimated by the rule: within 4 standard errors of the exact figures; report: exact and minimal honoured")
    func estimatedFigures() throws {
        let scratch = try TestDirectory("split-quality-estimated")
        let parameters: [String: ParameterValue] = ["iterations": .int(3), "tolerance": .double(0)]
        let plan = try Self.plan(scratch, rank: 2, parameters: parameters)
        let exactPlan = try Self.plan(scratch, rank: 2, parameters: parameters, report: .exact)
        let minimalPlan = try Self.plan(scratch, rank: 2, parameters: parameters, report: .minimal)
        for (index, module) in plan.modules.enumerated() {
            let (split, unsplit, reference) = try Self.merge(module, spec: plan.spec)
            #expect(split.stats.qualityEstimated == true && unsplit.stats.qualityEstimated == true)
            let errorSE = try #require(split.stats.relativeErrorStandardError)
            let floor = try #require(split.stats.svdFloor), floorSE = try #require(split.stats.svdFloorStandardError)
            let exactError = reference.relativeError, exactFloor = try #require(reference.svdFloor)
            #expect(errorSE > 0 && errorSE < 0.1 * exactError, "\(module.name): ± \(errorSE)")
            #expect(abs(split.stats.relativeError - exactError) <= 4 * errorSE + 1e-6,
                    "\(module.name): \(split.stats.relativeError) ± \(errorSE) vs \(exactError)")
            #expect(abs(floor - exactFloor) <= 4 * floorSE + 1e-6, "\(module.name): floor \(floor) ± \(floorSE) vs \(exactFloor)")
            // The unsplit module's estimate of the same floor agrees within both stated errors.
            let unsplitFloor = try #require(unsplit.stats.svdFloor)
            let both = (floorSE * floorSE + pow(unsplit.stats.svdFloorStandardError ?? 0, 2)).squareRoot()
            #expect(abs(floor - unsplitFloor) <= 4 * both + 1e-6, "\(module.name): \(floor) vs unsplit \(unsplitFloor)")

            // report: exact forces the exact figures (same clustering, same factors).
            let forced = try LocalMerge.mergeModule(exactPlan.modules[index], spec: exactPlan.spec)
            #expect(forced.b == split.b && forced.a == split.a)
            #expect(forced.stats.qualityEstimated == nil)
            #expect(abs(forced.stats.relativeError - exactError) <= 1e-6)
            #expect(abs((forced.stats.svdFloor ?? .nan) - exactFloor) <= 1e-6)
            // report: minimal runs no quality round.
            let bare = try LocalMerge.mergeModule(minimalPlan.modules[index], spec: minimalPlan.spec)
            #expect(bare.stats.qualityOmitted == true && bare.stats.svdFloor == nil)
            #expect(bare.b == split.b && bare.a == split.a)
        }
    }
}
