import Testing
@testable import MergeEngine

@Suite struct SeedTests {
    @Test func seedDependsOnJobSeedAndModuleOnly() {
        let a = ModuleSeed.derive(jobSeed: 7, module: "model.layers.0.self_attn.q_proj")
        #expect(a == ModuleSeed.derive(jobSeed: 7, module: "model.layers.0.self_attn.q_proj"))
        #expect(a != ModuleSeed.derive(jobSeed: 8, module: "model.layers.0.self_attn.q_proj"))
        #expect(a != ModuleSeed.derive(jobSeed: 7, module: "model.layers.0.self_attn.k_proj"))
    }
}
