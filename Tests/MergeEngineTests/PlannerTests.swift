import Foundation
import Testing
@testable import AdapterIO
@testable import MergeEngine

@Suite struct PlannerTests {
    @Test func coefficientsAreNormalisedWeightTimesScaling() throws {
        let plan = try Planner.plan(job: .fixtureJob(.cat, adapters: ["a_r8", "c_rslora", "d_pattern"], weights: [1, 2, 5]))
        let weights = [1.0 / 8, 2.0 / 8, 5.0 / 8]
        // Scalings as PEFT computes them: a_r8 16/8, c_rslora 32/sqrt(8), d_pattern q_proj 4/4 and v_proj 16/8.
        for module in plan.modules {
            for source in module.sources {
                let expectedScaling: Double
                switch (source.adapterIndex, module.name.hasSuffix("q_proj")) {
                case (0, _): expectedScaling = 2
                case (1, _): expectedScaling = 32 / 8.0.squareRoot()
                case (_, true): expectedScaling = 1
                case (_, false): expectedScaling = 2
                }
                #expect(abs(source.coefficient - weights[source.adapterIndex] * expectedScaling) < 1e-12, "\(module.name)")
            }
        }
    }

    @Test func modulesAreTheSortedUnionWithPartialSources() throws {
        let plan = try Planner.plan(job: .fixtureJob(.cat, adapters: ["a_r8", "c_rslora"]))
        let names = plan.modules.map(\.name)
        #expect(names == names.sorted())
        #expect(names.count == 10)  // q, v, up from a_r8; q, k, v, o from c_rslora; two layers
        let kProj = try #require(plan.modules.first { $0.name.hasSuffix("layers.0.self_attn.k_proj") })
        #expect(kProj.sources.map(\.adapterIndex) == [1])
        let qProj = try #require(plan.modules.first { $0.name.hasSuffix("layers.0.self_attn.q_proj") })
        #expect(qProj.sources.map(\.adapterIndex) == [0, 1])
        #expect(qProj.seed == ModuleSeed.derive(jobSeed: 0, module: qProj.name))
        #expect(plan.targetModules == ["k_proj", "o_proj", "q_proj", "up_proj", "v_proj"])
    }

    @Test func rankDefaultsToTheLargestInputRank() throws {
        #expect(try Planner.plan(job: .fixtureJob(.svd, adapters: ["b_r4", "d_pattern"])).spec.rank == 8)
        #expect(try Planner.plan(job: .fixtureJob(.svd, adapters: ["b_r4"], rank: 2)).spec.rank == 2)
    }

    @Test func withoutNormalizeWeightsAreUsedAsGiven() throws {
        let plan = try Planner.plan(job: .fixtureJob(.cat, adapters: ["a_r8", "b_r4"], weights: [1, -1], normalize: false))
        let module = try #require(plan.modules.first)
        #expect(module.sources.map(\.coefficient) == [2, -2])
    }

    @Test(arguments: [
        ([String: ParameterValue](), MergeMethodName.lego, true),
        (["iterations": .int(5), "tolerance": .int(0), "reweight": .string("optimal"), "gauge": .string("raw"), "init": .string("kmeans++")], .lego, true),
        (["density": .double(1)], .ties, true),
        (["density": .int(1), "majority_sign": .string("frequency")], .dareTies, true),
        (["majority_sign": .string("frequency")], .magnitudePrune, false),
        (["density": .bool(true)], .dareLinear, false),
        (["gauge": .string("balanced")], .svd, false),
    ])
    func parametersAreCheckedPerMethod(parameters: [String: ParameterValue], method: MergeMethodName, valid: Bool) {
        let job = JobSpec(method: method, parameters: parameters, adapters: [], sourcePath: "p.yaml")
        let outcome = Result { try MergeSpec.resolve(job: job, largestInputRank: 4) }
        switch outcome {
        case .success(let spec):
            #expect(valid)
            if method == .lego && parameters["iterations"] != nil {
                #expect(spec.lego.iterations == 5 && spec.lego.tolerance == 0 && spec.lego.reweight == .optimal && spec.lego.gauge == .raw)
            }
        case .failure(let error):
            #expect(!valid, "\(error)")
            #expect("\(error)".hasPrefix("p.yaml: parameters."))
        }
    }

    @Test func rankBelowOneIsRefusedBySpecResolution() {
        let job = JobSpec(method: .svd, rank: 0, adapters: [], sourcePath: "r.yaml")
        #expect(throws: MergeError("r.yaml: rank: must be at least 1, got 0")) { try MergeSpec.resolve(job: job, largestInputRank: 4) }
    }

    /// Adapters naming different base models (same shapes) are merged with one warning naming each model, how many
    /// adapters name it and one of them; one base model, or configs that name none, give no warning.
    @Test func differentBaseModelsAreMergedWithAWarning() throws {
        let source = try Planner.plan(job: .fixtureJob(.cat, adapters: ["a_r8"]))
        let modules = source.modules.map { $0.sources[0].module }
        func plan(_ bases: [String?]) throws -> MergePlan {
            let job = JobSpec(method: .cat, adapters: bases.indices.map { AdapterEntry(path: "/pool/\($0)") },
                              sourcePath: "bases.yaml")
            return try Planner.plan(job: job) { entry in
                LoadedAdapter(path: entry.path, modules: modules, baseModelNameOrPath: bases[Int(entry.path.dropFirst(6))!])
            }
        }
        #expect(try plan(["m/base", "m/base", nil]).warnings.isEmpty)
        let mixed = try plan(["m/base", nil, "m/instruct", "m/base"])
        #expect(mixed.warnings.count == 1)
        let text = mixed.warnings.first ?? ""
        #expect(text.contains("2 different base models") && text.contains("m/base (2 adapters, e.g. /pool/0)")
                && text.contains("m/instruct (1 adapter, e.g. /pool/2)") && text.contains("the output names m/base"))
        #expect(mixed.baseModelNameOrPath == "m/base")
    }
}
