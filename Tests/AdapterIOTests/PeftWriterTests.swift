import BrickyardTestSupport
import Foundation
import Testing
@testable import AdapterIO

/// PEFT directory output: config contents and reading back through the loader.
@Suite struct PeftWriterTests {
    @Test func writtenAdapterReadsBackWithScalingOneAndPerModuleRanks() throws {
        let scratch = try TestDirectory("peft")
        let source = try PeftAdapter.load(path: PeftTinyFixtures.adapter("a_r8"))
        var entries: [(module: PeftOutputModule, a: [Float], b: [Float])] = []
        for (index, module) in source.modules.enumerated() {
            var (a, b) = try source.loadFactors(module)
            var rank = module.rank
            if index == 0 { // give one module a different rank to exercise rank_pattern
                rank = 3
                a = Array(a[0..<(3 * module.inFeatures)])
                b = (0..<module.outFeatures).flatMap { row in b[(row * module.rank)..<(row * module.rank + 3)] }
            }
            entries.append((PeftOutputModule(name: module.name, rank: rank, inFeatures: module.inFeatures, outFeatures: module.outFeatures), a, b))
        }
        let directory = scratch.file("merged")
        try PeftAdapterWriter.write(directory: directory, modules: entries,
                                    config: PeftOutputConfig(baseModelNameOrPath: "tiny-llama", taskType: "CAUSAL_LM", dtype: .f16))
        let back = try PeftAdapter.load(path: directory)
        #expect(back.modules.map(\.name) == source.modules.map(\.name))
        #expect(back.modules.map(\.rank) == entries.map(\.module.rank))
        #expect(back.modules.allSatisfy { $0.scaling == 1 })
        #expect(back.config.baseModelNameOrPath == "tiny-llama")
        #expect(back.config.taskType == "CAUSAL_LM")
        #expect(back.dtypeSummary == "float16")
        #expect(back.config.r == 8)
        let firstName = PeftNames.strippingWrapperPrefix(source.modules[0].name)
        #expect(back.config.rankPattern == [firstName: 3])
        #expect(back.config.alphaPattern == [firstName: 3])
        for (entry, module) in zip(entries, back.modules) {
            let (a, b) = try back.loadFactors(module)
            for (x, y) in zip(entry.a + entry.b, a + b) { #expect(abs(x - y) <= 1e-3 * max(1, abs(x))) }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == ["merged"])
    }

    @Test func configHasTheCrossVersionKeySet() throws {
        let scratch = try TestDirectory("peft")
        let directory = scratch.file("out")
        try PeftAdapterWriter.write(directory: directory, modules: [
            (PeftOutputModule(name: "base_model.model.model.layers.0.self_attn.q_proj", rank: 1, inFeatures: 2, outFeatures: 2), [1, 2], [3, 4]),
        ], config: PeftOutputConfig())
        let ours = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/adapter_config.json"))) as? [String: Any]
        let peft = try JSONSerialization.jsonObject(with: Data(contentsOf: PeftTinyFixtures.root.appendingPathComponent("adapters/a_r8/adapter_config.json"))) as? [String: Any]
        let ourKeys = Set(try #require(ours).keys)
        // Only fields PEFT itself writes, and only the long-standing ones (see PeftConfigCompatibilityTests).
        #expect(ourKeys.isSubset(of: Set(try #require(peft).keys)))
        #expect(ourKeys == PeftConfigWriter.keys)
        #expect(ours?["target_modules"] as? [String] == ["q_proj"])
        #expect(ours?["peft_type"] as? String == "LORA")
        #expect(ours?["lora_alpha"] as? Int == 1)
    }

    @Test func refusesToReplaceAnExistingDirectoryUnlessAsked() throws {
        let scratch = try TestDirectory("peft")
        let directory = scratch.file("out")
        let module = PeftOutputModule(name: "m.q_proj", rank: 1, inFeatures: 1, outFeatures: 1)
        try PeftAdapterWriter.write(directory: directory, modules: [(module, [1], [2])], config: PeftOutputConfig())
        #expect(throws: AdapterIOError.self) {
            try PeftAdapterWriter.write(directory: directory, modules: [(module, [1], [3])], config: PeftOutputConfig())
        }
        try PeftAdapterWriter.write(directory: directory, modules: [(module, [1], [5])], config: PeftOutputConfig(), overwrite: true)
        let back = try PeftAdapter.load(path: directory)
        #expect(try back.loadFactors(back.modules[0]).b == [5])
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == ["out"])
    }

    @Test func extraFilesAppearWithTheAdapter() throws {
        let scratch = try TestDirectory("peft")
        let directory = scratch.file("out")
        let writer = try PeftAdapterWriter(directory: directory, modules: [PeftOutputModule(name: "m.q_proj", rank: 1, inFeatures: 1, outFeatures: 1)],
                                           config: PeftOutputConfig())
        try writer.write(module: "m.q_proj", a: [1], b: [2])
        try writer.addFile(named: "merge-report.json", contents: Array("{}".utf8))
        #expect(throws: AdapterIOError.self) { try writer.addFile(named: "../escape", contents: []) }
        #expect(!FileManager.default.fileExists(atPath: directory))
        try writer.finish()
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["adapter_config.json", "adapter_model.safetensors", "merge-report.json"])
    }
}
