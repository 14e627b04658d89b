import BrickyardTestSupport
import AdapterIO
import Foundation
import Testing
@testable import MergeEngine

/// The merged adapter_config.json's `target_modules` must make PEFT create LoRA layers exactly where the output
/// has factors (real PEFT warns "Found missing adapter keys" otherwise: scripts/peft-check, pool syn_part).
@Suite struct PeftTargetModulesPlanTests {
    /// A copy of fixture `name` whose config gets `edit` applied.
    static func editedCopy(of name: String, in scratch: TestDirectory, _ edit: (inout [String: Any]) -> Void) throws -> String {
        let copy = scratch.file(name)
        try FileManager.default.copyItem(atPath: PeftTinyFixtures.adapter(name), toPath: copy)
        let configPath = copy + "/adapter_config.json"
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as? [String: Any])
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        return copy
    }

    static let cRsloraModules = ["k_proj", "o_proj", "q_proj", "v_proj"].flatMap { leaf in
        (0..<2).map { "model.layers.\($0).self_attn.\(leaf)" }
    }

    @Test(arguments: ["regex", "layers_to_transform"])
    func partialInputsAreListedByFullName(how: String) throws {
        let scratch = try TestDirectory("targets")
        let partial = try Self.editedCopy(of: "c_rslora", in: scratch) { config in
            if how == "regex" {
                config["target_modules"] = #"model\.layers\.\d+\.self_attn\.[kqvo]_proj"#
            } else {
                config["layers_to_transform"] = [0, 1]
            }
        }
        var job = JobSpec.fixtureJob(.cat, adapters: ["a_r8"])
        job.adapters.append(AdapterEntry(path: partial, weight: 1))
        let plan = try Planner.plan(job: job)
        let expected = (["q_proj", "up_proj", "v_proj"] + Self.cRsloraModules).sorted()
        #expect(plan.targetModules == expected)

        let out = scratch.file("merged")
        _ = try LocalMerge.run(plan: plan, outputDirectory: out)
        let data = try Data(contentsOf: URL(fileURLWithPath: out + "/adapter_config.json"))
        let config = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(config["target_modules"] as? [String] == expected)
    }

    @Test func inputsThatCoverTheirNamesKeepShortNames() throws {
        let plan = try Planner.plan(job: .fixtureJob(.cat, adapters: ["a_r8", "c_rslora", "d_pattern"]))
        #expect(plan.targetModules == ["k_proj", "o_proj", "q_proj", "up_proj", "v_proj"])
    }
}
