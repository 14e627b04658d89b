import BrickyardTestSupport
import Foundation
import Testing
@testable import AdapterIO
@testable import MergeEngine

@Suite struct OutputAssemblerTests {
    static let all = ["a_r8", "b_r4", "c_rslora", "d_pattern", "e_bf16"]

    static func json(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The written directory has PEFT's layout: keys, shapes, dtype and config fields, and reads back (through the
    /// PEFT rank/alpha-pattern rules) as the merged ΔW.
    @Test(arguments: [DType.f32, .bf16])
    func mergedDirectoryHasPeftLayout(dtype: DType) throws {
        let scratch = try TestDirectory("layout")
        let out = scratch.file("merged")
        let plan = try Planner.plan(job: .fixtureJob(.cat, adapters: Self.all, dtype: dtype))
        let report = try LocalMerge.run(plan: plan, outputDirectory: out)

        let weights = try SafetensorsFile(path: out + "/adapter_model.safetensors")
        let expectedKeys = Set(plan.modules.flatMap { [$0.name + ".lora_A.weight", $0.name + ".lora_B.weight"] })
        #expect(Set(weights.tensors.map(\.name)) == expectedKeys)
        #expect(weights.tensors.allSatisfy { $0.dtype == dtype })
        #expect(weights.metadata["format"] == "pt")

        let config = try Self.json(out + "/adapter_config.json")
        let fixtureConfig = try Self.json(PeftTinyFixtures.adapter("a_r8") + "/adapter_config.json")
        // A subset of what PEFT 0.21 writes that older PEFT also accepts (AdapterIOTests/PeftConfigCompatibilityTests).
        #expect(Set(config.keys).isSubset(of: Set(fixtureConfig.keys)))
        #expect(Set(config.keys).isSuperset(of: ["r", "lora_alpha", "rank_pattern", "alpha_pattern", "target_modules", "use_rslora"]))
        let r = try #require(config["r"] as? Int)
        #expect(config["lora_alpha"] as? Int == r)
        #expect(config["use_rslora"] as? Bool == false)
        #expect(config["peft_type"] as? String == "LORA")
        #expect(config["target_modules"] as? [String] == ["k_proj", "o_proj", "q_proj", "up_proj", "v_proj"])
        let rankPattern = try #require(config["rank_pattern"] as? [String: Int])
        #expect(config["alpha_pattern"] as? [String: Int] == rankPattern)

        let reloaded = try PeftAdapter.load(path: out)
        for module in plan.modules {
            let info = try #require(reloaded.module(named: module.name))
            let ranks = module.sources.reduce(0) { $0 + $1.module.rank }
            #expect(info.rank == ranks)
            #expect(info.scaling == 1)
            #expect(weights.tensors.first { $0.name == module.name + ".lora_A.weight" }?.shape == [ranks, module.inFeatures])
            #expect(weights.tensors.first { $0.name == module.name + ".lora_B.weight" }?.shape == [module.outFeatures, ranks])
            let (a, b) = try reloaded.loadFactors(info)
            let delta = Dense.product(b: b, a: a, out: info.outFeatures, rank: info.rank, in: info.inFeatures)
            let target = Dense.target(try module.loadInput())
            #expect(Dense.relativeError(delta, target) < (dtype == .f32 ? 1e-6 : 2e-2))
        }

        let decoded = try MergeReport.decode(Data(contentsOf: URL(fileURLWithPath: out + "/merge-report.json")))
        #expect(decoded == report)
        #expect(decoded.modules.map(\.name) == plan.modules.map(\.name))
        #expect(decoded.totals.modules == plan.modules.count)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == ["merged"])
    }

    @Test(arguments: [MergeMethodName.cat, .ties, .dareLinear])
    func outputIsByteIdenticalAcrossRuns(method: MergeMethodName) throws {
        let scratch = try TestDirectory("repeat")
        let job = JobSpec.fixtureJob(method, adapters: ["a_r8", "c_rslora", "e_bf16"], rank: 6)
        try LocalMerge.run(plan: Planner.plan(job: job), outputDirectory: scratch.file("one"))
        try LocalMerge.run(plan: Planner.plan(job: job), outputDirectory: scratch.file("two"))
        for file in ["adapter_model.safetensors", "adapter_config.json"] {
            let one = try Data(contentsOf: URL(fileURLWithPath: scratch.file("one/" + file)))
            let two = try Data(contentsOf: URL(fileURLWithPath: scratch.file("two/" + file)))
            #expect(one == two, "\(file)")
        }
    }

    /// The streaming form refuses results that do not match the declaration, and leaves nothing behind.
    @Test func streamingRejectsUndeclaredResultsAndWritesNothing() throws {
        let scratch = try TestDirectory("stream")
        let plan = try Planner.plan(job: .fixtureJob(.cat, adapters: ["a_r8"]))
        let results = try plan.modules.map { try ModuleMerger.merge($0.loadInput(), spec: plan.spec, seed: $0.seed) }
        let report = MergeReport(plan: plan, modules: [], wallSeconds: 0)
        let out = scratch.file("out")
        #expect(throws: MergeError.self) {
            try OutputAssembler.assemble(plan: plan, to: out, overwrite: false, modules: OutputAssembler.outputModules(results),
                                         report: report) { write in
                for result in results.reversed() { try write(result) }
            }
        }
        #expect(throws: MergeError.self) {
            try OutputAssembler.assemble(plan: plan, to: out, overwrite: false, modules: OutputAssembler.outputModules(results),
                                         report: report) { write in try write(results[0]) }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
    }

    /// Inline bytes (runtime inline mode) decode to the same input as reading by TensorRef.
    @Test func inlineDecodeMatchesLoadingFromDisk() throws {
        let plan = try Planner.plan(job: .fixtureJob(.cat, adapters: ["a_r8", "e_bf16"]))
        let module = try #require(plan.modules.first)
        let fromDisk = try module.loadInput()
        let inline = try module.sources.map { source -> InlineTerm in
            func bytes(_ ref: TensorRef) throws -> [UInt8] {
                let file = try SafetensorsFile(path: ref.path)
                return try file.withRawBytes(try #require(ref.name)) { Array($0) }
            }
            return InlineTerm(coefficient: source.coefficient, rank: source.module.rank,
                              aBytes: try bytes(source.module.a), aDType: source.module.a.dtype,
                              bBytes: try bytes(source.module.b), bDType: source.module.b.dtype)
        }
        let decoded = try ModuleInput.decode(name: module.name, outFeatures: module.outFeatures, inFeatures: module.inFeatures, terms: inline)
        #expect(decoded.terms.map(\.a) == fromDisk.terms.map(\.a))
        #expect(decoded.terms.map(\.b) == fromDisk.terms.map(\.b))
        #expect(decoded.terms.map(\.coefficient) == fromDisk.terms.map(\.coefficient))
    }

    /// An existing empty directory is taken over; a file in the way is refused.
    @Test func emptyDirectoryIsReplacedAndFileIsRefused() throws {
        let scratch = try TestDirectory("empty")
        let plan = try Planner.plan(job: .fixtureJob(.cat, adapters: ["b_r4"]))
        let out = scratch.file("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        try LocalMerge.run(plan: plan, outputDirectory: out)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).count == 3)
        let file = scratch.file("file")
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: MergeError.self) { try LocalMerge.run(plan: plan, outputDirectory: file, overwrite: true) }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "x")
    }
}
