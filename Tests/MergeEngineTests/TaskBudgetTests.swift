import BrickyardTestSupport
import AdapterIO
import Foundation
import Kernels
@testable import MergeEngine
import Testing

/// Which modules split, where their blocks fall, and that a split module merged in process is lego's clustering
/// of the same units.
@Suite struct TaskBudgetTests {
    static func module(ranks: [Int], out: Int = 10, in inFeatures: Int = 6) -> ModulePlan {
        let sources = ranks.enumerated().map { index, rank in
            let ref = TensorRef(path: "/x/\(index)", dtype: .f32, shape: [rank, inFeatures], byteOffset: 0, byteCount: 4 * rank * inFeatures)
            return ModuleSource(adapterIndex: index, module: LoraModuleInfo(name: "m", rank: rank, alpha: 1, scaling: 1,
                                                                            inFeatures: inFeatures, outFeatures: out, a: ref, b: ref),
                                coefficient: 1)
        }
        return ModulePlan(name: "m", outFeatures: out, inFeatures: inFeatures, sources: sources, seed: 1)
    }

    @Test("blocks are whole adapters in job order, at most budget / (4 (out + in)) units each, offsets Σ ranks")
    func blockBoundaries() throws {
        // 64 bytes per unit; a 640-byte budget holds 10 units.
        let plan = Self.module(ranks: [4, 4, 4, 8, 12, 2, 2])
        let blocks = try #require(TaskBudget.blocks(for: plan, rank: 3, budgetBytes: 640))
        #expect(blocks.map(\.sources) == [0..<2, 2..<3, 3..<4, 4..<5, 5..<7])
        #expect(blocks.map(\.unitIDOffset) == [0, 8, 12, 20, 32])
        // A module that fits, or with no more units than clusters, stays whole.
        #expect(TaskBudget.blocks(for: plan, rank: 3, budgetBytes: 64 * 36) == nil)
        #expect(TaskBudget.blocks(for: plan, rank: 36, budgetBytes: 64) == nil)
        // Only the budget decides: the same plan gives the same blocks every time (no worker count involved).
        #expect(TaskBudget.blocks(for: plan, rank: 3, budgetBytes: 640) == blocks)
    }

    @Test("only lego plans split; max_task_mb comes from the job and the command line overrides it")
    func applyToPlans() throws {
        var job = JobSpec.fixtureJob(.lego, adapters: ["a_r8", "b_r4", "c_rslora", "d_pattern", "e_bf16"], rank: 4)
        job.maxTaskMB = 0.01
        var plan = try Planner.plan(job: job)
        #expect(plan.modules.contains { $0.blocks != nil })
        TaskBudget.apply(to: &plan, megabytes: 100)
        #expect(plan.modules.allSatisfy { $0.blocks == nil })
        var cat = JobSpec.fixtureJob(.cat, adapters: ["a_r8", "b_r4"])
        cat.maxTaskMB = 0.001
        #expect(try Planner.plan(job: cat).modules.allSatisfy { $0.blocks == nil })
    }

    @Test("job files read max_task_mb and refuse bad values")
    func jobFileKey() throws {
        let base = "method: lego\nadapters:\n  - path: \(PeftTinyFixtures.adapter("a_r8"))\n"
        #expect(try JobSpec.parse(yaml: "max_task_mb: 0.5\n" + base, baseDirectory: "/", fileName: "job.yaml").maxTaskMB == 0.5)
        #expect(try JobSpec.parse(yaml: base, baseDirectory: "/", fileName: "job.yaml").maxTaskMB == nil)
        for bad in ["0", "-3", "lots"] {
            #expect(throws: JobFileError.self) {
                _ = try JobSpec.parse(yaml: "max_task_mb: \(bad)\n" + base, baseDirectory: "/", fileName: "job.yaml")
            }
        }
    }

    @Test("a split fixture module merged in process: rank k, every unit clustered, error within 2x the unsplit method's")
    func splitModuleInProcess() throws {
        var job = JobSpec.fixtureJob(.lego, adapters: ["a_r8", "b_r4", "c_rslora", "d_pattern", "e_bf16"], rank: 4)
        job.maxTaskMB = 0.01
        let plan = try Planner.plan(job: job)
        let module = try #require(plan.modules.first { $0.blocks != nil })
        let result = try LocalMerge.mergeModule(module, spec: plan.spec)
        #expect(result.rank == 4)
        #expect(result.stats.relativeError.isFinite && result.stats.svdFloor != nil)
        let input = try module.loadInput()
        let units = try RankOneUnits.extract(terms: try input.factorTerms(), outFeatures: input.outFeatures,
                                             inFeatures: input.inFeatures, gauge: .balanced)
        #expect(result.stats.clusterSizes?.reduce(0, +) == units.count)
        // Against the dense target (independent of both paths): these fixtures have no shared directions, so a
        // rank-4 lego merge is far from T either way; the split clustering must stay within reach of the unsplit one.
        let target = Dense.target(input)
        let error = Dense.relativeError(Dense.product(result), target)
        var unsplitModule = module
        unsplitModule.blocks = nil
        let unsplit = try LocalMerge.mergeModule(unsplitModule, spec: plan.spec)
        #expect(error <= 2 * unsplit.stats.relativeError + 1e-6, "split \(error), unsplit \(unsplit.stats.relativeError)")
    }
}
