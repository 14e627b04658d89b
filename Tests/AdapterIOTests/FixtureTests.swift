import BrickyardTestSupport
import Foundation
import Testing
@testable import AdapterIO

/// The PEFT fixtures: ranks, scalings and shapes as PEFT computes them, and ΔW = s·B·A against PEFT's own deltas.
@Suite struct FixtureTests {
    struct Expectation: Sendable, CustomStringConvertible {
        var adapter: String
        var moduleCount: Int
        /// Leaf name → (rank, alpha, scaling).
        var perLeaf: [String: (Int, Double, Double)]
        var dtype: String
        var description: String { adapter }
    }

    static let expectations: [Expectation] = [
        Expectation(adapter: "a_r8", moduleCount: 6, perLeaf: ["q_proj": (8, 16, 2), "v_proj": (8, 16, 2), "up_proj": (8, 16, 2)], dtype: "float32"),
        Expectation(adapter: "b_r4", moduleCount: 6, perLeaf: ["q_proj": (4, 8, 2), "v_proj": (4, 8, 2), "up_proj": (4, 8, 2)], dtype: "float32"),
        Expectation(adapter: "c_rslora", moduleCount: 8, perLeaf: ["q_proj": (8, 32, 32 / 8.0.squareRoot()), "k_proj": (8, 32, 32 / 8.0.squareRoot()),
                                                                  "v_proj": (8, 32, 32 / 8.0.squareRoot()), "o_proj": (8, 32, 32 / 8.0.squareRoot())], dtype: "float32"),
        Expectation(adapter: "d_pattern", moduleCount: 4, perLeaf: ["q_proj": (4, 4, 1), "v_proj": (8, 16, 2)], dtype: "float32"),
        Expectation(adapter: "e_bf16", moduleCount: 6, perLeaf: ["q_proj": (8, 16, 2), "v_proj": (8, 16, 2), "up_proj": (8, 16, 2)], dtype: "bfloat16"),
    ]

    /// Shapes of the tiny Llama (hidden 64, intermediate 128, 2 KV heads of 16).
    static let shapes: [String: (inFeatures: Int, outFeatures: Int)] = [
        "q_proj": (64, 64), "k_proj": (64, 32), "v_proj": (64, 32), "o_proj": (64, 64), "up_proj": (64, 128),
    ]

    @Test(arguments: expectations)
    func reportMatchesPeft(_ expected: Expectation) throws {
        let summary = try AdapterSummary(adapter: PeftAdapter.load(path: PeftTinyFixtures.adapter(expected.adapter)))
        #expect(summary.dtype == expected.dtype)
        #expect(summary.modules.count == expected.moduleCount)
        for module in summary.modules {
            let leaf = PeftNames.leaf(module.name)
            let (rank, alpha, scaling) = try #require(expected.perLeaf[leaf], "unexpected module \(module.name)")
            let shape = try #require(Self.shapes[leaf])
            #expect(module.rank == rank)
            #expect(module.alpha == alpha)
            #expect(abs(module.scaling - scaling) <= 1e-12 * scaling)
            #expect(module.inFeatures == shape.inFeatures)
            #expect(module.outFeatures == shape.outFeatures)
            #expect(module.name.hasPrefix("base_model.model.model.layers."))
        }
        #expect(summary.parameters == summary.modules.reduce(0) { $0 + $1.rank * ($1.inFeatures + $1.outFeatures) })
    }

    @Test(arguments: PeftTinyFixtures.adapterNames)
    func deltaMatchesPeft(_ name: String) throws {
        let adapter = try PeftAdapter.load(path: PeftTinyFixtures.adapter(name))
        let expected = try SafetensorsFile(path: PeftTinyFixtures.expectedDelta(name))
        #expect(expected.tensors.map(\.name) == adapter.modules.map(\.name))
        for module in adapter.modules {
            let (a, b) = try adapter.loadFactors(module)
            let delta = denseDelta(a: a, b: b, rank: module.rank, inFeatures: module.inFeatures,
                                   outFeatures: module.outFeatures, scaling: module.scaling)
            let reference = try expected.floats(module.name)
            #expect(try expected.info(module.name).shape == [module.outFeatures, module.inFeatures])
            var worst = 0.0
            var scale = 0.0
            for (mine, theirs) in zip(delta, reference) {
                worst = max(worst, abs(mine - Double(theirs)))
                scale = max(scale, abs(Double(theirs)))
            }
            #expect(worst <= 1e-6 * scale, "\(module.name): max |Δ| \(worst) vs max |ref| \(scale)")
        }
    }

    @Test func frobeniusNormInLowRankFormMatchesDense() throws {
        for name in PeftTinyFixtures.adapterNames {
            let adapter = try PeftAdapter.load(path: PeftTinyFixtures.adapter(name))
            for module in adapter.modules {
                let (a, b) = try adapter.loadFactors(module)
                let dense = denseDelta(a: a, b: b, rank: module.rank, inFeatures: module.inFeatures,
                                       outFeatures: module.outFeatures, scaling: module.scaling)
                let expected = dense.reduce(0) { $0 + $1 * $1 }.squareRoot()
                let lowRank = LowRankNorm.frobenius(a: a, b: b, rank: module.rank, inFeatures: module.inFeatures,
                                                    outFeatures: module.outFeatures, scaling: module.scaling)
                #expect(abs(lowRank - expected) <= 1e-9 * expected)
            }
        }
    }

    @Test func tensorReferenceReadsWhatTheFileHolds() throws {
        let adapter = try PeftAdapter.load(path: PeftTinyFixtures.adapter("e_bf16"))
        let module = try #require(adapter.modules.first)
        let (a, b) = try adapter.loadFactors(module)
        #expect(try TensorReader.readFloats(module.a) == a)
        #expect(try TensorReader.readFloats(module.b) == b)
        #expect(module.a.name == module.name + ".lora_A.weight")
    }
}
