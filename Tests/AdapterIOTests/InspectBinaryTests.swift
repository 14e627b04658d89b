import Foundation
import Testing
@testable import AdapterIO
import BrickyardTestSupport

/// Runs the built `brickyard` executable, as a user would, to check exit status and output streams.
@Suite struct InspectBinaryTests {
    static func run(_ arguments: [String]) throws -> BrickyardExecutable.Run {
        try BrickyardExecutable.run(arguments)
    }

    @Test func badFileExitsOneWithOneLineNamingTheFile() throws {
        let scratch = try TestDirectory("cli")
        let path = try scratch.write("broken.safetensors", RawSafetensors.file(header: "not json", data: []))
        let good = PeftTinyFixtures.adapter("a_r8")
        let result = try Self.run(["inspect", good, path])
        #expect(result.reason == .exit)
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
        #expect(lines.count == 1)
        #expect(result.stderr == "brickyard: \(path): header is not valid JSON\n")
    }

    @Test func jsonReportHasTheDocumentedShape() throws {
        let result = try Self.run(["inspect", "--json", "--norms", PeftTinyFixtures.adapter("d_pattern"), PeftTinyFixtures.adapter("c_rslora")])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let adapters = try #require(object["adapters"] as? [[String: Any]])
        #expect(adapters.count == 2)
        #expect(adapters[0]["path"] as? String == PeftTinyFixtures.adapter("d_pattern"))
        #expect(adapters[0]["dtype"] as? String == "float32")
        #expect(adapters[0].keys.contains("base_model"))
        let modules = try #require(adapters[0]["modules"] as? [[String: Any]])
        let q = try #require(modules.first { ($0["name"] as? String) == "base_model.model.model.layers.0.self_attn.q_proj" })
        #expect(q["rank"] as? Int == 4)
        #expect(q["alpha"] as? Double == 4)
        #expect(q["scaling"] as? Double == 1)
        #expect(q["in_features"] as? Int == 64)
        #expect(q["out_features"] as? Int == 64)
        #expect((q["norm"] as? Double ?? 0) > 0)
        let rslora = try #require((adapters[1]["modules"] as? [[String: Any]])?.first)
        #expect(abs((rslora["scaling"] as? Double ?? 0) - 32 / 8.0.squareRoot()) < 1e-12)
    }

    @Test func jsonOnEveryFixtureReportsWhatPeftUses() throws {
        let result = try Self.run(["inspect", "--json"] + FixtureTests.expectations.map { PeftTinyFixtures.adapter($0.adapter) })
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let adapters = try #require(object["adapters"] as? [[String: Any]])
        #expect(adapters.count == FixtureTests.expectations.count)
        for (adapter, expected) in zip(adapters, FixtureTests.expectations) {
            #expect(adapter["dtype"] as? String == expected.dtype)
            let modules = try #require(adapter["modules"] as? [[String: Any]])
            #expect(modules.count == expected.moduleCount)
            for module in modules {
                let name = try #require(module["name"] as? String)
                let (rank, alpha, scaling) = try #require(expected.perLeaf[PeftNames.leaf(name)])
                let shape = try #require(FixtureTests.shapes[PeftNames.leaf(name)])
                #expect(module["rank"] as? Int == rank, "\(expected.adapter) \(name)")
                #expect(module["alpha"] as? Double == alpha)
                #expect(abs((module["scaling"] as? Double ?? 0) - scaling) <= 1e-12 * scaling)
                #expect(module["in_features"] as? Int == shape.inFeatures)
                #expect(module["out_features"] as? Int == shape.outFeatures)
            }
        }
    }

    @Test func synthThenInspectLlamaShapes() throws {
        let scratch = try TestDirectory("synth")
        let synth = try Self.run(["synth", "--out", scratch.path, "--adapters", "2", "--rank", "2", "--shape", "llama3-8b",
                                  "--layers", "1", "--modules", "k,gate,down"])
        #expect(synth.status == 0, "\(synth.stderr)")
        let result = try Self.run(["inspect", "--json", scratch.path + "/adapter-001"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let adapter = try #require((object["adapters"] as? [[String: Any]])?.first)
        #expect(adapter["base_model"] as? String == "meta-llama/Meta-Llama-3-8B")
        #expect(adapter["dtype"] as? String == "bfloat16")
        let shapes = (adapter["modules"] as? [[String: Any]] ?? []).map { [$0["in_features"] as? Int ?? 0, $0["out_features"] as? Int ?? 0] }
        #expect(shapes == [[14336, 4096], [4096, 14336], [4096, 1024]]) // down, gate, k (sorted by name)
    }
}
