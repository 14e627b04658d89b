import BrickyardTestSupport
import Foundation
import Testing
@testable import AdapterIO

/// The written adapter_config.json must load in old and new PEFT alike (scripts/peft-check runs the real thing;
/// these tests pin the rules it found).
@Suite struct PeftConfigCompatibilityTests {
    /// `dataclasses.fields(LoraConfig)` of PEFT 0.13.2, which raises `unexpected keyword argument` on any other key.
    static let peft0132Fields: Set<String> = [
        "alpha_pattern", "auto_mapping", "base_model_name_or_path", "bias", "fan_in_fan_out", "inference_mode",
        "init_lora_weights", "layer_replication", "layers_pattern", "layers_to_transform", "loftq_config", "lora_alpha",
        "lora_dropout", "megatron_config", "megatron_core", "modules_to_save", "peft_type", "r", "rank_pattern",
        "revision", "runtime_config", "target_modules", "task_type", "use_dora", "use_rslora",
    ]

    /// Layer 1 and layer 11 (and a name that is a dotted suffix of another) must not pick up each other's pattern.
    static let modules: [PeftOutputModule] = [
        PeftOutputModule(name: "base_model.model.model.layers.1.self_attn.q_proj", rank: 4, inFeatures: 8, outFeatures: 8),
        PeftOutputModule(name: "base_model.model.model.layers.11.self_attn.q_proj", rank: 6, inFeatures: 8, outFeatures: 8),
        PeftOutputModule(name: "base_model.model.model.layers.2.self_attn.q_proj", rank: 8, inFeatures: 8, outFeatures: 8),
        PeftOutputModule(name: "base_model.model.model.layers.2.self_attn.v_proj", rank: 8, inFeatures: 8, outFeatures: 4),
        PeftOutputModule(name: "base_model.model.model.layers.3.self_attn.v_proj", rank: 2, inFeatures: 8, outFeatures: 4),
    ]

    static func writtenConfig() throws -> [String: Any] {
        let data = try PeftConfigWriter.json(modules: modules, config: PeftOutputConfig(), path: "test")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func everyKeyIsKnownToOldAndNewPeft() throws {
        let keys = Set(try Self.writtenConfig().keys)
        #expect(keys == PeftConfigWriter.keys)
        #expect(keys.isSubset(of: Self.peft0132Fields), "unknown to PEFT 0.13.2: \(keys.subtracting(Self.peft0132Fields).sorted())")
        for name in PeftTinyFixtures.adapterNames {
            let data = try Data(contentsOf: URL(fileURLWithPath: PeftTinyFixtures.adapter(name) + "/adapter_config.json"))
            let peft0212 = Set(try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any]).keys)
            #expect(keys.isSubset(of: peft0212), "\(name): not written by PEFT 0.21.2: \(keys.subtracting(peft0212).sorted())")
        }
    }

    /// How a PEFT version picks the rank of `module` (its name inside the base model) from the config.
    enum PatternRule: String, CaseIterable, Sendable {
        /// PEFT < 0.14: first key (file order) with `re.match(".*\.{key}$", name)`, else the name itself, looked up exactly.
        case before014
        /// PEFT ≥ 0.14 `get_pattern_key`: first key with `re.match("(.*\.)?({key})$", name)`, else the name itself.
        case since014

        func rank(of module: String, config: [String: Any], orderedKeys: [String]) -> Int? {
            let pattern = config["rank_pattern"] as? [String: Int] ?? [:]
            let template = self == .before014 ? ".*\\.KEY$" : "(.*\\.)?(KEY)$"
            let matched = orderedKeys.first { key in
                guard let regex = try? NSRegularExpression(pattern: "^" + template.replacingOccurrences(of: "KEY", with: key)) else { return false }
                return regex.firstMatch(in: module, range: NSRange(module.startIndex..., in: module)) != nil
            }
            return pattern[matched ?? module] ?? config["r"] as? Int
        }
    }

    @Test(arguments: PatternRule.allCases)
    func everyModuleGetsItsRankAndScalingOne(rule: PatternRule) throws {
        let config = try Self.writtenConfig()
        // PEFT iterates the JSON object in file order; we write keys sorted.
        let orderedKeys = (config["rank_pattern"] as? [String: Int] ?? [:]).keys.sorted()
        #expect(config["r"] as? Int == 8)
        #expect(config["lora_alpha"] as? Int == 8)
        #expect(config["rank_pattern"] as? [String: Int] == config["alpha_pattern"] as? [String: Int])
        for module in Self.modules {
            let inner = PeftNames.strippingWrapperPrefix(module.name)
            #expect(rule.rank(of: inner, config: config, orderedKeys: orderedKeys) == module.rank, "\(rule): \(inner)")
        }
    }
}
