import BrickyardTestSupport
import Foundation
import Testing
@testable import AdapterIO

/// rank_pattern / alpha_pattern resolution as PEFT's get_pattern_key does it, and config flags.
@Suite struct PeftConfigTests {
    static let module = "base_model.model.model.layers.10.self_attn.q_proj"

    @Test(arguments: [
        (["q_proj"], "q_proj"),                                            // suffix, PEFT's usual form
        (["model.layers.10.self_attn.q_proj"], "model.layers.10.self_attn.q_proj"), // name inside the base model
        ([module], module),                                                // our full name
        (["layers.10.self_attn.q_proj", "q_proj"], "layers.10.self_attn.q_proj"),    // longer match wins
        (["layers\\.1\\d\\.self_attn\\.q_proj"], "layers\\.1\\d\\.self_attn\\.q_proj"), // keys are regexes
        (["^model\\.layers\\.10\\.self_attn\\.q_proj"], "^model\\.layers\\.10\\.self_attn\\.q_proj"), // anchored: base-model name
    ])
    func patternKeyMatches(_ keys: [String], _ expected: String) {
        #expect(PeftConfig.patternKey(in: keys, matching: Self.module) == expected)
    }

    @Test(arguments: [["proj"], ["_proj"], ["layers.1.self_attn.q_proj"], ["k_proj"]])
    func patternKeyNeedsAWholeComponentSuffix(_ keys: [String]) {
        #expect(PeftConfig.patternKey(in: keys, matching: Self.module) == nil)
    }

    @Test func patternsGiveRankAndAlpha() {
        let config = PeftConfig(r: 8, loraAlpha: 16, rankPattern: ["q_proj": 4], alphaPattern: ["q_proj": 2])
        #expect(config.rank(for: Self.module) == 4)
        #expect(config.alpha(for: Self.module) == 2)
        #expect(config.rank(for: "base_model.model.model.layers.0.self_attn.v_proj") == 8)
        #expect(config.alpha(for: "base_model.model.model.layers.0.self_attn.v_proj") == 16)
    }

    @Test func fanInFanOutIsRecordedAndFactorShapesStayPeftShapes() throws {
        // PEFT keeps lora_A [r, in] and lora_B [out, r] even with fan_in_fan_out (only ΔW is transposed to
        // the Conv1D weight layout), so the loader records the flag and returns the factors as stored.
        let scratch = try TestDirectory("fan")
        let directory = try Adapters.make(in: scratch, config: Adapters.config(r: 2, alpha: 2, extra: #""fan_in_fan_out": true"#))
        let adapter = try PeftAdapter.load(path: directory)
        let module = try #require(adapter.modules.first)
        #expect(module.fanInFanOut)
        #expect((module.inFeatures, module.outFeatures) == (4, 3))
        let (a, b) = try adapter.loadFactors(module)
        #expect(a.count == 2 * 4 && b.count == 3 * 2)
    }

    @Test(arguments: [DType.f32, .f16, .bf16, .f64])
    func decodeFlagsNonFiniteInEveryDType(_ dtype: DType) {
        for bad in [Float.nan, .infinity, -.infinity] {
            let values: [Float] = [1, 2, bad, 3]
            var bytes = [UInt8](repeating: 0, count: values.count * dtype.byteSize)
            values.withUnsafeBufferPointer { source in bytes.withUnsafeMutableBytes { FloatConversion.encode(source, as: dtype, into: $0) } }
            let (decoded, finite) = bytes.withUnsafeBytes { FloatConversion.decodeChecked($0, dtype: dtype) }
            #expect(!finite)
            #expect(!decoded[2].isFinite)
        }
        let (_, finite) = [UInt8](repeating: 0, count: 4 * dtype.byteSize).withUnsafeBytes { FloatConversion.decodeChecked($0, dtype: dtype) }
        #expect(finite)
    }
}
