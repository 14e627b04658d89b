import BrickyardTestSupport
import Foundation
import Testing
@testable import AdapterIO

/// `mergeTargetModules`: a merged adapter may list short names (`q_proj`) only for inputs whose config says every
/// module of that name has factors; otherwise PEFT would create LoRA layers with no weights in the file and warn
/// about missing adapter keys (seen with real PEFT, scripts/peft-check).
@Suite struct PeftTargetModulesTests {
    static let fullName = PeftNames.strippingWrapperPrefix(Adapters.moduleName)

    @Test(arguments: [
        (#""target_modules": ["q_proj", "v_proj"]"#, ["q_proj", "v_proj"]),
        (#""layers_to_transform": null"#, ["q_proj"]),
        (#""exclude_modules": []"#, ["q_proj"]),
        (#""target_modules": "model\\.layers\\.0\\..*q_proj""#, [fullName]),
        (#""target_modules": "all-linear""#, [fullName]),
        (#""layers_to_transform": [0]"#, [fullName]),
        (#""exclude_modules": ["k_proj"]"#, [fullName]),
        (#""target_modules": []"#, [fullName]),
        (#""target_modules": ["model.layers.0.self_attn.q_proj"]"#, [fullName]),
        (#""target_modules": ["self_attn.q_proj", "v_proj"]"#, [fullName]),
    ])
    func targetsFollowWhatTheConfigClaims(extra: String, expected: [String]) throws {
        let scratch = try TestDirectory("targets")
        let directory = try Adapters.make(in: scratch, config: Adapters.config(r: 2, alpha: 2, extra: extra))
        #expect(try PeftAdapter.load(path: directory).mergeTargetModules == expected)
    }

    @Test func bareFilesListTheirModulesByFullName() throws {
        let scratch = try TestDirectory("targets")
        let directory = try Adapters.make(in: scratch, config: Adapters.config(r: 2, alpha: 2))
        let bare = try PeftAdapter.load(path: directory + "/adapter_model.safetensors", rank: 2, alpha: 2)
        #expect(bare.mergeTargetModules == [Self.fullName])
    }

    @Test func fixturesKeepTheirShortNames() throws {
        let adapter = try PeftAdapter.load(path: PeftTinyFixtures.adapter("c_rslora"))
        #expect(adapter.mergeTargetModules == ["k_proj", "o_proj", "q_proj", "v_proj"])
    }

    /// `brickyard synth --layers` below the base model's layer count lists its modules by full name (PEFT then
    /// creates LoRA layers only where the file has factors); with every layer, the short names.
    @Test func syntheticAdaptersOfSomeLayersNameTheirModules() throws {
        let scratch = try TestDirectory("targets-synth")
        _ = try SyntheticPool(shape: .tiny, adapterCount: 1, rank: 2, layers: 1, modules: ["q", "v"], dtype: .f32)
            .write(to: scratch.file("one"))
        let one = try PeftAdapter.load(path: scratch.file("one/adapter-000"))
        #expect(one.mergeTargetModules == ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"])
        guard case .names(let listed) = one.config.targetModules else { Issue.record("not a list"); return }
        #expect(listed == one.mergeTargetModules)
        _ = try SyntheticPool(shape: .tiny, adapterCount: 1, rank: 2, modules: ["q", "v"], dtype: .f32)
            .write(to: scratch.file("all"))
        #expect(try PeftAdapter.load(path: scratch.file("all/adapter-000")).mergeTargetModules == ["q_proj", "v_proj"])
    }
}
